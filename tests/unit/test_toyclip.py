"""The toy CLIP is really trained, deterministic, and good enough to test with."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from photofind.core.imaging import model_pixels
from photofind.core.model.torch_runtime import TorchEncoder
from photofind.testing import shapes, toyclip


def test_training_is_deterministic_from_its_seed(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    a = load_file(str(toyclip.train(tmp_path / "a", steps=3, images=40)
                      / "open_clip_model.safetensors"))
    b = load_file(str(toyclip.train(tmp_path / "b", steps=3, images=40)
                      / "open_clip_model.safetensors"))
    c = load_file(str(toyclip.train(tmp_path / "c", steps=3, images=40, seed=5)
                      / "open_clip_model.safetensors"))
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_text_query_puts_the_named_shape_first(toy_model: str) -> None:
    emb = TorchEncoder(toy_model, "cpu")
    rng = random.Random(2024)  # pictures the model never saw
    pixels, labels = [], []
    for k, (colour, shape) in enumerate(shapes.CLASSES):
        for _ in range(6):
            size = rng.choice([(400, 300), (300, 400), (360, 360)])
            pixels.append(model_pixels(shapes.draw_picture(colour, shape, size, rng),
                                       emb.preprocess))
            labels.append(k)
    images = emb.encode_images(np.stack(pixels))
    texts = emb.encode_texts([shapes.caption(c, s) for c, s in shapes.CLASSES])
    truth = np.array(labels)
    top5 = np.argsort(-(texts @ images.T), axis=1)[:, :5]
    precision = np.mean(truth[top5] == np.arange(len(shapes.CLASSES))[:, None])
    assert precision >= 0.8
