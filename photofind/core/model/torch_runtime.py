"""The torch runtime: CLIP through open_clip on CUDA, MPS or the CPU.

The only photofind module that imports torch and open_clip at run time (the
exporter and the toy trainer do too), and only when a model is first loaded.
Weights come from the Hugging Face cache (safetensors preferred, ``torch.load``
only with ``weights_only``) or a ``local-dir:`` folder, copied in one tower at
a time on first use. On the CPU the text tower runs only up to the end-of-text
token and with int8 weights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from photofind.core.config import ModelSpec, parse_model_spec
from photofind.core.errors import ModelUnavailableError, PhotofindError
from photofind.core.model.encoder import Encoder
from photofind.core.model.preprocess import preprocess_from_config, unit_rows
from photofind.core.model.runtime import cpu_threads, int8_text_default
from photofind.core.model.sources import hub_reachable, in_hf_cache, offline_message

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """auto -> CUDA, else Metal, else the CPU; an unavailable choice is an error."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise PhotofindError("CUDA was asked for, but torch sees no CUDA device here.")
    if device == "mps" and not torch.backends.mps.is_available():
        raise PhotofindError("MPS was asked for, but this machine has no Metal device.")
    return device


class TorchEncoder(Encoder):
    """An open_clip model on one torch device."""

    runtime = "torch"

    def __init__(self, spec: str, device: str = "auto", int8_text: bool | None = None,
                 model_id: str | None = None) -> None:
        """``int8_text``: int8 weights for the text tower on the CPU (the default
        there): a query streams a quarter of the bytes (see quantize_text). Only
        query vectors change; stored image vectors do not depend on it."""
        import torch

        super().__init__()
        self.spec = spec
        self.model_id = model_id or spec
        self.device = resolve_device(device)
        if self.device == "cpu":
            torch.set_num_threads(cpu_threads())
            torch.set_flush_denormal(True)
        self._model, self._tokenizer, cfg, self._towers = load_open_clip(spec)
        self._model.to(self.device).eval()
        self.int8_text = int8_text_default(self.device) if int8_text is None else int8_text
        self._text_ready = False
        self._setup_lock = threading.Lock()
        self.preprocess = preprocess_from_config(cfg["size"], cfg, spec)
        self.dim = output_dim(self._model)
        self._mean = torch.tensor(self.preprocess.mean).view(1, 3, 1, 1).to(self.device)
        self._std = torch.tensor(self.preprocess.std).view(1, 3, 1, 1).to(self.device)

    @property
    def logit_scale(self) -> float:
        if self._towers is not None and not self._towers.loaded("text"):
            return self._towers.scalar("logit_scale")
        return float(self._model.logit_scale.detach().exp().item())

    def prepare_images(self) -> None:
        if self._towers is not None:
            self._towers.ensure("visual")

    def encode_images(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        import torch

        self.prepare_images()
        x = torch.from_numpy(np.array(pixels, dtype=np.uint8, copy=True))
        if self.device == "cuda":  # uint8 over the bus (4x less than float), from pinned memory
            x = x.pin_memory().to(self.device, non_blocking=True)
        else:
            x = x.to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        x = (x - self._mean) / self._std
        with torch.inference_mode(), self._autocast():
            feats = self._model.encode_image(x)
        return unit_rows(feats.float().cpu().numpy())

    def encode_texts(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import torch

        self._prepare_text()
        tokens = self._tokenizer(texts).to(self.device)
        with torch.inference_mode(), self._autocast():
            feats = encode_text_short(self._model, tokens)
        return unit_rows(feats.float().cpu().numpy())

    def _prepare_text(self) -> None:
        """Text weights in (on first use: indexing never needs them), then int8."""
        with self._setup_lock:
            if self._text_ready:
                return
            if self._towers is not None:
                self._towers.ensure("text")
            if self.int8_text:
                quantize_text(self._model)
            self._text_ready = True

    def _autocast(self) -> Any:
        import torch

        if self.device == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return torch.autocast("cpu", enabled=False)


def output_dim(model: Any) -> int:
    """The embedding width, from the model's structure (no weights needed)."""
    dim = getattr(getattr(model, "visual", None), "output_dim", None)
    if isinstance(dim, int):
        return dim
    projection = getattr(model, "text_projection", None)
    width = getattr(projection, "out_features", None)
    if isinstance(width, int):
        return width
    if projection is not None and hasattr(projection, "shape"):
        return int(projection.shape[-1])
    raise PhotofindError("photofind cannot tell this model's embedding width.")


def quantize_text(model: Any) -> None:
    """Give the text transformer int8 weights, in place (CPU only).

    A short text query is memory-bound: the text tower's weights stream through
    the CPU once per query, and int8 cuts those bytes by four (cosine to fp32:
    0.997-0.998 on random-weight ViT-B-32, above 0.999 on the toy model, whose
    rankings tests/unit check do not change). The
    attention's projections live inside nn.MultiheadAttention, which dynamic
    quantization skips, so each is first rebuilt from plain Linear layers. The
    image tower stays fp32.
    """
    import warnings

    import torch

    transformer = getattr(model, "transformer", None)
    if transformer is None:
        return
    for block in getattr(transformer, "resblocks", []):
        attn = getattr(block, "attn", None)
        if isinstance(attn, torch.nn.MultiheadAttention) and attn._qkv_same_embed_dim:
            block.attn = _linear_attention(attn)
    with warnings.catch_warnings():  # torch.ao.quantization says it will move to torchao
        warnings.simplefilter("ignore")
        torch.ao.quantization.quantize_dynamic(transformer, {torch.nn.Linear},
                                               dtype=torch.qint8, inplace=True)


def _linear_attention(mha: Any) -> Any:
    """Self-attention equal to ``mha`` (called as open_clip calls it), with its
    projections as nn.Linear layers that dynamic quantization can replace."""
    import torch
    import torch.nn.functional as F

    class LinearSelfAttention(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            dim = mha.embed_dim
            self.heads, self.batch_first = mha.num_heads, mha.batch_first
            self.qkv = torch.nn.Linear(dim, 3 * dim, bias=mha.in_proj_bias is not None)
            self.out = torch.nn.Linear(dim, dim, bias=mha.out_proj.bias is not None)
            with torch.no_grad():
                self.qkv.weight.copy_(mha.in_proj_weight)
                self.out.weight.copy_(mha.out_proj.weight)
                if mha.in_proj_bias is not None:
                    self.qkv.bias.copy_(mha.in_proj_bias)
                if mha.out_proj.bias is not None:
                    self.out.bias.copy_(mha.out_proj.bias)

        def forward(self, q_x: Any, k_x: Any = None, v_x: Any = None,
                    need_weights: bool = False, attn_mask: Any = None) -> tuple[Any, None]:
            x = q_x if self.batch_first else q_x.transpose(0, 1)  # (batch, tokens, dim)
            n, length, dim = x.shape
            qkv = self.qkv(x).reshape(n, length, 3, self.heads, dim // self.heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
            y = self.out(y.transpose(1, 2).reshape(n, length, dim))
            return (y if self.batch_first else y.transpose(0, 1)), None

    return LinearSelfAttention()


def stops_at_eot(model: Any) -> bool:
    """CLIP's own text tower: causal, pooled at the end-of-text token (the
    highest id, hence argmax pooling), so the padding after it cannot change
    the result."""
    from open_clip.model import CLIP

    return (type(model) is CLIP and getattr(model, "text_pool_type", None) == "argmax"
            and getattr(model, "attn_mask", None) is not None)


def encode_text_short(model: Any, tokens: Any) -> Any:
    """``model.encode_text``, run only up to the last end-of-text token: a
    query of 8 tokens need not pay for 77. Models with another text tower or
    pooling take the standard path."""
    if not stops_at_eot(model):
        return model.encode_text(tokens)
    return encode_text_prefix(model, tokens[:, :int(tokens.argmax(dim=-1).max()) + 1])


def encode_text_prefix(model: Any, tokens: Any) -> Any:
    """The text tower on the positions given (a prefix of the context that
    holds every end token), with positional embedding and causal mask sliced
    to match. Traceable: the exporter builds the ONNX text graph from it."""
    import torch
    from open_clip.transformer import text_global_pool

    n = tokens.shape[1]
    cast_dtype = model.token_embedding.weight.dtype
    x = model.token_embedding(tokens).to(cast_dtype)
    x = x + model.positional_embedding[:n].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:n, :n])
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, "argmax")
    projection = model.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection


def load_open_clip(text: str) -> tuple[Any, Any, dict[str, Any], TowerWeights | None]:
    """(model, tokenizer, preprocess config, per-tower weights or None) for a spec."""
    import open_clip

    spec = parse_model_spec(text)
    if spec.kind == "local-dir":
        if not os.path.isfile(os.path.join(spec.name, "open_clip_config.json")):
            raise ModelUnavailableError(
                f"The model folder {spec.name} has no open_clip_config.json: it should hold"
                " open_clip_config.json and the weights (open_clip_model.safetensors).")
        name, pretrained = f"local-dir:{spec.name}", None
    elif spec.kind == "hf-hub":
        name, pretrained = f"hf-hub:{spec.name}", None
    else:
        if spec.name not in open_clip.list_models():
            raise PhotofindError(f"Unknown model {spec.name!r}: see open_clip's model list.")
        tags = open_clip.list_pretrained_tags_by_model(spec.name)
        if spec.pretrained not in tags:
            raise PhotofindError(
                f"Model {spec.name} has no pretrained weights {spec.pretrained!r};"
                f" known tags: {', '.join(tags) or 'none'}.")
        name, pretrained = spec.name, spec.pretrained
    repo = None if spec.kind == "local-dir" else (
        spec.name if spec.kind == "hf-hub" else pretrained_repo(spec))
    cached = repo is None or in_hf_cache(repo)
    if not cached and not hub_reachable():
        raise ModelUnavailableError(offline_message(spec, text, repo))
    previous = os.environ.get("HF_HUB_OFFLINE")
    if cached:  # no HEAD requests to the hub for files we already have
        os.environ["HF_HUB_OFFLINE"] = "1"
    logging.disable(logging.ERROR)  # open_clip and the hub log failures we report ourselves
    try:
        path, towers = _weights_file(spec, repo), None
        if path is not None:  # built without random init, weights copied in per tower
            with _skip_init():
                model, _, _ = open_clip.create_model_and_transforms(
                    name, pretrained=pretrained, weights_only=True, load_weights=False)
            towers = TowerWeights.open(model, path)
        if towers is None:  # another format: open_clip's own loader, all at once
            model, _, _ = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, weights_only=True)
        tokenizer = open_clip.get_tokenizer(name)
    except Exception as exc:
        logging.disable(logging.NOTSET)
        log.debug("model load failed", exc_info=True)
        raise ModelUnavailableError(offline_message(spec, text, repo)) from exc
    finally:
        logging.disable(logging.NOTSET)
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous
    return model, tokenizer, open_clip.get_model_preprocess_cfg(model), towers


