"""CUDA path check: the toy model gives the same answers on CUDA (fp16
autocast) as on the CPU, and ViT-B-32 (random weights, the real compute)
throughput on the GPU. Prints figures; run on a machine with CUDA:

    python benchmarks/cuda_check.py local-dir:/path/to/toy-model
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np


def median_seconds(fn: Callable[[], object], warmup: int, repeat: int) -> float:
    """Median wall time of fn on the GPU (fp16 autocast, synchronised)."""
    import torch

    times = []
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16):
        for i in range(warmup + repeat):
            torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(toy: str) -> None:
    import open_clip
    import torch

    from photofind.core.imaging import model_pixels
    from photofind.core.model.torch_runtime import TorchEncoder
    from photofind.testing import shapes

    print("torch", torch.__version__, "device", torch.cuda.get_device_name(0))
    cpu, gpu = TorchEncoder(toy, "cpu"), TorchEncoder(toy, "cuda")
    rng = random.Random(5)
    pixels = np.stack([model_pixels(shapes.draw_picture(c, s, (400, 300), rng), cpu.preprocess)
                       for c, s in shapes.CLASSES for _ in range(3)])
    a, b = cpu.encode_images(pixels), gpu.encode_images(pixels)
    cos = (a * b).sum(1)
    print(f"toy images: cuda vs cpu cosine min {cos.min():.6f} median {np.median(cos):.6f}")
    texts = [shapes.caption(c, s) for c, s in shapes.CLASSES]
    t = (cpu.encode_texts(texts) * gpu.encode_texts(texts)).sum(1)
    print(f"toy texts:  cuda vs cpu cosine min {t.min():.6f}")
    labels = np.repeat(np.arange(len(shapes.CLASSES)), 3)
    top = np.argsort(-(gpu.encode_texts(texts) @ b.T), axis=1)[:, :3]
    print(f"toy precision@3 on cuda: {np.mean(labels[top] == np.arange(20)[:, None]):.3f}")

    model = open_clip.create_model("ViT-B-32", pretrained=None).cuda().eval()
    for batch in (64, 256):
        x = torch.randn(batch, 3, 224, 224, device="cuda")
        seconds = median_seconds(lambda x=x: model.encode_image(x), warmup=3, repeat=5)
        print(f"ViT-B-32 encode_image fp16 batch {batch}: {batch / seconds:.0f} images/s"
              " (median of 5)")
    q = open_clip.get_tokenizer("ViT-B-32")(["two dogs in the snow"]).cuda()
    seconds = median_seconds(lambda: model.encode_text(q), warmup=5, repeat=20)
    print(f"ViT-B-32 text query (77 tokens) fp16: p50 {seconds * 1e3:.2f} ms")
    side = gpu.preprocess.size
    pix = np.random.default_rng(0).integers(0, 256, (64, side, side, 3), dtype=np.uint8)
    gpu.encode_images(pix[:8])
    start = time.perf_counter()
    for _ in range(5):
        gpu.encode_images(pix)
    print(f"toy TorchEncoder.encode_images batch 64 incl. host->device: "
          f"{5 * 64 / (time.perf_counter() - start):.0f} images/s")


if __name__ == "__main__":
    main(sys.argv[1])
