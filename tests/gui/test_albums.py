"""The sidebar: "All photos", smart albums with their counts, and the user's
own albums (saved searches) that follow the library as photos arrive."""

from __future__ import annotations

import random
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit

from photofind.gui.albums import SAVED, SMART
from photofind.gui.dialogs import SaveAlbumDialog
from photofind.gui.mainwindow import MainWindow
from photofind.testing.samples import make_sample_library, save_picture
from photofind.testing.shapes import draw_picture
from tests.conftest import IndexedLibrary
from tests.gui.conftest import OpenWindow
from tests.gui.test_window import classes, ready, wait_for_results


def open_with_keys(qtbot, window: MainWindow, section: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """Reach the sidebar with F6, walk to the entry with the arrow keys, press Enter."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5_000)
    qtbot.keyClick(window, Qt.Key.Key_F6)
    sidebar = window.sidebar
    assert sidebar.hasFocus()
    target = sidebar.item_of(section, next(e.key for e in sidebar.entries(section)
                                           if e.text == text))
    for _ in range(200):
        if sidebar.currentItem() is target:
            break
        qtbot.keyClick(sidebar, Qt.Key.Key_Down)
    assert sidebar.currentItem() is target
    qtbot.keyClick(sidebar, Qt.Key.Key_Return)


def saved_names(window: MainWindow) -> list[str]:
    return [e.text for e in window.sidebar.entries(SAVED)]


def test_save_a_search_as_an_album_and_reopen_it(qtbot, open_window: OpenWindow,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    folder = tmp_path / "Pictures"
    make_sample_library(folder, per_class=2, large=0)  # 40 photos
    window = open_window(tmp_path / "library", cutoff=0)
    qtbot.waitUntil(lambda: window.queries.model_loaded, timeout=60_000)
    window.add_folder(str(folder))
    qtbot.waitUntil(lambda: window.model.total() == 40 and not window.indexing,
                    timeout=180_000)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5_000)
    qtbot.keyClicks(window.search, "a green square")
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    hits = wait_for_results(qtbot, window)
    assert [Path(h.info.path).stem[:12] for h in hits] == ["green-square"] * 2
    qtbot.keyClick(window.search, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    dialog = next(w for w in QApplication.topLevelWidgets()
                  if isinstance(w, SaveAlbumDialog) and w.isVisible())
    assert any("a green square" in label.text() for label in dialog.findChildren(QLabel))
    qtbot.keyClicks(dialog.name, "Green things")
    qtbot.keyClick(dialog.name, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: saved_names(window) == ["Green things"], timeout=10_000)

    open_with_keys(qtbot, window, "all", "All photos")
    assert len(wait_for_results(qtbot, window)) == 40 and window.search.text() == ""
    open_with_keys(qtbot, window, SAVED, "Green things")
    reopened = wait_for_results(qtbot, window)
    assert window.search.text() == "a green square"
    assert [h.info.id for h in reopened] == [h.info.id for h in hits]

    # The album follows the library: a new green square shows up in it by itself.
    new = folder / "later" / "new-green.jpg"
    save_picture(draw_picture("green", "square", (400, 300), random.Random(5)), new, "JPEG")
    qtbot.waitUntil(lambda: str(new) in [window.model.hit(r).info.path
                                         for r in range(window.model.rowCount())],
                    timeout=60_000)

    # Rename in place (F2), and the name is kept in the library.
    sidebar = window.sidebar
    sidebar.setFocus()
    qtbot.keyClick(sidebar, Qt.Key.Key_F2)
    editor = sidebar.findChild(QLineEdit)
    assert editor is not None
    editor.selectAll()
    qtbot.keyClicks(editor, "Greens")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: saved_names(window) == ["Greens"], timeout=10_000)
    library = window.settings.library
    window.close()

    again = open_window(library, cutoff=0)
    qtbot.waitUntil(lambda: saved_names(again) == ["Greens"], timeout=30_000)
    ready(qtbot, again)
    open_with_keys(qtbot, again, SAVED, "Greens")
    assert str(new) in [h.info.path for h in wait_for_results(qtbot, again)]
    qtbot.keyClick(again.sidebar, Qt.Key.Key_Delete)  # remove it
    qtbot.waitUntil(lambda: saved_names(again) == [], timeout=10_000)
    qtbot.keyClick(again, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)  # collapse
    assert not again.sidebar.isVisible()
    qtbot.keyClick(again, Qt.Key.Key_F6)  # F6 brings it back, with the focus
    assert again.sidebar.isVisible() and again.sidebar.hasFocus()


def test_an_album_keeps_its_image_term_and_cutoff(qtbot, open_window: OpenWindow,  # type: ignore[no-untyped-def]
                                                  library_copy: Path,
                                                  indexed: IndexedLibrary) -> None:
    window = open_window(library_copy, cutoff=0)
    ready(qtbot, window)
    hits = wait_for_results(qtbot, window)
    star = next(h for h in hits if classes(indexed, [h]) == [("yellow", "star")])
    window.find_similar(star)  # an image term ...
    qtbot.keyClicks(window.search, "a yellow star")  # ... and words
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    shown = wait_for_results(qtbot, window)
    window.cutoff.setValue(12)
    shown = [window.model.hit(r) for r in range(window.model.rowCount())]
    dialog = window.save_as_album()
    assert dialog is not None
    dialog.name.setText("Yellow stars")
    qtbot.mouseClick(dialog.buttons.buttons()[0], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: saved_names(window) == ["Yellow stars"], timeout=10_000)
    window.chip.click()
    window.cutoff.setValue(0)
    window.search.clear()
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    wait_for_results(qtbot, window)
    open_with_keys(qtbot, window, SAVED, "Yellow stars")
    again = wait_for_results(qtbot, window)
    assert window.chip.isVisible() and Path(star.info.path).name in window.chip.text()
    assert window.cutoff.value() == 12
    assert [h.info.id for h in again] == [h.info.id for h in shown]


def test_sidebar_lists_smart_albums_with_counts_and_opens_them(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, tmp_path: Path) -> None:
    from photofind.core import albums
    folder = tmp_path / "Pictures"
    make_sample_library(folder, per_class=2, large=0)
    window = open_window(tmp_path / "library")
    qtbot.waitUntil(lambda: window.queries.model_loaded, timeout=60_000)
    window.add_folder(str(folder))
    qtbot.waitUntil(lambda: window.model.total() == 40 and not window.indexing,
                    timeout=180_000)
    # The engine labels once indexing is idle, and the sidebar fills by itself.
    qtbot.waitUntil(lambda: bool(window.sidebar.entries(SMART)), timeout=30_000)
    entries = window.sidebar.entries(SMART)
    counts = [e.count or 0 for e in entries]
    assert counts == sorted(counts, reverse=True) and all(c > 0 for c in counts)
    from photofind.core.config import Settings
    from photofind.core.library import Library

    with Library.open(Settings.resolve(str(tmp_path / "library"), window.settings.model,
                                       "cpu")) as lib:
        truth = {a.label: a.count for a in albums.smart_albums(lib)}
    assert {e.key: e.count for e in entries} == truth
    first = entries[0]
    open_with_keys(qtbot, window, SMART, first.text)
    hits = wait_for_results(qtbot, window)
    assert len(hits) == first.count
    scores = [h.score or 0.0 for h in hits]
    assert scores == sorted(scores, reverse=True)  # ranked by probability
    assert all(first.key in h.labels for h in hits)
    tip = window.model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    assert first.key in tip  # labels show in the tooltip ...
    window.open_viewer(0)
    assert window.viewer is not None and first.key in window.viewer.info.text()  # and preview