def _weights_file(spec: ModelSpec, repo: str | None) -> str | None:
    """The model's safetensors file when it is on this machine already."""
    if spec.kind == "local-dir":
        path = os.path.join(spec.name, "open_clip_model.safetensors")
        return path if os.path.isfile(path) else None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, "open_clip_model.safetensors") if repo else None
    return found if isinstance(found, str) else None


@contextlib.contextmanager
def _skip_init() -> Iterator[None]:
    """Build a model without filling its weights with random numbers (seconds on
    a laptop for ViT-B-32), since the checkpoint overwrites every one of them.
    Untouched weights also take no memory until they are written."""
    import torch

    names = ("uniform_", "normal_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_",
             "xavier_uniform_", "xavier_normal_", "zeros_", "ones_", "constant_", "orthogonal_")
    saved = {n: getattr(torch.nn.init, n) for n in names}
    for n in names:
        setattr(torch.nn.init, n, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for n, fn in saved.items():
            setattr(torch.nn.init, n, fn)


class TowerWeights:
    """Checkpoint tensors copied into the model one tower at a time, each on its
    first use: a process that only answers text queries never reads (or holds)
    the image tower's weights, and indexing never holds the text tower's."""

    def __init__(self, model: Any, path: str, keys: dict[str, tuple[int, ...]]) -> None:
        self.model = model  # moved to its device in place later: state_dict() follows
        self.path = path
        self._keys = keys
        self._loaded: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def open(cls, model: Any, path: str) -> TowerWeights | None:
        """None unless the file holds exactly the model's tensors, shapes included."""
        from safetensors import safe_open

        state = model.state_dict()
        with safe_open(path, "pt") as fh:
            keys = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
        if keys != {k: tuple(v.shape) for k, v in state.items()}:
            return None
        return cls(model, path, keys)

    def loaded(self, tower: str) -> bool:
        return tower in self._loaded

    def scalar(self, key: str) -> float:
        """One scalar from the checkpoint (exp() applied to logit_scale)."""
        import math

        from safetensors import safe_open

        with safe_open(self.path, "pt") as fh:
            value = float(fh.get_tensor(key).float().item())
        return math.exp(value) if key == "logit_scale" else value

    def ensure(self, tower: str) -> None:
        """Copy in the weights of "text" (and shared ones) or "visual", once."""
        import torch
        from safetensors import safe_open

        with self._lock:
            if tower in self._loaded:
                return
            state = self.model.state_dict()
            with safe_open(self.path, "pt") as fh, torch.no_grad():
                for key in self._keys:
                    if key.startswith("visual.") == (tower == "visual"):
                        state[key].copy_(fh.get_tensor(key))
            self._loaded.add(tower)




def pretrained_repo(spec: ModelSpec) -> str | None:
    """The Hugging Face repo that holds a pretrained tag's weights."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(spec.name, spec.pretrained or "")
    repo = str(cfg.get("hf_hub") or "").strip("/")
    return repo or None


def model_config(spec_text: str) -> dict[str, Any]:
    """open_clip's model config (embed_dim, vision_cfg, text_cfg) for a spec."""
    import open_clip

    spec = parse_model_spec(spec_text)
    if spec.kind == "pretrained":
        cfg = open_clip.get_model_config(spec.name)
        if cfg is None:
            raise PhotofindError(f"Unknown model {spec.name!r}: see open_clip's model list.")
        return dict(cfg)
    if spec.kind == "local-dir":
        path = os.path.join(spec.name, "open_clip_config.json")
    else:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(spec.name, "open_clip_config.json")
    with open(path, encoding="utf-8") as fh:
        return dict(json.load(fh)["model_cfg"])
