"""The sidebar's albums: its sections, what each entry asks for, and how a
search is described when it is saved as an album. Plain mapping between the
sidebar's entries and queries; the window runs them."""

from __future__ import annotations

import os

from photofind.core.savedsearches import SavedSearch
from photofind.gui.data import Query
from photofind.gui.searchbar import cutoff_text
from photofind.gui.sidebar import Entry, Sidebar

ALL, SMART, SAVED = "all", "smart", "saved"  # the sidebar's sections
NO_SAVED = "none yet (Ctrl+S saves a search)"


class Albums:
    """Fills the sidebar's album sections and turns an entry into a query."""

    def __init__(self, sidebar: Sidebar) -> None:
        self.sidebar = sidebar
        self.saved: list[SavedSearch] = []
        sidebar.set_section(ALL, "Library", [Entry(ALL, "", "All photos")])
        sidebar.set_section(SMART, "Smart albums", [], "(none yet)")
        sidebar.set_section(SAVED, "My albums", [], NO_SAVED)

    def fill(self, smart: list[tuple[str, int]], saved: list[SavedSearch]) -> None:
        """``smart``: labels with counts, most photos first."""
        self.saved = saved
        self.sidebar.set_section(SMART, "Smart albums", [
            Entry(SMART, label, label, count, f"{count:,} photos labelled “{label}”")
            for label, count in smart],
            "(none yet)")
        self.sidebar.set_section(SAVED, "My albums", [
            Entry(SAVED, str(s.id), s.name, None,
                  describe_search(s.text, s.image_path, s.cutoff), editable=True)
            for s in saved], NO_SAVED)

    def query_of(self, entry: Entry) -> tuple[Query, int | None] | None:
        """What an entry shows, and the cut-off it brings (None: keep the slider)."""
        if entry.section == SMART:
            return Query(album=entry.key), None
        if entry.section == SAVED:
            saved = next((s for s in self.saved if str(s.id) == entry.key), None)
            if saved is None:
                return None
            label = os.path.basename(saved.image_path or "")
            return Query(saved.text, saved.image_path, label), saved.cutoff
        return Query(), None


def describe_search(text: str, image_path: str | None, cutoff: int) -> str:
    """A search in words: “its words”, like its picture, its cut-off."""
    parts = [f"“{text.strip()}”"] if text.strip() else []
    if image_path:
        parts.append(f"like {os.path.basename(image_path)}")
    parts.append(f"cut-off {cutoff_text(cutoff)}")
    return ", ".join(parts)
