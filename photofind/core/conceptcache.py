"""The smart albums' concept vectors in the user's cache, per model weights.

Encoding the vocabulary (a few hundred concepts times the prompt templates)
is the text tower's biggest job; its result depends only on the model's
weights and the vocabulary, so it is kept once per machine
(``<user cache>/photofind/concepts``, or ``PHOTOFIND_CONCEPT_CACHE``) and a
new library of the same model does not pay again. The key is the weights'
fingerprint (sources.weights_fingerprint: a folder retrained in place is
another model) and the vocabulary's digest. A damaged or unreadable file is
a miss; a cache that cannot be written is skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
from platformdirs import user_cache_dir

from photofind.core.errors import PhotofindError
from photofind.core.model.sources import weights_fingerprint

log = logging.getLogger(__name__)

CACHE_ENV = "PHOTOFIND_CONCEPT_CACHE"

Matrix = npt.NDArray[np.float32]


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV)
                or os.path.join(user_cache_dir("photofind", False), "concepts"))


def _file(spec: str, digest: str) -> Path | None:
    try:
        key = hashlib.sha256(f"{weights_fingerprint(spec)}|{digest}".encode()).hexdigest()
    except (OSError, PhotofindError):
        return None  # a spec that cannot be read has no cache
    return cache_dir() / f"{key[:32]}.npz"


def load(spec: str, digest: str, count: int) -> tuple[Matrix, float] | None:
    """(vectors, logit scale) cached for ``spec`` and the vocabulary ``digest``
    (with ``count`` concepts), or None."""
    path = _file(spec, digest)
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            vecs = np.asarray(data["vecs"], dtype=np.float32)
            scale = float(data["scale"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        log.debug("ignoring the concept cache %s: %s", path, exc)
        return None
    return (vecs, scale) if vecs.ndim == 2 and len(vecs) == count else None


def save(spec: str, digest: str, vecs: Matrix, scale: float) -> None:
    """Keep them for the next library (written whole, then renamed into place)."""
    path = _file(spec, digest)
    if path is None:
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, vecs=vecs.astype(np.float32), scale=np.float64(scale))
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        log.debug("the concept cache %s cannot be written: %s", path, exc)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
