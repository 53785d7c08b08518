"""rclip's model folder, offline: a random-weight ViT-B-32-256 exported to ONNX in
the layout rclip downloads, so that rclip runs with no network and with the same
weights (and compute) as photofind's random-weight ViT-B-32-256 folder.

rclip 4.x reads, under its data directory (RCLIP_DATADIR):
  ViT-B-32-256-datacomp_s34b_b86k/visual.onnx   float32 input  [N, 3, 256, 256] -> output [N, 512]
  ViT-B-32-256-datacomp_s34b_b86k/textual.onnx  int64   input  [N, 77]          -> output [N, 512]
  tokenizer/bpe_simple_vocab_16e6.txt.gz         the CLIP BPE merges
  LICENSE, OPENAI-CLIP-MIT.txt, README.md, THIRD_PARTY_NOTICES.md (present, or it downloads)
and keeps its index in db.sqlite3 beside them. Made once with torch, then cached.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

MODEL_SUBDIR = "ViT-B-32-256-datacomp_s34b_b86k"
VOCAB = "tokenizer/bpe_simple_vocab_16e6.txt.gz"
LEGAL = ("LICENSE", "OPENAI-CLIP-MIT.txt", "README.md", "THIRD_PARTY_NOTICES.md")


def rclip_model_dir(weights: Path, cache: Path) -> Path:
    """The folder with rclip's files, exported from the open_clip ``local-dir:``
    folder ``weights`` (made once, then cached under ``cache``)."""
    target = cache / f"rclip-model-{weights.name}"
    if (target / ".complete").is_file():
        return target
    tmp = Path(tempfile.mkdtemp(prefix="rclip-model-", dir=cache))
    try:
        _export(weights, tmp)
        (tmp / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def fresh_datadir(model: Path, where: Path) -> Path:
    """An rclip data directory with the model linked in and no index yet."""
    where.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_SUBDIR, "tokenizer", *LEGAL):
        (where / name).symlink_to(model / name)
    return where


def _export(weights: Path, out: Path) -> None:
    import onnxruntime as ort
    import open_clip
    import torch

    torch.backends.mha.set_fastpath_enabled(False)
    model = open_clip.create_model(f"local-dir:{weights}").eval().requires_grad_(False)
    size = model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) \
        else model.visual.image_size

    class Tower(torch.nn.Module):  # type: ignore[misc]
        def __init__(self, text: bool) -> None:
            super().__init__()
            self.clip, self.text = model, text

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.clip.encode_text(x) if self.text else self.clip.encode_image(x)

    (out / MODEL_SUBDIR).mkdir(parents=True)
    pixels = torch.randn(2, 3, size, size)
    tokens = open_clip.get_tokenizer("ViT-B-32-256")(["a dog on the beach", "x"])
    for module, example, name in ((Tower(False), pixels, "visual.onnx"),
                                  (Tower(True), tokens, "textual.onnx")):
        path = out / MODEL_SUBDIR / name
        torch.onnx.export(module, (example,), str(path), input_names=["input"],
                          output_names=["output"], opset_version=17, dynamo=False,
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        with torch.inference_mode():
            want = module(example).numpy()
        got = session.run(None, {"input": example.numpy()})[0]
        diff = float(np.abs(got - want).max())
        if diff > 1e-3:
            raise SystemExit(f"the exported {name} differs from open_clip by {diff:g}")
    (out / "tokenizer").mkdir()
    shutil.copy(Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz", out / VOCAB)
    for name in LEGAL:  # rclip downloads these when missing; placeholders keep it offline
        (out / name).write_text("random-weight benchmark copy, not rclip's published model\n")
