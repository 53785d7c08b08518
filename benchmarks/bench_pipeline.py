"""What bounds indexing on this machine: the image tower alone, the decode
workers alone, and both at once (one run).

The tower encodes batches of decoded 12 MP photos with photofind's encoder
(its threads keep every core busy); the decoders run ``decode_file`` (what the
decode pool's workers run: decode, orientation, the model's pixels, the
thumbnail, the quick hash; the pool also pickles each result to the indexer),
one process per core as the pool starts them. Each stage alone fills the
machine, so sharing it, the best the two can do is to lose nothing to each
other: 1 / (1/tower + 1/decode) photos a second, the ceiling printed. The sum
of the two shares (each rate at once over its rate alone) says how near the
overlap comes: 1.00 is as good as taking turns on the whole machine, below
is lost to contention, above is idle time one stage fills for the other.

    python benchmarks/bench_pipeline.py [--decoders N] [--seconds 10] [--runtime onnx]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event

import numpy as np
import numpy.typing as npt
from common import CACHE, corpus, encoder, runtime_option, use_runtime

from photofind.core.model.encoder import Encoder
from photofind.core.model.preprocess import Preprocess


def _decode_loop(files: list[str], pre: Preprocess, stop: Event,
                 count: Synchronized[int]) -> None:
    from photofind.core.imaging import decode_file

    i = 0
    while not stop.is_set():
        decode_file(files[i % len(files)], pre)
        i += 1
        with count.get_lock():
            count.value += 1


def _tower_rate(enc: Encoder, pixels: npt.NDArray[np.uint8], seconds: float) -> float:
    enc.encode_images(pixels)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        enc.encode_images(pixels)
        done += len(pixels)
    return done / (time.perf_counter() - start)


def _with_decoders(k: int, files: list[str], seconds: float, enc: Encoder,
                   pixels: npt.NDArray[np.uint8], tower: bool) -> tuple[float, float]:
    """(tower img/s, or 0 without it; decode img/s) with ``k`` decoders running."""
    ctx = mp.get_context("spawn")
    stop, count = ctx.Event(), ctx.Value("i", 0)
    workers = [ctx.Process(target=_decode_loop, args=(files, enc.preprocess, stop, count))
               for _ in range(k)]
    for w in workers:
        w.start()
    time.sleep(3)  # started and past their imports
    with count.get_lock():
        count.value = 0
    start = time.perf_counter()
    rate = _tower_rate(enc, pixels, seconds) if tower else 0.0
    if not tower:
        time.sleep(seconds)
    elapsed = time.perf_counter() - start
    with count.get_lock():
        decoded = count.value
    stop.set()
    for w in workers:
        w.join()
    return rate, decoded / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decoders", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=float, default=10)
    runtime_option(parser)
    args = parser.parse_args()
    use_runtime(args.runtime)
    from photofind.core.imaging import Decoded, decode_file
    from photofind.testing.toyclip import random_model_dir

    enc: Encoder = encoder(f"local-dir:{random_model_dir('ViT-B-32-256', CACHE)}", "cpu")
    files = [str(p) for p in sorted(corpus(120, 0, 0).rglob("*.jpg"))]
    decoded = [decode_file(f, enc.preprocess) for f in files[:enc.batch_size]]
    pixels = np.stack([d.pixels for d in decoded if isinstance(d, Decoded)])
    tower = _tower_rate(enc, pixels, args.seconds)
    _, decode = _with_decoders(args.decoders, files, args.seconds, enc, pixels, tower=False)
    both_tower, both_decode = _with_decoders(args.decoders, files, args.seconds, enc, pixels,
                                             tower=True)
    print(f"ViT-B-32-256 random weights, {enc.description}, batches of {len(pixels)},"
          f" {args.decoders} decoders, 120 camera-like 12 MP JPEGs")
    print(f"image tower alone        {tower:6.1f} img/s")
    print(f"{args.decoders} decoders alone        {decode:6.1f} img/s")
    print(f"both at once: tower      {both_tower:6.1f} img/s, decoders {both_decode:6.1f} img/s")
    print(f"shares of each alone, summed: {both_tower / tower + both_decode / decode:.2f}"
          " (1.00: as good as taking turns; lower: contention)")
    print(f"ceiling for decode + tower: {1 / (1 / tower + 1 / decode):.1f} img/s"
          " (set beside bench_rclip.py's indexing rates)")


if __name__ == "__main__":
    main()
