"""Plain data the window's parts hand each other: a search result (``Hit``),
the newest-first listing of a library (``Listing``, read a page at a time)
and what the search box asks for (``Query``). No Qt, no threads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import overload

from photofind.core.catalog import PhotoInfo
from photofind.core.filters import Filter


@dataclass(frozen=True)
class Hit:
    info: PhotoInfo
    score: float | None  # None in the newest-first listing
    labels: tuple[str, ...] = ()  # smart-album labels, best first
    copies: tuple[PhotoInfo, ...] = ()  # exact copies of the same file, shown as this one


class Listing(Sequence[Hit]):
    """Every photo of a library newest first: all the ids at once, the rest of
    each hit read a page at a time when a row of that page is first asked for
    (a million photos list in megabytes, not gigabytes). ``load`` reads the hits
    of some ids (missing from its answer: photos gone since the listing)."""

    def __init__(self, ids: list[int], load: Callable[[list[int]], dict[int, Hit]],
                 page: int = 300) -> None:
        self.ids = ids
        self._load = load
        self._page = page
        self._pages: dict[int, list[Hit]] = {}
        self._row_of: dict[int, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, row: int) -> Hit: ...

    @overload
    def __getitem__(self, row: slice) -> Sequence[Hit]: ...

    def __getitem__(self, row: int | slice) -> Hit | Sequence[Hit]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self.ids)
        if not 0 <= row < len(self.ids):
            raise IndexError(row)
        number, offset = divmod(row, self._page)
        page = self._pages.get(number)
        if page is None:
            ids = self.ids[number * self._page:(number + 1) * self._page]
            hits = self._load(ids)
            page = self._pages[number] = [hits.get(pid) or _gone(pid) for pid in ids]
        return page[offset]

    def row_of(self, photo_id: int) -> int | None:
        if self._row_of is None:
            self._row_of = {pid: i for i, pid in enumerate(self.ids)}
        return self._row_of.get(photo_id)


def _gone(photo_id: int) -> Hit:
    """A photo removed after the listing was made (the window lists anew soon)."""
    return Hit(PhotoInfo(photo_id, "", False, None, None, None, 0), None)


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
