"""Export an open_clip model to an ONNX folder (the layout in sources.py), with torch.

Both towers go through torch's dynamo exporter with an example batch of 2 and
a dynamic batch dimension (a batch-1 example fixes the graph at 1), with the
multi-head-attention fast path off and each self-attention written out plainly
(one projection, one head split, the scores and the merge: torch's own module
exports with eight layout changes a block, and ONNX Runtime runs that image
tower 6% slower); a block without a mask is then one ONNX Runtime ``Attention``
node (fusion.py). CLIP's causal text tower is exported with
a dynamic sequence length too, so the ONNX runtime can stop at the end-of-text
token. Every export is checked before it is kept: 16 drawn pictures and 16
captions must come out within cosine 0.99999 of open_clip's own encode_image
and encode_text (through photofind's tokenizer and ONNX Runtime); a folder that
fails is not written.

``exported_folder`` is the cache the ONNX runtime uses for a model that has no
ONNX folder yet: exported once (with a progress line), reused from then on.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import random
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from photofind.core.errors import PhotofindError
from photofind.core.model.fusion import fuse_attention
from photofind.core.model.sources import cached_export, export_cache_folder, is_onnx_folder
from photofind.core.model.tokenizer import write_clip_tokenizer

log = logging.getLogger(__name__)

PARITY = 0.99999
OUTPUT = "embedding"  # Immich names both outputs so
CAPTIONS = ["a dog", "two dogs playing in the snow", "a red circle", "a blue square",
            "grandma's birthday cake with candles", "Sunset over the sea!", "东京的夜景",
            "a photo of a cat 🐱", "", "an old black-and-white portrait, 1920s",
            "city street at night, rain, neon", "a green star", "a yellow triangle",
            "mountains", " ".join(["a very long caption that goes on"] * 20), "café"]


def exported_folder(spec: str) -> Path:
    """The cached ONNX export of an open_clip model, made on first use."""
    from filelock import FileLock

    folder = export_cache_folder(spec)
    if is_onnx_folder(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not is_onnx_folder(folder):  # another process may have made it meanwhile
            shutil.rmtree(folder, ignore_errors=True)
            export_onnx(spec, folder, lambda: log.warning(
                "converting %s to ONNX once (this takes a minute or two); it is kept in %s",
                spec, folder))
    return folder


def export_to(spec: str, out: Path, loaded: Callable[[], None] | None = None) -> bool:
    """``photofind model export``: ``spec`` as an ONNX folder at ``out`` (new or
    empty). A model the ONNX runtime converted before is copied from its cache
    (that export passed the same parity check, made by this exporter from these
    weights); otherwise it is exported. Returns whether it was copied."""
    cached = cached_export(spec)
    if cached is None:
        export_onnx(spec, out, loaded)
        return False
    with _written_as(out) as tmp:
        shutil.copytree(cached, tmp, dirs_exist_ok=True)
    return True


def _refuse_taken(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PhotofindError(f"{out} already exists and is not an empty folder.")


@contextlib.contextmanager
def _written_as(out: Path) -> Iterator[Path]:
    """A new folder beside ``out`` that becomes ``out`` when the block ends
    without an error; otherwise nothing appears."""
    _refuse_taken(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        probe = tmp / "probe"  # made as any new folder is (the umask), not owner-only
        probe.mkdir()
        tmp.chmod(probe.stat().st_mode)
        probe.rmdir()
        yield tmp
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_onnx(spec: str, out: Path, loaded: Callable[[], None] | None = None) -> Path:
    """Export ``spec`` into the folder ``out`` (new or empty), parity checked;
    ``loaded`` is called once the torch model is in, before the slow part."""
    import torch

    from photofind.core.model.torch_runtime import load_open_clip, model_config, stops_at_eot

    _refuse_taken(out)
    model, tokenizer, preprocess_cfg, towers = load_open_clip(spec)
    if towers is not None:
        towers.ensure("visual")
        towers.ensure("text")
    model.eval()
    if loaded is not None:
        loaded()
    config = model_config(spec)
    text_cfg = config.get("text_cfg") or {}
    context = int(text_cfg.get("context_length") or 77)
    short = stops_at_eot(model)
    with _written_as(out) as tmp:
        (tmp / "visual").mkdir()
        (tmp / "textual").mkdir()
        if text_cfg.get("hf_tokenizer_name"):
            _save_hf_tokenizer(str(text_cfg["hf_tokenizer_name"]), tmp / "textual")
        else:
            write_clip_tokenizer(tmp / "textual", context)
        logit_scale = float(model.logit_scale.detach().exp().item())
        config["photofind"] = {"logit_scale": logit_scale, "text_stops_at_eot": short,
                               "exported_from": spec}
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        (tmp / "visual" / "preprocess_cfg.json").write_text(json.dumps(preprocess_cfg))
        size = preprocess_cfg["size"]
        side = int(size if isinstance(size, int) else size[0])
        with _quiet(), _no_fast_path(torch), _plain_attention(model):
            _export(_tower(model, "image"), torch.randn(2, 3, side, side),
                    tmp / "visual" / "model.onnx", "image", seq=False)
            _export(_tower(model, "text", short), tokenizer(CAPTIONS[:2]).to(torch.int32),
                    tmp / "textual" / "model.onnx", "text", seq=short)
        check_parity(model, tokenizer, tmp)
    return out


def _tower(model: Any, which: str, short: bool = False) -> Any:
    """One tower of a CLIP as a module whose output is the unit embedding."""
    import torch

    from photofind.core.model.torch_runtime import encode_text_prefix

    class Tower(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.model, self.which, self.short = model, which, short

        def forward(self, x: Any) -> Any:
            if self.which == "image":
                feats = self.model.encode_image(x)
            elif self.short:
                feats = encode_text_prefix(self.model, x.long())
            else:
                feats = self.model.encode_text(x.long())
            return torch.nn.functional.normalize(feats, dim=-1)

    return Tower()


def _export(module: Any, example: Any, path: Path, name: str, seq: bool) -> None:
    proto = tower_graph(module, example, name, seq)
    log.debug("%s tower: %d attention blocks fused", name, fuse_attention(proto))
    import onnx

    # The weights beside the graph (model.onnx.data): ONNX Runtime maps that file
    # instead of parsing it out of the graph, and a session starts in 0.31 s
    # instead of 0.53-1.1 s, 30-200 MB lighter (ViT-B-32's image tower, measured here).
    onnx.save_model(proto, str(path), save_as_external_data=True, size_threshold=1024,
                    location=path.name + ".data")
    # onnx writes the weights readable by their owner only; a folder exported
    # to share (or to install for every user) is readable as its graph is.
    shutil.copymode(path, path.with_name(path.name + ".data"))


def tower_graph(module: Any, example: Any, name: str, seq: bool) -> Any:
    """One tower through the dynamo exporter (dynamic batch, and sequence when
    ``seq``), its input named ``name`` and its output OUTPUT, before fusion."""
    import torch

    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes: dict[int, Any] = {0: batch}
    if seq:
        shapes[1] = torch.export.Dim("seq", min=2, max=int(example.shape[1]))
    try:
        program = torch.onnx.export(module, (example,), dynamo=True, input_names=[name],
                                    output_names=["photofind_output"],
                                    dynamic_shapes={"x": shapes}, verbose=False)
        assert program is not None
        proto = program.model_proto
    except Exception as exc:
        log.debug("export failed", exc_info=True)
        raise PhotofindError(f"torch could not export the {name} tower to ONNX ({exc}).") \
            from exc
    _rename(proto.graph, OUTPUT, OUTPUT + "_inner")  # the embedding op's value has its name
    _rename(proto.graph, "photofind_output", OUTPUT)
    return proto


def _rename(graph: Any, old: str, new: str) -> None:
    """Rename a value everywhere in a graph (node inputs and outputs, graph outputs)."""
    for node in graph.node:
        node.input[:] = [new if v == old else v for v in node.input]
        node.output[:] = [new if v == old else v for v in node.output]
    for value in [*graph.output, *graph.value_info]:
        if value.name == old:
            value.name = new


def check_parity(model: Any, tokenizer: Any, folder: Path) -> float:
    """The lowest cosine between the folder's vectors (ONNX Runtime, photofind's
    tokenizer) and open_clip's; raises when below PARITY."""
    import torch

    from photofind.core.model.onnx_runtime import OnnxEncoder

    onnx = OnnxEncoder(folder, "export-check", int8_text=False)
    pixels = drawn_pictures(16, onnx.preprocess)
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(onnx.preprocess.mean).view(1, 3, 1, 1)) \
        / torch.tensor(onnx.preprocess.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        images = model.encode_image(x).float().numpy()
        texts = model.encode_text(tokenizer(CAPTIONS)).float().numpy()
    got_images = onnx.encode_images(pixels)
    got_texts = np.concatenate([onnx.encode_texts(CAPTIONS), onnx.encode_texts(CAPTIONS[:1])])
    worst = min(_min_cosine(got_images, images),
                _min_cosine(got_texts, np.concatenate([texts, texts[:1]])))
    if worst < PARITY:
        raise PhotofindError(f"The ONNX export does not match the torch model (cosine"
                             f" {worst:.6f} < {PARITY}); nothing was written.")
    return worst


def drawn_pictures(n: int, pre: Any, seed: int = 7) -> npt.NDArray[np.uint8]:
    """``n`` drawn pictures (shapes of many colours) at the model's input size."""
    from photofind.core.imaging import model_pixels
    from photofind.testing.shapes import CLASSES, draw_picture

    rng = random.Random(seed)
    return np.stack([model_pixels(draw_picture(*CLASSES[i % len(CLASSES)],
                                               (rng.randint(120, 400), rng.randint(120, 400)),
                                               rng), pre) for i in range(n)])


def _min_cosine(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(1).min())


def _save_hf_tokenizer(name: str, folder: Path) -> None:
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise PhotofindError(f"This model's text tower uses the Hugging Face tokenizer {name};"
                             " exporting it needs the transformers package.") from None
    AutoTokenizer.from_pretrained(name).save_pretrained(str(folder))


@contextlib.contextmanager
def _no_fast_path(torch: Any) -> Iterator[None]:
    """The fused attention kernel does not export; the plain one does."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


@contextlib.contextmanager
def _plain_attention(model: Any) -> Iterator[None]:
    """Each ``nn.MultiheadAttention`` of ``model`` computes through
    ``_plain`` while the block runs (the same arithmetic, fewer
    transposes in the exported graph); the modules are put back after."""
    import torch

    swapped = [(block, block.attn) for block in model.modules()
               if isinstance(getattr(block, "attn", None), torch.nn.MultiheadAttention)]
    for block, attn in swapped:
        block.attn = _plain(attn)
    try:
        yield
    finally:
        for block, attn in swapped:
            block.attn = attn


def _plain(mha: Any) -> Any:
    """A wrapper of one ``nn.MultiheadAttention`` for export: self-attention with
    at most a 2-D mask is written out; anything else goes to the module itself."""
    import torch
    import torch.nn.functional as F

    class PlainAttention(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.mha = mha

        def forward(self, q: Any, k: Any, v: Any, need_weights: bool = True,
                    attn_mask: Any = None, **kwargs: Any) -> tuple[Any, None]:
            m = self.mha
            if (q is not k or k is not v or need_weights or kwargs.get("key_padding_mask")
                    is not None or kwargs.get("is_causal") or m.in_proj_weight is None
                    or m.bias_k is not None or m.add_zero_attn or (m.training and m.dropout)
                    or (attn_mask is not None and attn_mask.dim() != 2)):
                whole: tuple[Any, None] = m(q, k, v, need_weights=need_weights,
                                            attn_mask=attn_mask, **kwargs)
                return whole
            x = q if m.batch_first else q.transpose(0, 1)
            batch, length, width = x.shape
            heads = m.num_heads
            qkv = F.linear(x, m.in_proj_weight, m.in_proj_bias)
            qkv = qkv.view(batch, length, 3, heads, width // heads).permute(2, 0, 3, 1, 4)
            scores = (qkv[0] * (width // heads) ** -0.5) @ qkv[1].transpose(-2, -1)
            if attn_mask is not None:
                scores = scores + (torch.zeros_like(attn_mask, dtype=scores.dtype)
                                   .masked_fill(attn_mask, float("-inf"))
                                   if attn_mask.dtype == torch.bool else attn_mask)
            out = (scores.softmax(-1) @ qkv[2]).transpose(1, 2).reshape(batch, length, width)
            out = F.linear(out, m.out_proj.weight, m.out_proj.bias)
            return (out if m.batch_first else out.transpose(0, 1)), None

    return PlainAttention()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter prints its progress and warns about its own internals."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
