"""Where a model's files come from: local folders, the Hugging Face cache, the hub.

A spec (config.parse_model_spec) names either an open_clip model (``name/tag``,
``hf-hub:`` with open_clip files, ``local-dir:`` with open_clip_config.json),
which needs torch to load, or an ONNX folder in the layout Immich publishes
(``hf-hub:immich-app/ViT-B-32__laion2b_s34b_b79k``, or a ``local-dir:``
holding the same files), which does not::

    config.json                 open_clip's model config (embed_dim, vision_cfg, text_cfg)
    visual/model.onnx           image tower: "image" (N, 3, S, S) -> "embedding"
                                (photofind's exports keep the weights beside it,
                                in model.onnx.data; Immich's, inside)
    visual/preprocess_cfg.json  size, mean, std, interpolation, resize_mode
    textual/model.onnx          text tower: "text" (N, L) -> "embedding"
    textual/tokenizer.json      (+ tokenizer_config.json, special_tokens_map.json)

First downloads report their progress (``weights_download``); a machine that
cannot reach the hub gets one sentence saying what to download and where to put
it. Nothing here imports torch or onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from platformdirs import user_cache_dir

from photofind import __version__
from photofind.core.config import ModelSpec, parse_model_spec
from photofind.core.errors import ModelUnavailableError, PhotofindError
from photofind.core.model.preprocess import Preprocess, preprocess_from_config
from photofind.core.model.runtime import torch_installed, torch_missing

if TYPE_CHECKING:
    from photofind.core.model.download import ModelDownload

log = logging.getLogger(__name__)

ONNX_FILES = ("config.json", "visual/preprocess_cfg.json", "visual/model.onnx",
              "textual/model.onnx", "textual/tokenizer.json")
# What an ONNX repo holds beyond what we use: other formats, other precisions.
ONNX_IGNORE = ["*rknpu*", "*armnn*", "*fp16*", "*.tflite", "*README*", "*.md"]
OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def is_onnx_folder(folder: Path) -> bool:
    """A folder in the ONNX layout (recognised by its files)."""
    return all((folder / name).is_file() for name in ONNX_FILES)


def cached_onnx_folder(spec_text: str) -> Path | None:
    """The ONNX folder a spec names when it is on this machine (a local folder,
    or a hub repo in the Hugging Face cache); None otherwise."""
    spec = parse_model_spec(spec_text)
    if spec.kind == "local-dir":
        folder = Path(spec.name)
        return folder if is_onnx_folder(folder) else None
    repo = onnx_hub_repo(spec)
    return _cached_snapshot(repo, ONNX_FILES) if repo is not None else None


def _cached_snapshot(repo: str, names: tuple[str, ...]) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = [try_to_load_from_cache(repo, name) for name in names]
    if not all(isinstance(f, str) for f in found):
        return None
    return Path(str(found[0])).parent  # config.json sits at the snapshot's top


def immich_repo(spec: ModelSpec) -> str | None:
    """The hub repo where Immich publishes an open_clip pretrained model as an ONNX folder."""
    if spec.kind == "pretrained" and spec.pretrained:
        return f"immich-app/{spec.name}__{spec.pretrained}"
    return None


def onnx_hub_repo(spec: ModelSpec) -> str | None:
    """The hub repo an ONNX folder of ``spec`` comes from: the repo an ``hf-hub:`` spec
    names, or, without torch (the packaged app), Immich's export of a pretrained model.
    That folder holds the same model, so its vectors stay under the spec's model id and a
    library indexed with torch keeps them."""
    if spec.kind == "hf-hub":
        return spec.name
    if spec.kind == "pretrained" and not torch_installed():
        return immich_repo(spec)
    return None


def needs_onnx_download(spec_text: str) -> bool:
    """An ONNX folder on the hub (``onnx_hub_repo``) that is not in the cache yet."""
    spec = parse_model_spec(spec_text)
    repo = onnx_hub_repo(spec)
    if repo is None or cached_onnx_folder(spec_text) is not None:
        return False
    if _in_hf_cache(repo, OPEN_CLIP_WEIGHTS) or not hub_reachable():
        return False
    return _hub_lists_onnx(repo)


def _hub_lists_onnx(repo: str) -> bool:
    from photofind.core.model.download import repo_files

    try:
        files = set(repo_files(repo)[1])
    except Exception:  # unknown repo or network trouble: the loader reports it
        return False
    return all(name in files for name in ONNX_FILES)


ONNX_ALLOW = ["config.json", "visual/*", "textual/*"]  # only the files photofind reads


def fetch_onnx_repo(spec_text: str) -> Path:
    """The ONNX folder of an ``hf-hub:`` spec, downloaded into the Hugging Face
    cache on first use, with a progress bar on stderr. Interrupted (Ctrl-C), the
    bytes stay and the next call goes on from them."""
    from photofind.core.model.download import fetch, plan_download

    spec = parse_model_spec(spec_text)
    cached = cached_onnx_folder(spec_text)
    if cached is not None:
        return cached
    repo = onnx_hub_repo(spec) or spec.name
    if not hub_reachable():
        raise ModelUnavailableError(offline_message(spec, spec_text, repo, onnx=True))
    try:
        plan = plan_download(repo, ONNX_ALLOW, ONNX_IGNORE)
        folder = fetch(plan)
    except KeyboardInterrupt:
        raise ModelUnavailableError(
            f"The download of {repo} was stopped; run the command again and it goes on"
            " from where it stopped.") from None
    except Exception as exc:
        log.debug("download failed", exc_info=True)
        raise ModelUnavailableError(offline_message(spec, spec_text, repo, onnx=True)
                                    ) from exc
    if not is_onnx_folder(folder):
        raise ModelUnavailableError(f"The hub repo {repo} is not a model photofind can"
                                    " load: it has neither open_clip nor ONNX model files.")
    return folder


EXPORTER_CODE = Path(__file__).parent  # the modules whose code keys the ONNX exports


def export_cache_folder(spec_text: str) -> Path:
    """Where the ONNX runtime keeps its own export of an open_clip model, keyed
    by the spec, the exporter's code and (for a folder) the weights' files."""
    spec = parse_model_spec(spec_text)
    h = hashlib.sha256(spec_text.encode())
    for module in ("export.py", "fusion.py", "torch_runtime.py", "tokenizer.py"):
        code = EXPORTER_CODE / module
        # An install without the sources (the installers' app carries bytecode
        # only, and has no torch to export with) keys its exports by version.
        h.update(code.read_bytes() if code.is_file() else __version__.encode())
    _hash_folder(h, spec)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(spec.name).name if spec.kind == "local-dir"
                  else f"{spec.name}-{spec.pretrained or ''}").strip("-")[:60]
    cache = os.environ.get("PHOTOFIND_ONNX_CACHE") or os.path.join(
        user_cache_dir("photofind", False), "onnx")
    return Path(cache) / f"{slug}-{h.hexdigest()[:16]}"


def weights_fingerprint(spec_text: str) -> str:
    """A digest naming a model's weights: the spec, and for a folder its files
    (a folder retrained in place is another model)."""
    h = hashlib.sha256(spec_text.encode())
    _hash_folder(h, parse_model_spec(spec_text))
    return h.hexdigest()


def _hash_folder(h: hashlib._Hash, spec: ModelSpec) -> None:
    """A ``local-dir:`` folder as ``hash_files`` sees it."""
    if spec.kind == "local-dir":
        hash_files(h, Path(spec.name))


def hash_files(h: hashlib._Hash, folder: Path) -> None:
    """A folder's resolved path and its files' names, sizes and mtimes, links
    followed (a new revision of any file, the weights alone, is another digest)."""
    folder = folder.resolve()
    h.update(str(folder).encode())
    for file in sorted(f for f in folder.rglob("*") if f.is_file()):
        stat = file.stat()
        h.update(f"|{file.relative_to(folder)}|{stat.st_size}|{stat.st_mtime_ns}".encode())


def cached_export(spec_text: str) -> Path | None:
    """The ONNX runtime's export of an open_clip model, when it was made before."""
    folder = export_cache_folder(spec_text)
    return folder if is_onnx_folder(folder) else None


