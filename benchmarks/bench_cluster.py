"""The Ray path against `photofind index`, in one run, and the size of the shards.

One run, ViT-B-32 with random weights as an ONNX folder (the real compute), the
cached corpus of camera-like 12 MP JPEGs:
  (a) `photofind index CORPUS` into a fresh library: images/s of the whole
      process (start, model load, decoding, embedding, thumbnails);
  (b) the Ray path on a local Ray cluster of --cpus CPUs: images/s of
      `cluster.embed` (Ray Data pipeline, actors starting, shards written), with
      and without the time Ray itself takes to start.
Then the shard size: bytes per row measured on the corpus's shard, and on a
shard of --rows synthetic rows (random unit vectors, which compress like real
CLIP vectors: not at all; realistic paths), extrapolated to 100,000 photos.

    python benchmarks/bench_cluster.py [--photos 120] [--cpus 2] [--rows 10000] [--rounds 1]

With --rounds N the two paths take turns N times and the medians are printed
(the build machine is shared: turns spread its noise over both).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import PHOTOFIND, corpus, model_spec, peak_rss_mb

from photofind.core import parquetio


def local_index(folder: Path, spec: str, n: int) -> float:
    with tempfile.TemporaryDirectory() as lib:
        wall, _, out = peak_rss_mb([*PHOTOFIND, "index", str(folder), "--library", lib,
                                    "--model", spec, "--device", "cpu", "--json"])
    report = json.loads(out)
    assert report["embedded"] == n, report
    return n / wall


def ray_path(folder: Path, spec: str, n: int, cpus: int, out: Path) -> tuple[float, float]:
    import ray

    from photofind.cluster import ClusterOptions, embed

    start = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter()
    try:
        report = embed([folder], out, spec, ClusterOptions())
    finally:
        ray.shutdown()
    end = time.perf_counter()
    assert report.embedded == n, report
    return n / (end - started), n / (end - start)


def synthetic_bytes_per_row(rows: int, dim: int, dtype: str, folder: Path) -> float:
    rng = random.Random(0)
    vecs = np.random.default_rng(0).standard_normal((rows, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    records = [parquetio.Record(
        path=f"/mnt/archive/{2000 + i % 25}/{rng.choice(['family', 'travel', 'work'])}/"
             f"{i // 500:04d}/IMG_{i:06d}.JPG",
        size=rng.randint(2_000_000, 9_000_000), mtime_ns=1_600_000_000_000_000_000 + i,
        quick_hash=f"{rng.getrandbits(128):032x}", content_hash=f"{rng.getrandbits(160):040x}",
        taken_at=f"{2000 + i % 25}-06-01T12:{i % 60:02d}:00", width=4032, height=3024,
        embedding=vecs[i]) for i in range(rows)]
    info = parquetio.write_shard(folder, f"synthetic-{dtype}.parquet", records, "ViT-B-32",
                                 dim, dtype)
    return info.bytes / rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=120)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    os.environ["PHOTOFIND_THREADS"] = str(args.cpus)  # `photofind index`'s ONNX threads
    from photofind.core.model.export import exported_folder

    spec = f"local-dir:{exported_folder(model_spec())}"
    folder = corpus(args.photos, 0, 0)
    n = sum(1 for p in folder.iterdir() if not p.name.startswith("."))
    rates: list[tuple[float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for turn in range(args.rounds):
            out = Path(tmp) / f"shards-{turn}"
            rate_index = local_index(folder, spec, n)
            rates.append((rate_index, *ray_path(folder, spec, n, args.cpus, out)))
        manifest = parquetio.read_manifest(out)
        corpus_row = sum(s.bytes for s in manifest.shards) / n
        per_row = {dtype: synthetic_bytes_per_row(args.rows, manifest.dim, dtype, Path(tmp))
                   for dtype in parquetio.DTYPES}
    rate_index, rate_ray, rate_ray_cold = (float(np.median(col))
                                           for col in zip(*rates, strict=True))
    ratio = float(np.median([ray / index for index, ray, _ in rates]))
    ratio_cold = float(np.median([cold / index for index, _, cold in rates]))
    print(f"{n} camera-like 12 MP JPEGs, ViT-B-32 random weights (ONNX), {args.cpus} CPUs,"
          f" median of {args.rounds} turns")
    print(f"{'path':<42} {'images/s':>9}")
    print(f"{'(a) photofind index (whole process)':<42} {rate_index:9.2f}")
    print(f"{'(b) Ray path, cluster already up':<42} {rate_ray:9.2f}")
    print(f"{'(b) Ray path, including Ray start':<42} {rate_ray_cold:9.2f}")
    print(f"summary: Ray / index = {ratio:.2f} ({ratio_cold:.2f} with Ray's start),"
          " the median of each turn's ratio")
    print(f"shard bytes per row, float16, this corpus (one shard of {n}): {corpus_row:.0f}")
    for dtype, size in per_row.items():
        print(f"shard bytes per row, {dtype}, {args.rows} synthetic rows: {size:.0f}"
              f" -> {size * 100_000 / 1e6:.0f} MB per 100,000 photos (extrapolated)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
