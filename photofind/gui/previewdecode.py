"""Decoding a photo for the viewer or a search chip, inside a worker process.

A dropped or pasted file is as untrusted as any photo in a library, and a
photo the viewer opens may be damaged: neither is decoded in the window's
process. ``decode_scaled`` runs in a spawned process (``workers.Previews``
owns it) under the same memory cap and test hook as the indexing workers;
this module imports no Qt, so the worker starts with Pillow only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Scaled:
    """RGB pixels fitted into a square of the asked size, and the photo's own size."""

    width: int
    height: int
    rgb: bytes  # width * height * 3
    full_width: int
    full_height: int


def limit_memory(cap: int) -> None:
    """Worker initializer: pictures past the cap fail as "too large"."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = cap // 8
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, ValueError, OSError):  # not on this platform
        pass


def decode_scaled(path: str, size: int) -> Scaled:
    """Open, orient and fit ``path`` into ``size`` x ``size``; raises on bad input."""
    from photofind.core.decodepool import HOOK_ENV, _load_hook
    from photofind.core.imaging import open_photo

    if os.environ.get(HOOK_ENV):
        hook = _load_hook()
        if hook is not None:
            hook(path)
    opened = open_photo(path, draft_size=size)
    img = opened.image
    img.thumbnail((size, size))
    return Scaled(img.width, img.height, img.tobytes(), opened.width, opened.height)
