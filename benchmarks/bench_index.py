"""Indexing speed: does everything but CLIP hide behind CLIP?

One run, ViT-B-32 with random weights (the real compute), the same torch thread
count for all three:
  (a) encoder only: encode_image on preprocessed tensors at photofind's batch size;
  (b) photofind: a full `photofind index` of the corpus into a fresh library
      (files to searchable, thumbnails included, process start and model load too);
  (c) naive: what peer tools do: Image.open().convert("RGB"), the model's
      preprocess, batches of 8, vectors kept;
  (d) with --ocr: (b) again with reading the text in photos on (b reads none),
      and the throughput of the whole index with text read, as a share of (b).
The corpus (200 camera-like 12 MP JPEGs, 4 HEIC, 4 PNG) is made once and cached;
--files N indexes its first N files only.

    python benchmarks/bench_index.py [--threads 2] [--device cpu] [--runtime onnx|torch]
                                     [--ocr] [--files N] [--skip-naive]
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
    parser.add_argument("--ocr", action="store_true", help="also index with text reading on")
    parser.add_argument("--files", type=int, default=0, help="only the corpus' first N files")
    parser.add_argument("--skip-naive", action="store_true", help="leave out (a) and (c)")
    args = parser.parse_args()
    import torch

    use_runtime(args.runtime)
    os.environ["PHOTOFIND_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    folder = corpus()
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    work = tempfile.TemporaryDirectory()
    if args.files:
        files, folder = files[:args.files], Path(work.name) / "corpus"
        folder.mkdir()
        for f in files:
            os.link(f, folder / f.name)  # the same files, no copy
    spec = model_spec()
    rows = []
    rate_a = encoder_only(spec, args.device, len(files)) if not args.skip_naive else 0.0
    rows.append(("(a) encoder only", rate_a, ""))
    rate_b = index_rate(folder, len(files), spec, args.device, False, rows)
    if args.ocr:
        rate_d = index_rate(folder, len(files), spec, args.device, True, rows)
    rate_c = naive(spec, args.device, files) if not args.skip_naive else 0.0
    rows.append(("(c) naive pipeline", rate_c, ""))
    print(f"{len(files)} files ({sum(p.stat().st_size for p in files) / 1e6:.0f} MB),"
          f" ViT-B-32 random weights, {args.device}, runtime {args.runtime},"
          f" {args.threads} threads")
    print(f"{'pipeline':<24} {'images/s':>9}")
    for name, rate, note in rows:
        if rate or not args.skip_naive:  # --skip-naive leaves (a) and (c) unmeasured
            print(f"{name:<24} {rate:9.2f}  {note}")
    if not args.skip_naive:
        print(f"summary: b/a = {rate_b / rate_a:.2f} (target >= 0.75),"
              f" b/c = {rate_b / rate_c:.2f} (target >= 2.0)")
    if args.ocr:
        print(f"reading text: d/b = {rate_d / rate_b:.2f} (whole index with text read, as a"
              " share of the index without)")
    sys.stdout.flush()
    work.cleanup()


def index_rate(folder: Path, n: int, spec: str, device: str, ocr: bool,
               rows: list[tuple[str, float, str]]) -> float:
    """(b), or (d) with text reading on: files to searchable, per second."""
    env = {**os.environ, "PHOTOFIND_OCR": "1" if ocr else "0"}
    with tempfile.TemporaryDirectory() as lib:
        wall, rss, out = peak_rss_mb([*PHOTOFIND, "index", str(folder), "--library", lib,
                                      "--model", spec, "--device", device, "--json"], env)
        report = json.loads(out)
        assert report["embedded"] == n, report
    name = "(d) ... reading text" if ocr else "(b) photofind index"
    rows.append((name, n / wall, f"peak RSS {rss:.0f} MB, {wall:.1f} s"))
    return n / wall


if __name__ == "__main__":
    main()
