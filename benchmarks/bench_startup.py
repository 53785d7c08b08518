"""A new process, start to answer: wall time and peak RSS of a cold
`photofind search "x" --json` on the 100,000-photo library, and the peak RSS of
`photofind index` on the benchmark corpus (ViT-B-32 random weights). The
baselines are the bare interpreter importing torch, and torch with open_clip
(which brings torchvision), run in the same session.

    python benchmarks/bench_startup.py [--repeat 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile

from common import PHOTOFIND, big_library, corpus, model_spec, peak_rss_mb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    spec = model_spec()
    library = big_library(spec)
    env = {"PHOTOFIND_THREADS": str(args.threads)}
    search = [*PHOTOFIND, "search", "a dog on the beach", "--json", "--library", str(library),
              "--model", spec, "--device", "cpu"]
    runs = [peak_rss_mb(search, env) for _ in range(args.repeat)]
    assert len(json.loads(runs[0][2])) == 20
    torch_only = [peak_rss_mb([sys.executable, "-c", "import torch"], env)
                  for _ in range(args.repeat)]
    imports = [peak_rss_mb([sys.executable, "-c", "import torch, open_clip"], env)
               for _ in range(args.repeat)]
    folder = corpus()
    with tempfile.TemporaryDirectory() as lib:
        index = peak_rss_mb([*PHOTOFIND, "index", str(folder), "--library", lib, "--model", spec,
                             "--device", "cpu", "--json"], env)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    rows = [("python -c 'import torch' (baseline)", med([r[0] for r in torch_only]),
             med([r[1] for r in torch_only])),
            ("python -c 'import torch, open_clip'", med([r[0] for r in imports]),
             med([r[1] for r in imports])),
            ("photofind search, 100,000 photos, cold", med([r[0] for r in runs]),
             med([r[1] for r in runs])),
            ("photofind index, benchmark corpus", index[0], index[1])]
    print(f"{'process':<40} {'wall s':>7} {'peak RSS MB':>12}   (median of {args.repeat})")
    for name, wall, rss in rows:
        print(f"{name:<40} {wall:7.2f} {rss:12.0f}")
    print(f"summary: cold search {med([r[0] for r in runs]):.2f} s (target <= 4), search RSS"
          f" {med([r[1] for r in runs]):.0f} MB (target <= 1200), index RSS {index[1]:.0f} MB"
          f" (target <= 1500)")


if __name__ == "__main__":
    main()
