"""The window's one door to smart albums and "Where?" (core/albums.py and
core/locate.py): labels with counts, an album's photos, a photo's labels, a
heatmap. Called on worker threads only.

A build without those core modules (they arrive with classification) shows
no smart albums and no "Where?", rather than failing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from photofind.core.errors import PhotofindError

if TYPE_CHECKING:
    from photofind.core.catalog import PhotoInfo
    from photofind.core.library import Library


class Cancelled(Exception):
    """A "Where?" run stopped because the user moved to another photo."""


@dataclass(frozen=True)
class Location:
    """Where the words are in a photo: a box and a heatmap over the whole photo."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the photo's pixels (oriented)
    score: float
    grid: npt.NDArray[np.float32]  # (rows, cols) in [0, 1], spanning the photo
    width: int
    height: int


class _Album(Protocol):
    label: str
    count: int


class _Located(Protocol):
    box: tuple[int, int, int, int]
    score: float
    grid: npt.NDArray[np.float32]
    width: int
    height: int


def _core(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"photofind.core.{name}")
    except ImportError:
        return None


def label_counts(lib: Library) -> list[tuple[str, int]] | None:
    """Labels that have photos with their counts, most photos first (None:
    this build has no classification)."""
    albums = _core("albums")
    if albums is None:
        return None
    found: list[_Album] = albums.smart_albums(lib)
    return [(a.label, a.count) for a in found]


def album(lib: Library, label: str, limit: int) -> list[tuple[PhotoInfo, float]]:
    """A smart album's photos, most probable first."""
    albums = _core("albums")
    if albums is None:
        raise PhotofindError("Smart albums are not available in this build.")
    ranked: list[tuple[PhotoInfo, float]] = albums.album_photos(lib, label, limit)
    return ranked


def labels_of(lib: Library, photo_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each photo's labels, best first (photos without labels are absent)."""
    albums = _core("albums")
    if albums is None or not photo_ids:
        return {}
    found: dict[int, list[tuple[str, float]]] = albums.photo_labels(lib, photo_ids)
    return {pid: [label for label, _ in labels] for pid, labels in found.items()}


def locate(lib: Library, path: str, text: str, cancelled: Callable[[], bool]) -> Location:
    """The heatmap of ``text`` over the photo at ``path``; raises Cancelled
    when ``cancelled()`` turns true between patch batches."""
    module = _core("locate")
    if module is None:
        raise PhotofindError("“Where?” is not available in this build.")
    found: _Located | None = module.run_locate(lib, path, text, cancelled)
    if found is None:
        raise Cancelled
    return Location(tuple(found.box), float(found.score),  # type: ignore[arg-type]
                    np.asarray(found.grid, dtype=np.float32), found.width, found.height)
