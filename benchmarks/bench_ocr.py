"""Reading text: word recall and precision per condition, and the time it takes.

Draws the test pictures of photofind.testing.textimages (fonts, sizes,
rotations 0/90/180/270, a noisy photo-like sign, a receipt, a screenshot),
saves them as JPEGs, reads them the way indexing does (decode at 1280 px
long side, then the engine) and prints, per condition, the words printed,
the share of them read (recall), the share of words read that were printed
(precision) and the seconds per picture.

    python benchmarks/bench_ocr.py [--threads 2] [--seeds 2] [--engine tesseract]

``--engine tesseract`` reads the same pictures with Debian's tesseract-ocr
(the command, default page segmentation, English) for comparison.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from photofind.core import ocr, textindex
from photofind.core.reading import upright_pixels
from photofind.testing.textimages import samples, save


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=2, help="word draws per condition")
    parser.add_argument("--engine", choices=("photofind", "tesseract"), default="photofind")
    args = parser.parse_args()
    if args.engine == "tesseract":
        version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
        print(f"engine: {version.stdout.splitlines()[0]}, OMP_THREAD_LIMIT={args.threads}")

        def read(path: Path) -> str:
            out = subprocess.run(["tesseract", str(path), "stdout"], capture_output=True,
                                 text=True, env={**os.environ,
                                                 "OMP_THREAD_LIMIT": str(args.threads)})
            return out.stdout
    else:
        reader = ocr.Reader(args.threads)
        print(f"engine: {ocr.engine_id()}, {args.threads} threads, long side {ocr.LONG_SIDE}")

        def read(path: Path) -> str:
            return " ".join(line.text for line in reader.read(upright_pixels(str(path))))
    stats: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0, 0, 0, 0.0, 0])
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            drawn = samples(seed)
            paths = save(drawn, Path(tmp) / str(seed))
            for sample in drawn:
                start = time.perf_counter()
                text = read(paths[sample.name])
                took = time.perf_counter() - start
                words = collections.Counter(textindex.words_of(text))
                printed = collections.Counter(textindex.words_of(" ".join(sample.words)))
                hit = sum((words & printed).values())
                row = stats[sample.condition.split(":")[0] if sample.condition.startswith(
                    "font") else sample.condition]
                row[0] += sum(printed.values())
                row[1] += hit
                row[2] += sum(words.values())
                row[3] += hit
                row[4] += took
                row[5] += 1
    print(f"{'condition':<12} {'words':>6} {'recall':>7} {'precision':>9} {'s/picture':>9}")
    total = [0.0] * 6
    for condition, row in stats.items():
        recall = row[1] / row[0] if row[0] else 0.0
        precision = row[3] / row[2] if row[2] else 0.0
        print(f"{condition:<12} {int(row[0]):>6} {recall:>7.2f} {precision:>9.2f}"
              f" {row[4] / row[5]:>9.2f}")
        total = [t + v for t, v in zip(total, row, strict=True)]
    print(f"{'all':<12} {int(total[0]):>6} {total[1] / total[0]:>7.2f}"
          f" {total[3] / max(total[2], 1):>9.2f} {total[4] / total[5]:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
