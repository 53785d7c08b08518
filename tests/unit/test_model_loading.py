"""Loading a model: weights copied in per tower, the same numbers as open_clip's loader."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import open_clip
import torch

from photofind.core.model.torch_runtime import TorchEncoder


def reference(spec: str, texts: list[str], pixels: np.ndarray, emb: TorchEncoder
              ) -> tuple[np.ndarray, np.ndarray]:
    model = open_clip.create_model(spec).eval()
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(emb.preprocess.mean).view(1, 3, 1, 1)) \
        / torch.tensor(emb.preprocess.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        t = model.encode_text(open_clip.get_tokenizer(spec)(texts)).numpy()
        i = model.encode_image(x).numpy()
    return (t / np.linalg.norm(t, axis=1, keepdims=True),
            i / np.linalg.norm(i, axis=1, keepdims=True))


def test_each_tower_loads_on_first_use_and_matches_open_clip(toy_model: str) -> None:
    emb = TorchEncoder(toy_model, "cpu", int8_text=False)
    assert emb._towers is not None
    assert not emb._towers.loaded("text") and not emb._towers.loaded("visual")
    texts = ["a red circle", "a blue star"]
    text = emb.encode_texts(texts)
    assert not emb._towers.loaded("visual")  # a text-only process never reads it
    pixels = np.random.default_rng(0).integers(0, 256, (3, emb.preprocess.size,
                                                        emb.preprocess.size, 3), np.uint8)
    image = emb.encode_images(pixels)
    assert emb._towers.loaded("visual")
    ref_text, ref_image = reference(toy_model, texts, pixels, emb)
    assert (text * ref_text).sum(1).min() >= 0.99999
    assert (image * ref_image).sum(1).min() >= 0.99999


def test_a_checkpoint_in_another_format_loads_through_open_clip(toy_model: str,
                                                                 tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(toy_model.split(":", 1)[1], folder)
    from safetensors.torch import load_file

    state = load_file(str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_model.safetensors").unlink()
    torch.save(state, folder / "open_clip_pytorch_model.bin")
    emb = TorchEncoder(f"local-dir:{folder}", "cpu", int8_text=False)
    assert emb._towers is None
    pixels = np.zeros((1, emb.preprocess.size, emb.preprocess.size, 3), np.uint8)
    ref_text, ref_image = reference(toy_model, ["a green square"], pixels, emb)
    assert float(emb.encode_texts(["a green square"])[0] @ ref_text[0]) >= 0.99999
    assert float(emb.encode_images(pixels)[0] @ ref_image[0]) >= 0.99999
