"""Stopping the text tower at the end-of-text token changes nothing."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch

from photofind.core.model.torch_runtime import TorchEncoder, encode_text_short

QUERIES = ["dog", "two dogs in the snow", "grandma's birthday cake with candles at night",
           " ".join(["a very long caption that goes on"] * 20)]  # past the context: cut


@pytest.mark.parametrize("which", ["toy", "ViT-B-32"])
def test_short_text_encoding_equals_encode_text(which: str, toy_model: str) -> None:
    name = toy_model if which == "toy" else "ViT-B-32"
    torch.manual_seed(0)
    model = open_clip.create_model(name, pretrained=None).eval()
    tokens = open_clip.get_tokenizer(name)(QUERIES)
    assert int(tokens.argmax(dim=-1).max()) == tokens.shape[1] - 1  # one fills the context
    with torch.inference_mode():
        reference = model.encode_text(tokens)
        for i in range(len(QUERIES)):  # alone (short) and together (padded to the longest)
            alone = encode_text_short(model, tokens[i:i + 1])
            assert torch.allclose(alone[0], reference[i], atol=1e-5, rtol=1e-4)
        together = encode_text_short(model, tokens)
    cosine = torch.nn.functional.cosine_similarity(together, reference)
    assert cosine.min().item() >= 0.99999


def test_repeated_queries_come_from_the_cache_and_the_cache_stays_small(toy_model: str,
                                                                         monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from photofind.core.model import encoder as module

    emb = TorchEncoder(toy_model, "cpu")
    monkeypatch.setattr(module, "TEXT_CACHE_SIZE", 3)
    first = emb.text_vector("a red circle")
    assert np.allclose(first, emb.encode_texts(["a red circle"])[0], atol=1e-6)
    calls = []
    monkeypatch.setattr(emb, "encode_texts", lambda texts: calls.append(texts) or
                        TorchEncoder.encode_texts(emb, texts))
    assert emb.text_vector("a red circle") is first and not calls
    for text in ("a blue square", "a green star", "a red circle", "a pink heart"):
        emb.text_vector(text)
    assert len(calls) == 3  # "a red circle" was still cached; the oldest, "blue", left
    emb.text_vector("a blue square")
    assert len(calls) == 4


def test_int8_text_tower_keeps_the_toy_models_rankings(toy_model: str) -> None:
    """The CPU's int8 text MLP: query vectors within cosine 0.999 of fp32, and
    every caption ranks drawn pictures exactly as the fp32 model does."""
    import random

    from photofind.core.imaging import model_pixels
    from photofind.testing.shapes import CLASSES, caption, draw_picture

    int8, fp32 = TorchEncoder(toy_model, "cpu"), TorchEncoder(toy_model, "cpu", int8_text=False)
    assert int8.int8_text and not fp32.int8_text
    rng = random.Random(11)
    pictures = np.stack([model_pixels(draw_picture(c, s, (160, 120), rng), fp32.preprocess)
                         for c, s in CLASSES for _ in range(2)])
    images = fp32.encode_images(pictures)
    captions = [caption(c, s) for c, s in CLASSES]
    a, b = int8.encode_texts(captions), fp32.encode_texts(captions)
    assert (a * b).sum(1).min() >= 0.999
    scores_a, scores_b = a @ images.T, b @ images.T
    ranks_a, ranks_b = np.argsort(-scores_a, axis=1), np.argsort(-scores_b, axis=1)
    # The same two pictures lead every caption, in the same order unless fp32
    # itself has them tied closer than int8's error (0.001 in cosine).
    assert (np.sort(ranks_a[:, :2]) == np.sort(ranks_b[:, :2])).all()
    first, second = np.take_along_axis(scores_b, ranks_b[:, :2], axis=1).T
    clear = first - second > 1e-3
    assert (ranks_a[clear, 0] == ranks_b[clear, 0]).all()
    assert (ranks_a[:, 2:][:, :8] == ranks_b[:, 2:][:, :8]).mean() >= 0.8
