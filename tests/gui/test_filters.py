"""The window's filters: "Folders" and "Dates" in the sidebar with their
counts narrow the grid and any query; the active filters show as chips beside
the search box, and a chip's × or Escape in the box removes them."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from photofind.gui.facets import DATES, FOLDERS
from photofind.gui.mainwindow import MainWindow
from photofind.testing.samples import make_sample_library
from tests.gui.conftest import OpenWindow
from tests.gui.test_window import wait_for_results


def _dated(folder: Path, when: str) -> None:
    stamp = datetime.fromisoformat(when).timestamp()
    for path in folder.rglob("*.*"):
        os.utime(path, (stamp, stamp))


def _choose(qtbot, window: MainWindow, section: str, key: str) -> None:  # type: ignore[no-untyped-def]
    item = window.sidebar.item_of(section, key)
    assert item is not None, (section, key, window.sidebar.entries(section))
    window.sidebar.scrollToItem(item)
    rect = window.sidebar.visualItemRect(item)
    qtbot.mouseClick(window.sidebar.viewport(), Qt.MouseButton.LeftButton,
                     pos=rect.center())


def _chips(window: MainWindow) -> list[str]:
    return [chip.text() for _, chip in window.bar.filters.chips] \
        if window.bar.filters_action.isVisible() else []


def test_folders_and_dates_narrow_the_grid_and_the_query(qtbot, open_window: OpenWindow,  # type: ignore[no-untyped-def]
                                                         tmp_path: Path) -> None:
    pictures = tmp_path / "Pictures"
    holidays = make_sample_library(pictures / "Holidays", per_class=1, seed=3, large=0)
    work = make_sample_library(pictures / "Work", per_class=1, seed=4, large=0)
    _dated(pictures / "Holidays", "2019-06-15T10:00:00")
    _dated(pictures / "Work", "2021-03-10T10:00:00")
    window = open_window(tmp_path / "library", cutoff=0)
    qtbot.waitUntil(lambda: window.queries.model_loaded, timeout=60_000)
    window.add_folder(str(pictures))
    qtbot.waitUntil(lambda: window.model.total() == 40 and not window.indexing,
                    timeout=180_000)
    qtbot.waitUntil(lambda: any(e.key == str(pictures / "Work")
                                for e in window.sidebar.entries(FOLDERS)), timeout=30_000)
    folders = {e.key: e.count for e in window.sidebar.entries(FOLDERS)}
    root_item = window.sidebar.item_of(FOLDERS, str(pictures))
    assert root_item is not None and root_item.isExpanded()  # its folders show at once
    assert folders[str(pictures)] == 40
    assert folders[str(pictures / "Holidays")] == folders[str(pictures / "Work")] == 20
    dates = {e.key: (e.text, e.count) for e in window.sidebar.entries(DATES)}
    assert dates == {"2021": ("2021", 20), "2021-03": ("March", 20),
                     "2019": ("2019", 20), "2019-06": ("June", 20)}

    before = window.serial
    _choose(qtbot, window, FOLDERS, str(pictures / "Holidays"))
    hits = wait_for_results(qtbot, window, before)
    assert {h.info.path for h in hits} == {str(p.path) for p in holidays}
    assert _chips(window) == ["in Holidays  ✕"]

    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5_000)
    window.search.setFocus()
    before = window.serial
    qtbot.keyClicks(window.search, "a red circle")
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    hits = wait_for_results(qtbot, window, before)
    assert hits and all(h.info.path.startswith(str(pictures / "Holidays")) for h in hits)
    red_holidays = next(str(p.path) for p in holidays if (p.colour, p.shape) == ("red", "circle"))
    assert hits[0].info.path == red_holidays

    before = window.serial
    _choose(qtbot, window, DATES, "2021")  # Holidays and 2021: nothing is both
    wait_for_results(qtbot, window, before)
    assert window.model.total() == 0 and window.message.text() == "Nothing matches."
    assert _chips(window) == ["in Holidays  ✕", "2021  ✕"]

    before = window.serial
    window.bar.filters.chips[0][1].click()  # the folder's ×: 2021 is Work's year
    hits = wait_for_results(qtbot, window, before)
    assert hits and {h.info.path for h in hits} <= {str(p.path) for p in work}
    red_work = next(str(p.path) for p in work if (p.colour, p.shape) == ("red", "circle"))
    assert hits[0].info.path == red_work
    assert _chips(window) == ["2021  ✕"]

    before = window.serial
    window.search.setFocus()
    qtbot.keyClick(window.search, Qt.Key.Key_Escape)  # the last filter goes
    hits = wait_for_results(qtbot, window, before)
    assert _chips(window) == [] and window.search.text() == "a red circle"
    assert {h.info.path for h in hits[:2]} == {red_holidays, red_work}


def test_thousands_of_folders_fill_and_repaint_the_sidebar_without_harm(qtbot) -> None:  # type: ignore[no-untyped-def]
    """A library with a million photos has thousands of folders. PySide6 6.12.0
    dropped a reference to None on every item's setData and on every repaint of
    the tree, and Python 3.11 aborts once None's count reaches zero ("deallocating
    None"): the window of such a library died as it opened. Filling and painting
    the sidebar must leave None's reference count where it was."""
    import sys

    from photofind.gui.facets import Facets
    from photofind.gui.sidebar import Sidebar

    sidebar = Sidebar()
    qtbot.addWidget(sidebar)
    sidebar.resize(300, 900)
    sidebar.show()
    facets = Facets(sidebar)
    root = "/photos"
    folders = {root: 3000, **{f"{root}/{y}/{m:02d}-{d:02d}": 1 for y in range(2000, 2010)
                              for m in range(1, 13) for d in range(1, 26)}}
    before = sys.getrefcount(None)
    for _ in range(3):  # the window refills it as indexing goes on
        facets.fill([root], folders, {"2001-05": 3000})
    for _ in range(100):
        sidebar.viewport().repaint()
    assert len(sidebar.entries("folders")) == len(folders)
    assert sys.getrefcount(None) >= before - 50  # others may let go of a few; not thousands
