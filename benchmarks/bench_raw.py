"""How long one RAW file takes to decode for indexing: from its embedded preview,
by a half-size demosaic, and a JPEG of the same picture for comparison.

    python benchmarks/bench_raw.py [--size 6000x4000] [--repeat 3]

The DNG files are written by the tests' DNG writer (a camera-sized sensor,
with and without a preview 1080 pixels high, as cameras embed) into a temporary folder.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for the tests' DNG writer

from photofind.core.imaging import Decoded, Preprocess, decode_file
from photofind.testing.shapes import draw_picture
from tests.rawfiles import write_dng


def timed(path: Path, pre: Preprocess, repeat: int) -> float:
    """Median seconds per decode_file (what a decode worker runs)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = decode_file(str(path), pre)
        times.append(time.perf_counter() - start)
        if not isinstance(result, Decoded):
            raise SystemExit(f"{path.name}: {result.reason}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="6000x4000", help="sensor size, WxH")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    pre = Preprocess(224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    picture = draw_picture("red", "circle", (w, h), random.Random(1))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {
            "DNG, preview 1080 high": write_dng(folder / "preview.dng", picture,
                                                preview=picture.resize((w * 1080 // h, 1080))),
            "DNG, no preview (half-size demosaic)": write_dng(folder / "plain.dng", picture),
        }
        picture.save(folder / "same.jpg", quality=90)
        files["JPEG of the same picture"] = folder / "same.jpg"
        print(f"sensor {w} x {h}, model input {pre.size}, median of {args.repeat}:")
        for name, path in files.items():
            print(f"  {name:40s} {timed(path, pre, args.repeat) * 1000:8.0f} ms")


if __name__ == "__main__":
    main()
