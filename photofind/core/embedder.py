"""CLIP through open_clip: model loading, device choice, batched encoding.

The only module that imports torch and open_clip, and only when a model is
first needed, so the CLI's ``status`` and the GUI's window never wait for it.
Weights come from the Hugging Face cache (downloaded on first use, safetensors
preferred, ``torch.load`` only with ``weights_only``) or a ``local-dir:``
folder. When they can be neither found nor downloaded the user gets one
sentence saying what to download and where to put it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from photofind.core.config import ModelSpec, parse_model_spec
from photofind.core.errors import ModelUnavailableError, PhotofindError
from photofind.core.imaging import Preprocess

log = logging.getLogger(__name__)

TEXT_CACHE_SIZE = 256  # recent queries: retyping or paging costs no encoding


def resolve_device(device: str) -> str:
    """auto -> cuda when available, else cpu. MPS only when asked for."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise PhotofindError("CUDA was asked for, but torch sees no CUDA device here.")
    if device == "mps" and not torch.backends.mps.is_available():
        raise PhotofindError("MPS was asked for, but this machine has no Metal device.")
    return device


def physical_cores() -> int:
    """Physical cores where we can tell (Linux), else the logical count."""
    try:
        with open("/proc/cpuinfo") as fh:
            pairs = {(block.split("physical id")[1].split("\n")[0],
                      block.split("core id")[1].split("\n")[0])
                     for block in fh.read().split("\n\n") if "core id" in block}
        if pairs:
            return len(pairs)
    except (OSError, IndexError):
        pass
    return os.cpu_count() or 1


