"""Fidelity of the opt-in int8 image tower (PHOTOFIND_IMAGE_INT8=1) against
fp32 on ONNX Runtime: the cosine between each drawn picture's two vectors, on
the toy CLIP and on ViT-B-32-256 with random weights, and the toy's
precision@5 for every caption with either tower (one run; its speed is a
figure of bench_rclip.py).

    python benchmarks/bench_int8_image.py [--per-class 6]
"""

from __future__ import annotations

import argparse
import random

import numpy as np
import numpy.typing as npt
from common import CACHE

from photofind.core.imaging import model_pixels
from photofind.core.model.export import exported_folder
from photofind.core.model.onnx_runtime import OnnxEncoder
from photofind.testing.shapes import CLASSES, caption, draw_picture
from photofind.testing.toyclip import random_model_dir, toy_model_dir


def _precision_at_5(texts: npt.NDArray[np.float32], images: npt.NDArray[np.float32],
                    per_class: int) -> float:
    labels = np.arange(len(CLASSES)).repeat(per_class)
    top = np.argsort(-(texts @ images.T), axis=1)[:, :5]
    return float(np.mean([(labels[top[i]] == i).mean() for i in range(len(CLASSES))]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-class", type=int, default=6)
    args = parser.parse_args()
    models = (("toy CLIP", f"local-dir:{toy_model_dir()}"),
              ("ViT-B-32-256 random", f"local-dir:{random_model_dir('ViT-B-32-256', CACHE)}"))
    for name, spec in models:
        folder = exported_folder(spec)
        fp32 = OnnxEncoder(folder, spec, int8_text=False)
        int8 = OnnxEncoder(folder, spec, int8_text=False, int8_image=True)
        rng = random.Random(5)
        pixels = np.stack([model_pixels(draw_picture(c, s, (200, 160), rng), fp32.preprocess)
                           for c, s in CLASSES for _ in range(args.per_class)])
        a, b = fp32.encode_images(pixels), int8.encode_images(pixels)
        cosines = (a * b).sum(axis=1)
        line = (f"{name:<20} {len(pixels)} drawn pictures: int8/fp32 cosine min"
                f" {cosines.min():.4f}, median {np.median(cosines):.4f}")
        if name == "toy CLIP":  # the only one whose rankings mean something
            texts = fp32.encode_texts([caption(c, s) for c, s in CLASSES])
            line += (f"; precision@5 fp32 {_precision_at_5(texts, a, args.per_class):.3f},"
                     f" int8 {_precision_at_5(texts, b, args.per_class):.3f}")
        print(line)


if __name__ == "__main__":
    main()
