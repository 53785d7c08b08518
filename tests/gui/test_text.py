"""The viewer and the words read in a photo: a photo found through its text has
the matched words marked where they were read, "Copy text" copies what was
read, and the Settings switch turns reading off in the library itself.

The text is stored as the reading stage stores it (no engine runs here; the
engine is tested in tests/promises/test_text.py)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication

from photofind.core import ocr, textindex
from photofind.core.catalog import Catalog
from photofind.core.ocr import Line, Word
from photofind.core.textindex import ReadText
from tests.gui.conftest import OpenWindow
from tests.gui.test_window import ready, wait_for_results

TOTAL = (0.55, 0.70, 0.80, 0.80)  # where "42.50" was read, in fractions of the photo


def store_text(library: Path) -> str:
    """Give the library's first photo a receipt's text; returns its path."""
    catalog = Catalog(library / "catalog.sqlite3")
    try:
        pid, path = catalog.db.execute("SELECT id, path FROM photos WHERE status = 'ok'"
                                       " ORDER BY id LIMIT 1").fetchone()
        engine = ocr.engine_id() if ocr.installed() else "an engine"
        lines = (Line("HARDWARE STORE", 0.99, (0.1, 0.1, 0.8, 0.2),
                      (Word("HARDWARE", (0.1, 0.1, 0.45, 0.2)),
                       Word("STORE", (0.5, 0.1, 0.8, 0.2)))),
                 Line("TOTAL 42.50", 0.98, (0.1, 0.7, 0.8, 0.8),
                      (Word("TOTAL", (0.1, 0.7, 0.4, 0.8)), Word("42.50", TOTAL))))
        textindex.store(catalog, [ReadText(pid, engine, lines, 0.985, None)])
        return str(path)
    finally:
        catalog.close()


def searched(qtbot, open_window: OpenWindow, library: Path, query: str):  # type: ignore[no-untyped-def]
    """(the photo given text, the window, the hits of ``query`` typed in it)."""
    path = store_text(library)
    window = open_window(library)
    ready(qtbot, window)
    qtbot.keyClicks(window.search, query)
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    return path, window, wait_for_results(qtbot, window)


def yellowish(view, rect) -> bool:  # type: ignore[no-untyped-def]
    image = view.grab().toImage()
    ratio = image.devicePixelRatio()
    c = QColor(image.pixel(int(rect.center().x() * ratio), int(rect.center().y() * ratio)))
    return c.red() > 120 and c.green() > 100 and c.blue() < c.red() - 60


def test_found_words_are_marked_and_the_text_copied(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, library_copy: Path) -> None:
    path, window, hits = searched(qtbot, open_window, library_copy, 'text:"total 42.50"')
    assert [h.info.path for h in hits] == [path]
    qtbot.keyClick(window.search, Qt.Key.Key_Down)
    qtbot.keyClick(window.grid, Qt.Key.Key_Return)
    viewer = window.viewer
    assert viewer is not None
    qtbot.waitUntil(lambda: not viewer.view.pixmap.isNull() and viewer.copy_text.isEnabled(),
                    timeout=30_000)
    assert viewer.view.marks == [(0.1, 0.7, 0.4, 0.8), TOTAL]  # TOTAL and 42.50, not STORE
    photo = viewer.view.photo_rect()
    mark = viewer.view.mark_rects()[1]
    assert photo.contains(mark)
    assert abs(mark.left() - (photo.left() + TOTAL[0] * photo.width())) < 4
    assert yellowish(viewer.view, mark)
    viewer.copy_text.click()
    assert QGuiApplication.clipboard().text() == "HARDWARE STORE\nTOTAL 42.50"


def test_a_photo_without_text_has_nothing_to_copy(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, library_copy: Path) -> None:
    path, window, hits = searched(qtbot, open_window, library_copy, "a red circle")
    row = next(i for i, h in enumerate(hits) if h.info.path != path)
    window.open_viewer(row)
    viewer = window.viewer
    assert viewer is not None
    qtbot.waitUntil(lambda: not viewer.view.pixmap.isNull(), timeout=30_000)
    qtbot.wait(300)  # the text answer, had there been one
    assert not viewer.copy_text.isEnabled() and viewer.view.marks == []


def test_the_settings_switch_is_the_librarys(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, library_copy: Path) -> None:
    catalog = Catalog(library_copy / "catalog.sqlite3")
    engine = ocr.engine_id() if ocr.installed() else "an engine"
    ids = [pid for (pid,) in catalog.db.execute("SELECT id FROM photos")]
    textindex.store(catalog, [ReadText(pid, engine, (), None, None) for pid in ids])
    catalog.close()  # every photo read already: switching on reads nothing here
    window = open_window(library_copy)
    ready(qtbot, window)
    dialog = window.open_settings()
    assert dialog.read_text.isChecked() == window.reading_text
    dialog.read_text.setChecked(not window.reading_text)
    wanted = dialog.read_text.isChecked()
    dialog._save()
    qtbot.waitUntil(lambda: window.reading_text == wanted, timeout=30_000)
    catalog = Catalog(library_copy / "catalog.sqlite3", read_only=True)
    try:
        assert textindex.reading_enabled(catalog) == wanted
    finally:
        catalog.close()
