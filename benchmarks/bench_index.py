"""Indexing speed: does everything but CLIP hide behind CLIP?

One run, ViT-B-32 with random weights (the real compute), the same torch thread
count for all three:
  (a) encoder only: encode_image on preprocessed tensors at photofind's batch size;
  (b) photofind: a full `photofind index` of the corpus into a fresh library
      (files to searchable, thumbnails included, process start and model load too);
  (c) naive: what peer tools do: Image.open().convert("RGB"), the model's
      preprocess, batches of 8, vectors kept.
The corpus (200 camera-like 12 MP JPEGs, 4 HEIC, 4 PNG) is made once and cached.

    python benchmarks/bench_index.py [--threads 2] [--device cpu] [--runtime onnx|torch]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import PHOTOFIND, corpus, encoder, model_spec, peak_rss_mb, runtime_option, use_runtime


def encoder_only(spec: str, device: str, n: int) -> float:
    emb = encoder(spec, device)
    size = emb.preprocess.size
    batch = np.random.default_rng(0).integers(0, 256, (emb.batch_size, size, size, 3), np.uint8)
    emb.encode_images(batch)  # warm-up
    done, start = 0, time.perf_counter()
    while done < n:
        emb.encode_images(batch)
        done += len(batch)
    return done / (time.perf_counter() - start)


def naive(spec: str, device: str, files: list[Path]) -> float:
    import open_clip
    import torch
    from PIL import Image

    from photofind.core.imaging import register_heif

    register_heif()
    model, _, preprocess = open_clip.create_model_and_transforms(spec)
    model = model.to(device).eval()
    vectors = []
    start = time.perf_counter()
    for i in range(0, len(files), 8):
        batch = torch.stack([preprocess(Image.open(f).convert("RGB")) for f in files[i:i + 8]])
        with torch.inference_mode():
            vectors.append(model.encode_image(batch.to(device)).cpu().numpy())
    return len(files) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    runtime_option(parser)
    args = parser.parse_args()
    import torch

    use_runtime(args.runtime)
    os.environ["PHOTOFIND_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    folder = corpus()
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    spec = model_spec()
    rows = []
    rate_a = encoder_only(spec, args.device, len(files))
    rows.append(("(a) encoder only", rate_a, ""))
    with tempfile.TemporaryDirectory() as lib:
        wall, rss, out = peak_rss_mb([*PHOTOFIND, "index", str(folder), "--library", lib,
                                      "--model", spec, "--device", args.device, "--json"])
        report = json.loads(out)
        assert report["embedded"] == len(files), report
        rate_b = len(files) / wall
        rows.append(("(b) photofind index", rate_b, f"peak RSS {rss:.0f} MB, {wall:.1f} s"))
    rate_c = naive(spec, args.device, files)
    rows.append(("(c) naive pipeline", rate_c, ""))
    print(f"{len(files)} files ({sum(p.stat().st_size for p in files) / 1e6:.0f} MB),"
          f" ViT-B-32 random weights, {args.device}, runtime {args.runtime},"
          f" {args.threads} threads")
    print(f"{'pipeline':<24} {'images/s':>9}")
    for name, rate, note in rows:
        print(f"{name:<24} {rate:9.2f}  {note}")
    print(f"summary: b/a = {rate_b / rate_a:.2f} (target >= 0.75), b/c = {rate_b / rate_c:.2f}"
          " (target >= 2.0)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
