"""Loading the model: the runtime it runs on, and the one slot that holds it.

``load_encoder`` turns settings into an Encoder: an ONNX folder runs on ONNX
Runtime; an open_clip model runs on torch, or on ONNX Runtime through an export
made once into the cache. ``ModelSlot`` is the single owner of a library's
loaded model (``Library.embedder()`` reads it): loaded on first use, or early
in a thread while work that needs no model goes on, or shared from elsewhere.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

from photofind.core.config import DEFAULT_MODEL, Settings, parse_model_spec
from photofind.core.errors import ModelUnavailableError, PhotofindError
from photofind.core.model.encoder import Encoder, describe
from photofind.core.model.runtime import (
    choose_runtime,
    gpu_present,
    torch_installed,
    torch_missing,
)
from photofind.core.model.sources import (
    cached_export,
    cached_onnx_folder,
    fetch_onnx_repo,
    immich_repo,
    needs_onnx_download,
    onnx_hub_repo,
)

INT8_IMAGE_SUFFIX = "#int8-image"  # its vectors differ: never mixed with fp32 ones


def model_id(spec: str, int8_image: bool = False) -> str:
    """The vector space a library stores vectors under for these settings (the
    runtime is not part of it: both runtimes make the same vectors)."""
    return spec + INT8_IMAGE_SUFFIX if int8_image else spec


def is_onnx_spec(spec: str) -> bool:
    """The spec names an ONNX folder (here, or on the hub)."""
    return cached_onnx_folder(spec) is not None or needs_onnx_download(spec)


def planned_runtime(settings: Settings) -> str:
    """"onnx" or "torch": what ``load_encoder`` will use, decided without loading."""
    if is_onnx_spec(settings.model):
        if settings.runtime == "torch":
            raise PhotofindError(f"{settings.model} is an ONNX model folder: it runs on"
                                 " --runtime onnx (or auto), not torch.")
        return choose_runtime("onnx", settings.device)
    return choose_runtime(settings.runtime, settings.device)


def planned(settings: Settings) -> tuple[str, str, str]:
    """(runtime, device, "ONNX Runtime on CPU" ...) for ``settings``, decided
    without importing either runtime (so without loading anything)."""
    runtime = planned_runtime(settings)
    device = settings.device
    if runtime == "onnx":
        device = "cpu"
    elif device == "auto":
        device = ("mps" if sys.platform == "darwin" else "cuda") if gpu_present() else "cpu"
    return runtime, device, describe(runtime, device)


def load_encoder(settings: Settings, int8_text: bool | None = None) -> Encoder:
    """The model of ``settings`` on its runtime (downloaded or exported first
    when needed)."""
    spec = settings.model
    ident = model_id(spec, settings.image_int8)
    runtime = planned_runtime(settings)
    if runtime == "torch":
        if settings.image_int8:
            raise PhotofindError("The int8 image tower is an ONNX Runtime option:"
                                 " use --runtime onnx with it.")
        from photofind.core.model.torch_runtime import TorchEncoder

        return TorchEncoder(spec, settings.device, int8_text=int8_text, model_id=ident)
    folder = cached_onnx_folder(spec)
    if folder is None and (needs_onnx_download(spec) or (not torch_installed()
                           and onnx_hub_repo(parse_model_spec(spec)))):
        folder = fetch_onnx_repo(spec)  # offline: one sentence saying what to download
    if folder is None:
        folder = cached_export(spec)
    if folder is None:
        if not torch_installed():
            raise ModelUnavailableError(
                f"The model {spec} is an open_clip model, which needs torch once to be"
                f" converted to ONNX, but {torch_missing()}; or use an ONNX folder, as in"
                f" --model {_onnx_suggestion(spec)}.")
        from photofind.core.model.export import exported_folder

        folder = exported_folder(spec)
    from photofind.core.model.onnx_runtime import OnnxEncoder

    return OnnxEncoder(folder, ident, settings.device, int8_text=int8_text,
                       int8_image=settings.image_int8)


def _onnx_suggestion(spec: str) -> str:
    repo = immich_repo(parse_model_spec(spec)) or immich_repo(parse_model_spec(DEFAULT_MODEL))
    return f"hf-hub:{repo}"


class ModelSlot:
    """The loaded model of one library: loaded once, on first use or early."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._encoder: Encoder | None = None
        self._loading: threading.Thread | None = None
        self._error: BaseException | None = None

    def get(self) -> Encoder:
        """The model, loaded on first use (this is where a runtime is imported)."""
        if self._loading is not None:
            self._loading.join()
            self._loading = None
            if self._error is not None:
                error, self._error = self._error, None
                raise error
        if self._encoder is None:
            self._encoder = load_encoder(self.settings)
        return self._encoder

    def load_soon(self, texts: Sequence[str] = (), images: bool = False) -> None:
        """Start loading in a thread; ``get()`` waits for it. Work that needs no
        model (decoding, loading the index) overlaps the seconds a runtime
        takes to import and a tower takes to load. ``texts`` are encoded there
        too (a query's words: the text tower loads, and their vectors wait in
        the encoder's cache); ``images``: the image tower loads there too
        (indexing: while the first photos decode)."""
        if self._encoder is not None or self._loading is not None:
            return

        def load() -> None:
            try:
                encoder = load_encoder(self.settings)
                for text in texts:
                    encoder.text_vector(text)
                if images:
                    encoder.prepare_images()
                self._encoder = encoder
            except BaseException as exc:  # raised again by get() in the caller
                self._error = exc
        self._loading = threading.Thread(target=load, name="photofind-model-load", daemon=True)
        self._loading.start()

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    def use(self, encoder: Encoder) -> None:
        """Share a model loaded elsewhere (the GUI loads it once for every thread)."""
        self._encoder = encoder
