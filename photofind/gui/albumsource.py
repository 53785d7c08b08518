"""The window's one door to smart albums and "Where?" (core/albums.py and
core/locate.py): labels with counts, an album's photos, a photo's labels, a
heatmap. Called on worker threads only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from photofind.core import albums
from photofind.core import locate as locating

if TYPE_CHECKING:
    from photofind.core.catalog import PhotoInfo
    from photofind.core.filters import Filter
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


def label_counts(lib: Library) -> list[tuple[str, int]]:
    """Labels that have photos with their counts, most photos first."""
    return [(a.label, a.count) for a in albums.smart_albums(lib)]


def album(lib: Library, label: str, limit: int, flt: Filter | None = None
          ) -> list[tuple[PhotoInfo, float]]:
    """A smart album's photos, most probable first (the best ``limit`` the filter keeps)."""
    return albums.album_photos(lib, label, limit, flt)


def labels_of(lib: Library, photo_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each photo's labels, best first (photos without labels are absent)."""
    if not photo_ids:
        return {}
    found = albums.photo_labels(lib, photo_ids)
    return {pid: [label for label, _ in labels] for pid, labels in found.items()}


def locate(lib: Library, path: str, text: str, cancelled: Callable[[], bool]) -> Location:
    """The heatmap of ``text`` over the photo at ``path``; raises Cancelled
    when ``cancelled()`` turns true between patch batches."""
    found = locating.run_locate(lib, path, text, cancelled)
    if found is None:
        raise Cancelled
    x0, y0, x1, y1 = found.box
    return Location((int(x0), int(y0), int(x1), int(y1)), float(found.score),
                    np.asarray(found.grid, dtype=np.float32), found.width, found.height)
