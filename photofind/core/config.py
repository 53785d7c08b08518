"""Settings: where the library lives, which model, runtime and device to use.

Each setting comes from an explicit argument, else an environment variable
(``PHOTOFIND_LIBRARY``, ``PHOTOFIND_MODEL``, ``PHOTOFIND_DEVICE``,
``PHOTOFIND_RUNTIME``, ``PHOTOFIND_IMAGE_INT8``), else the default. The library
folder defaults to the platform's user data folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from photofind.core.errors import PhotofindError
from photofind.core.records import RAW_EXTENSIONS

DEFAULT_MODEL = "ViT-B-32/laion2b_s34b_b79k"
DEVICES = ("auto", "cpu", "cuda", "mps")
RUNTIMES = ("auto", "onnx", "torch")

# Extensions photofind treats as photos (lower case, with the dot).
PHOTO_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif",
     ".heic", ".heif", ".avif", ".mpo"}
) | RAW_EXTENSIONS


@dataclass(frozen=True)
class Settings:
    library: Path
    model: str
    device: str
    runtime: str = "auto"  # auto: torch where CUDA/MPS pays, else ONNX Runtime on the CPU
    image_int8: bool = False  # int8 image tower (ONNX): its own model id, never mixed

    @classmethod
    def resolve(
        cls, library: str | None = None, model: str | None = None, device: str | None = None,
        runtime: str | None = None, image_int8: bool | None = None,
    ) -> Settings:
        lib = library or os.environ.get("PHOTOFIND_LIBRARY") or user_data_dir("photofind", False)
        spec = model or os.environ.get("PHOTOFIND_MODEL") or DEFAULT_MODEL
        dev = (device or os.environ.get("PHOTOFIND_DEVICE") or "auto").lower()
        if dev not in DEVICES:
            raise PhotofindError(
                f"Unknown device {dev!r}: choose one of {', '.join(DEVICES)}."
            )
        run = (runtime or os.environ.get("PHOTOFIND_RUNTIME") or "auto").lower()
        if run not in RUNTIMES:
            raise PhotofindError(
                f"Unknown runtime {run!r}: choose one of {', '.join(RUNTIMES)}."
            )
        if image_int8 is None:
            image_int8 = os.environ.get("PHOTOFIND_IMAGE_INT8", "") not in ("", "0")
        parse_model_spec(spec)
        return cls(library=Path(lib).expanduser().resolve(), model=spec, device=dev,
                   runtime=run, image_int8=image_int8)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: ``kind`` is "pretrained", "hf-hub" or "local-dir"."""

    kind: str
    name: str
    pretrained: str | None = None


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse ``name/tag``, ``hf-hub:org/repo`` or ``local-dir:/path``."""
    if spec.startswith("hf-hub:"):
        repo = spec.removeprefix("hf-hub:")
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise PhotofindError(f"Model {spec!r} should look like hf-hub:org/repo.")
        return ModelSpec("hf-hub", repo)
    if spec.startswith("local-dir:"):
        path = spec.removeprefix("local-dir:")
        if not path:
            raise PhotofindError("Model local-dir: needs a folder, as in local-dir:/path/to/model.")
        return ModelSpec("local-dir", str(Path(path).expanduser()))
    name, sep, tag = spec.partition("/")
    if not name:
        raise PhotofindError(f"Model {spec!r} should look like ViT-B-32/laion2b_s34b_b79k.")
    return ModelSpec("pretrained", name, tag if sep and tag else None)