def open_clip_repo(spec: ModelSpec) -> str | None:
    """The hub repo holding an open_clip model's weights (None for a folder)."""
    if spec.kind == "local-dir":
        return None
    if spec.kind == "hf-hub":
        return spec.name
    if not torch_installed():
        return None
    from photofind.core.model.torch_runtime import pretrained_repo

    return pretrained_repo(spec)


def model_problem(spec_text: str) -> str | None:
    """Why the model could not be loaded without a download, or None.

    Checks the local folder or the Hugging Face cache; loads nothing.
    """
    spec = parse_model_spec(spec_text)
    if cached_onnx_folder(spec_text) is not None:
        return None
    if spec.kind == "local-dir":
        folder = Path(spec.name)
        if not (folder / "open_clip_config.json").is_file():
            return (f"{folder} has neither open_clip_config.json nor the ONNX files"
                    f" ({', '.join(ONNX_FILES)})")
        if not any(n.endswith((".safetensors", ".bin", ".pth")) for n in os.listdir(folder)):
            return f"{folder} has no weights file"
        return None if torch_installed() else torch_missing()
    if spec.kind == "pretrained" and not torch_installed():
        return f"weights not downloaded yet (https://huggingface.co/{immich_repo(spec)})"
    repo = open_clip_repo(spec)
    if repo and not _in_hf_cache(repo, OPEN_CLIP_WEIGHTS):
        return f"weights not downloaded yet (https://huggingface.co/{repo})"
    return None