def cpu_threads() -> int:
    """PHOTOFIND_THREADS when set, else one thread per physical core (more only
    fight over the same floating-point units)."""
    text = os.environ.get("PHOTOFIND_THREADS", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return physical_cores()


class Embedder:
    """A loaded CLIP model on one device."""

    def __init__(self, spec: str, device: str = "auto", int8_text: bool | None = None) -> None:
        """``int8_text``: int8 weights for the text tower on the CPU (the default
        there): a query streams a quarter of the bytes (see quantize_text). Only
        query vectors change; stored image vectors do not depend on it."""
        import torch

        self.spec = spec
        self.device = resolve_device(device)
        if self.device == "cpu":
            torch.set_num_threads(cpu_threads())
            torch.set_flush_denormal(True)
        self._model, self._tokenizer, cfg, self._towers = _load(parse_model_spec(spec), spec)
        self._model.to(self.device).eval()
        if int8_text is None:  # PHOTOFIND_TEXT_INT8=0 keeps the text tower in fp32
            int8_text = self.device == "cpu" and os.environ.get("PHOTOFIND_TEXT_INT8") != "0"
        self.int8_text = int8_text
        self._text_ready = False
        self._setup_lock = threading.Lock()
        self.preprocess = _preprocess(cfg["size"], cfg)
        if self.preprocess.resize_mode not in ("shortest", "squash"):
            raise PhotofindError(
                f"Model {spec} uses resize mode {self.preprocess.resize_mode!r},"
                " which photofind does not support yet.")
        self._mean = torch.tensor(self.preprocess.mean).view(1, 3, 1, 1).to(self.device)
        self._std = torch.tensor(self.preprocess.std).view(1, 3, 1, 1).to(self.device)
        self._text_cache: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._text_lock = threading.Lock()

    @property
    def batch_size(self) -> int:
        return 64 if self.device == "cuda" else 16

    def encode_pixels(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """(B, S, S, 3) uint8 from imaging.model_pixels -> (B, D) unit vectors."""
        import torch

        if self._towers is not None:
            self._towers.ensure("visual")
        x = torch.from_numpy(np.array(pixels, dtype=np.uint8, copy=True))
        if self.device == "cuda":  # uint8 over the bus (4x less than float), from pinned memory
            x = x.pin_memory().to(self.device, non_blocking=True)
        else:
            x = x.to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        x = (x - self._mean) / self._std
        with torch.inference_mode(), self._autocast():
            feats = self._model.encode_image(x)
        return _normalize(feats.float().cpu().numpy())

    def encode_text(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import torch

        self._prepare_text()
        tokens = self._tokenizer(texts).to(self.device)
        with torch.inference_mode(), self._autocast():
            feats = encode_text_short(self._model, tokens)
        return _normalize(feats.float().cpu().numpy())

    # --- the model interface's names (issue 11) ----------------------------
    def encode_images(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        return self.encode_pixels(pixels)  # alias until the model package lands

    def encode_texts(self, texts: list[str]) -> npt.NDArray[np.float32]:
        return self.encode_text(texts)  # alias until the model package lands

    @property
    def logit_scale(self) -> float:
        """CLIP's learned temperature, exp() applied (capped at 100 as in training)."""
        # alias until the model package lands
        if self._towers is not None:  # a shared weight: it comes in with the text tower
            self._towers.ensure("text")
        return min(100.0, float(self._model.logit_scale.detach().exp()))

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

    def text_vector(self, text: str) -> npt.NDArray[np.float32]:
        """One query's unit vector, from a small LRU cache when it was asked before."""
        with self._text_lock:
            cached = self._text_cache.get(text)
            if cached is not None:
                self._text_cache.move_to_end(text)
                return cached
        vector: npt.NDArray[np.float32] = self.encode_text([text])[0]
        vector.setflags(write=False)  # shared by every caller
        with self._text_lock:
            self._text_cache[text] = vector
            while len(self._text_cache) > TEXT_CACHE_SIZE:
                self._text_cache.popitem(last=False)
        return vector

    def _autocast(self) -> Any:
        import torch

        if self.device == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return torch.autocast("cpu", enabled=False)


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


def encode_text_short(model: Any, tokens: Any) -> Any:
    """``model.encode_text``, run only up to the last end-of-text token.

    CLIP's text transformer is causal and pools at the end-of-text token (the
    highest id, hence argmax pooling), so the padding after it cannot change
    the result: a query of 8 tokens need not pay for 77. Positional embedding
    and causal mask are sliced to match. Models with another text tower or
    pooling take the standard path.
    """
    import torch
    from open_clip.model import CLIP
    from open_clip.transformer import text_global_pool

    if (type(model) is not CLIP or getattr(model, "text_pool_type", None) != "argmax"
            or getattr(model, "attn_mask", None) is None):
        return model.encode_text(tokens)
    n = int(tokens.argmax(dim=-1).max()) + 1
    tokens = tokens[:, :n]
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


def _normalize(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: npt.NDArray[np.float32] = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def _load(spec: ModelSpec, text: str) -> tuple[Any, Any, dict[str, Any], TowerWeights | None]:
    import open_clip

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
    repo = _hub_repo(spec, open_clip)
    cached = repo is None or _in_hf_cache(repo)
    if not cached and not _hub_reachable():
        raise ModelUnavailableError(_offline_message(spec, text, repo))
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
        raise ModelUnavailableError(_offline_message(spec, text, repo)) from exc
    finally:
        logging.disable(logging.NOTSET)
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous
    return model, tokenizer, open_clip.get_model_preprocess_cfg(model), towers


def peek_preprocess(spec_text: str) -> Preprocess | None:
    """The model's input geometry from its config file alone (no torch), so
    decoding can start while the model loads; None when only open_clip knows."""
    import json

    spec = parse_model_spec(spec_text)
    path: str | None = None
    if spec.kind == "local-dir":
        path = os.path.join(spec.name, "open_clip_config.json")
    elif spec.kind == "hf-hub":
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(spec.name, "open_clip_config.json")
        path = found if isinstance(found, str) else None
    try:
        with open(path or "", encoding="utf-8") as fh:
            config = json.load(fh)
        return _preprocess(config["model_cfg"]["vision_cfg"]["image_size"],
                           config["preprocess_cfg"])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _preprocess(size: Any, cfg: dict[str, Any]) -> Preprocess:
    """open_clip's preprocess settings (its defaults where a key is missing)."""
    return Preprocess(size=int(size if isinstance(size, int) else size[0]),
                      mean=tuple(float(x) for x in cfg["mean"]),  # type: ignore[arg-type]
                      std=tuple(float(x) for x in cfg["std"]),  # type: ignore[arg-type]
                      interpolation=str(cfg.get("interpolation") or "bicubic"),
                      resize_mode=str(cfg.get("resize_mode") or "shortest"))


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


def model_problem(spec_text: str) -> str | None:
    """Why the model could not be loaded without a download, or None.

    Checks the local folder or the Hugging Face cache; loads nothing.
    """
    import open_clip

    spec = parse_model_spec(spec_text)
    if spec.kind == "local-dir":
        folder = spec.name
        if not os.path.isfile(os.path.join(folder, "open_clip_config.json")):
            return f"{folder} has no open_clip_config.json"
        if not any(n.endswith((".safetensors", ".bin", ".pth")) for n in os.listdir(folder)):
            return f"{folder} has no weights file"
        return None
    repo = _hub_repo(spec, open_clip)
    if repo and not _in_hf_cache(repo):
        return f"weights not downloaded yet (https://huggingface.co/{repo})"
    return None


@dataclass(frozen=True)
class Download:
    """A first download of a model's weights into the Hugging Face cache."""

    repo: str
    folder: str  # the repo's blobs folder, where the file grows as *.incomplete
    total: int | None  # bytes, when the hub said

    def done(self) -> int:
        """Bytes downloaded so far."""
        try:
            return sum(e.stat().st_size for e in os.scandir(self.folder)
                       if e.name.endswith(".incomplete"))
        except OSError:
            return 0


def weights_download(spec_text: str) -> Download | None:
    """What loading ``spec_text`` will download, or None when nothing (a local
    folder, weights already cached, or no way to reach the hub)."""
    import open_clip

    spec = parse_model_spec(spec_text)
    repo = _hub_repo(spec, open_clip)
    if not repo or _in_hf_cache(repo) or not _hub_reachable():
        return None
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url

    folder = os.path.join(constants.HF_HUB_CACHE, "models--" + repo.replace("/", "--"), "blobs")
    try:
        total = get_hf_file_metadata(hf_hub_url(repo, "open_clip_model.safetensors")).size
    except Exception:  # the size is a nicety; the download itself reports real errors
        total = None
    return Download(repo, folder, total)


def _hub_repo(spec: ModelSpec, open_clip: Any) -> str | None:
    """The Hugging Face repo that holds the weights (None for a local folder)."""
    if spec.kind == "local-dir":
        return None
    if spec.kind == "hf-hub":
        return spec.name
    cfg = open_clip.get_pretrained_cfg(spec.name, spec.pretrained or "")
    repo = str(cfg.get("hf_hub") or "").strip("/")
    return repo or None


def _in_hf_cache(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(
        isinstance(try_to_load_from_cache(repo, name), str)
        for name in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
    )


def _hub_reachable() -> bool:
    """A quick check (DNS plus one TCP connect), so an offline machine fails in
    seconds rather than after a minute of download retries."""
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return False
    host = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").split("//")[-1]
    try:
        socket.create_connection((host.split("/")[0], 443), timeout=5).close()
    except OSError:
        return False
    return True


def _offline_message(spec: ModelSpec, text: str, repo: str | None) -> str:
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")
    if spec.kind == "local-dir":
        return (f"Could not load the model in {spec.name}: it should hold open_clip_config.json"
                " and open_clip_model.safetensors from the same model.")
    return (f"Could not download the weights for {text} (is this machine offline?):"
            f" download https://huggingface.co/{repo} (open_clip_config.json and"
            f" open_clip_model.safetensors) into a folder and run with"
            f" --model local-dir:/that/folder, or place it in the Hugging Face cache at {cache}.")
