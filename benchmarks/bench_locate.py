"""Locate speed: one 12-megapixel camera-like JPEG, ViT-B-32 with random weights,
model loaded (as in the window), CPU threads pinned, one run:
  decode in a worker process (draft mode, oriented, at most 720 px),
  the patches (count from photofind.core.locate.SCALES), their encoding,
  and the whole `locate` call end to end; plus, for the classification side,
  the built-in vocabulary's text vectors (once per model) and labelling a
  library's worth of stored vectors.

    python benchmarks/bench_locate.py [--threads 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time

import numpy as np
from common import CACHE, camera_photo, model_spec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ["PHOTOFIND_THREADS"] = str(args.threads)

    from photofind.core.classify import builtin_vocabulary, concept_vectors, probabilities
    from photofind.core.config import Settings
    from photofind.core.library import Library
    from photofind.core.locate import decode_for_locate, finish, locate, patch_boxes

    photo = CACHE / "locate-12mp.jpg"
    if not photo.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        camera_photo(random.Random(5)).save(photo, "JPEG", quality=90)
    with tempfile.TemporaryDirectory() as tmp, \
            Library.open(Settings.resolve(tmp, model_spec(), "cpu")) as lib:
        start = time.perf_counter()
        encoder = lib.embedder()
        encoder.text_vector("warm-up")
        encoder.encode_images(np.zeros((2, 224, 224, 3), np.uint8))
        print(f"model load + warm-up: {time.perf_counter() - start:.1f} s (not counted below)")
        batch = np.random.default_rng(0).integers(0, 255, (8, 224, 224, 3), np.uint8)
        t0 = time.perf_counter()
        encoder.encode_images(batch)
        alone = 8 / (time.perf_counter() - t0)
        print(f"the image encoder alone, same run: {alone:.1f} images/s at batch 8")
        for i in range(args.repeat):
            t0 = time.perf_counter()
            pixels, w, h = decode_for_locate(str(photo))
            t1 = time.perf_counter()
            found = finish(locate(lib, str(photo), f"a red balloon {i}"))
            t2 = time.perf_counter()
            assert found is not None
            n = len(patch_boxes(pixels.shape[1], pixels.shape[0]))
            print(f"run {i}: decode {1e3 * (t1 - t0):.0f} ms ({w}x{h} -> "
                  f"{pixels.shape[1]}x{pixels.shape[0]}), locate end to end"
                  f" {t2 - t1:.2f} s for {n} patches ({n / (t2 - t1):.1f} patches/s overall)")
        vocab = builtin_vocabulary()
        t0 = time.perf_counter()
        texts = concept_vectors(encoder, vocab)
        t1 = time.perf_counter()
        vectors = np.random.default_rng(0).normal(size=(100_000, texts.shape[1]))
        vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
        t2 = time.perf_counter()
        for start_row in range(0, len(vectors), 20000):
            probabilities(vectors[start_row:start_row + 20000], texts, encoder.logit_scale)
        t3 = time.perf_counter()
        print(f"vocabulary: {len(vocab.concepts)} concepts, text vectors {t1 - t0:.1f} s"
              f" (once per model); softmax for 100,000 stored vectors {t3 - t2:.2f} s")


if __name__ == "__main__":
    main()