def peek_preprocess(spec_text: str) -> Preprocess | None:
    """The model's input geometry from its config files alone (no torch, no
    onnxruntime), so decoding can start while the model loads; None when only
    open_clip knows."""
    spec = parse_model_spec(spec_text)
    onnx = cached_onnx_folder(spec_text)
    try:
        if onnx is not None:
            return onnx_preprocess(onnx)
        path: str | None = None
        if spec.kind == "local-dir":
            path = os.path.join(spec.name, "open_clip_config.json")
        elif spec.kind == "hf-hub":
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(spec.name, "open_clip_config.json")
            path = found if isinstance(found, str) else None
        with open(path or "", encoding="utf-8") as fh:
            config = json.load(fh)
        return preprocess_from_config(config["model_cfg"]["vision_cfg"]["image_size"],
                                      config["preprocess_cfg"], spec_text)
    except (OSError, ValueError, KeyError, TypeError, IndexError, PhotofindError):
        return None


def onnx_preprocess(folder: Path) -> Preprocess:
    """An ONNX folder's input geometry (visual/preprocess_cfg.json)."""
    cfg = json.loads((folder / "visual" / "preprocess_cfg.json").read_text(encoding="utf-8"))
    return preprocess_from_config(cfg.get("size"), cfg, str(folder))


@dataclass(frozen=True)
class Download:
    """A first download of open_clip weights into the Hugging Face cache, made by
    open_clip itself (torch installs); watched, not stoppable."""

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


def weights_download(spec_text: str) -> ModelDownload | Download | None:
    """What loading ``spec_text`` will download, or None when nothing (a local
    folder, files already cached, or no way to reach the hub). An ONNX folder comes
    as a ``ModelDownload`` the caller runs (stoppable, resumable) before loading."""
    spec = parse_model_spec(spec_text)
    if spec.kind == "local-dir" or cached_onnx_folder(spec_text) is not None:
        return None
    onnx = needs_onnx_download(spec_text)
    repo = onnx_hub_repo(spec) if onnx else open_clip_repo(spec)
    if not repo or (not onnx and _in_hf_cache(repo, OPEN_CLIP_WEIGHTS)) or not hub_reachable():
        return None
    if onnx:
        from photofind.core.model.download import ModelDownload, plan_download

        try:
            plan = plan_download(repo, ONNX_ALLOW, ONNX_IGNORE)
        except Exception:  # network trouble: the loader says it in one sentence
            log.debug("planning the download failed", exc_info=True)
            return None
        return ModelDownload(plan, offline_message(spec, spec_text, repo, onnx=True))
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url

    folder = os.path.join(constants.HF_HUB_CACHE, "models--" + repo.replace("/", "--"), "blobs")
    try:
        total: int | None = get_hf_file_metadata(
            hf_hub_url(repo, "open_clip_model.safetensors")).size
    except Exception:  # the size is a nicety; the download itself reports real errors
        total = None
    return Download(repo, folder, total)


def _in_hf_cache(repo: str, names: tuple[str, ...]) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(repo, name), str) for name in names)


def in_hf_cache(repo: str) -> bool:
    """An open_clip checkpoint of ``repo`` is in the Hugging Face cache."""
    return _in_hf_cache(repo, OPEN_CLIP_WEIGHTS)


def hub_reachable() -> bool:
    """A quick check (DNS plus one TCP connect), so an offline machine fails in
    seconds rather than after a minute of download retries."""
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return False
    url = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((url.hostname or "", port), timeout=5).close()
    except OSError:
        return False
    return True


def offline_message(spec: ModelSpec, text: str, repo: str | None, onnx: bool = False) -> str:
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")
    if spec.kind == "local-dir":
        return (f"Could not load the model in {spec.name}: it should hold open_clip_config.json"
                " and open_clip_model.safetensors from the same model, or an ONNX export"
                f" ({', '.join(ONNX_FILES)}).")
    files = ("config.json, visual/ and textual/" if onnx
             else "open_clip_config.json and open_clip_model.safetensors")
    return (f"Could not download the weights for {text} (is this machine offline?):"
            f" download https://huggingface.co/{repo} ({files}) into a folder and run with"
            f" --model local-dir:/that/folder, or place it in the Hugging Face cache at {cache}.")
