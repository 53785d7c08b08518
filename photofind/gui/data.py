"""Plain data the window's parts hand each other: a search result (``Hit``)
and what the search box asks for (``Query``). No Qt, no threads."""

from __future__ import annotations

from dataclasses import dataclass, field

from photofind.core.catalog import PhotoInfo
from photofind.core.filters import Filter


@dataclass(frozen=True)
class Hit:
    info: PhotoInfo
    score: float | None  # None in the newest-first listing
    labels: tuple[str, ...] = ()  # smart-album labels, best first
    copies: tuple[PhotoInfo, ...] = ()  # exact copies of the same file, shown as this one


@dataclass(frozen=True)
class Query:
    """What the search box asks for: text (CLI syntax) and/or one image,
    or the photos of one smart album; narrowed by the filter chips'."""

    text: str = ""
    image_path: str | None = None  # a file, in the library or not
    label: str = ""  # how the chip names the image
    album: str = ""  # a smart album's label: its photos, most probable first
    flt: Filter = field(default_factory=Filter)  # folders, dates ... (empty: everything)

    def ranks(self) -> bool:
        """True when the answer is ranked by a score (not the newest-first listing)."""
        return bool(self.text.strip() or self.image_path or self.label or self.album)

    def words(self) -> str:
        """The words of the query (what "Where?" looks for), or ""."""
        return self.text.strip()
