"""The sidebar's "Folders" and "Dates" sections: the roots as a tree of
folders and the years with their months, each with its photo count, and the
filter an entry narrows the window's query to. Plain mapping; the window
runs the queries."""

from __future__ import annotations

import calendar
import os
from dataclasses import replace

from photofind.core.filters import Filter, Period
from photofind.gui.sidebar import Entry, Sidebar

FOLDERS, DATES = "folders", "dates"  # the sidebar's sections


class Facets:
    """Fills the two sections and turns an entry into a narrower filter."""

    def __init__(self, sidebar: Sidebar) -> None:
        self.sidebar = sidebar
        sidebar.set_section(FOLDERS, "Folders", [], "(none yet)")
        sidebar.set_section(DATES, "Dates", [], "(none yet)")

    def fill(self, roots: list[str], folders: dict[str, int], months: dict[str, int]) -> None:
        """``folders``: photos per folder (below it too); ``months``: per ``YYYY-MM``."""
        entries = []
        for root in roots:
            inside = sorted(f for f in folders if f == root
                            or f.startswith(root.rstrip(os.sep) + os.sep))
            for folder in inside:
                is_root = folder == root
                entries.append(Entry(FOLDERS, folder, folder if is_root
                                     else os.path.basename(folder), folders[folder],
                                     f"{folders[folder]:,} photos in {folder}",
                                     parent="" if is_root else os.path.dirname(folder),
                                     expanded=is_root))
        self.sidebar.set_section(FOLDERS, "Folders", entries, "(none yet)")
        years: dict[str, int] = {}
        for month, count in months.items():
            years[month[:4]] = years.get(month[:4], 0) + count
        dates = []
        for year in sorted(years, reverse=True):
            dates.append(Entry(DATES, year, year, years[year], f"{years[year]:,} photos from"
                               f" {year}"))
            for month in sorted((m for m in months if m.startswith(year)), reverse=True):
                name = calendar.month_name[int(month[5:7])] if month[5:7].isdigit() else month
                dates.append(Entry(DATES, month, name, months[month],
                                   f"{months[month]:,} photos from {name} {year}", parent=year))
        self.sidebar.set_section(DATES, "Dates", dates, "(none yet)")

    @staticmethod
    def narrowed(flt: Filter, entry: Entry) -> Filter | None:
        """The filter with the entry's folder or period in place of the one it had;
        None for an entry of another section."""
        if entry.section == FOLDERS:
            return replace(flt, folders=(entry.key,))
        if entry.section == DATES:
            period = Period.parse(entry.key)
            return replace(flt, after=period, before=period)
        return None
