"""What a person sees and does: pixels in the grid, the keyboard from the
search box to the viewer, the cut-off and the order, the problems list,
pausing, removing a folder, and a model that cannot be downloaded. Keys are
sent as key events (QTest), never as slot calls."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication

from photofind.core.catalog import Catalog
from photofind.core.thumbs import ThumbStore
from photofind.gui.mainwindow import GRID, MainWindow
from photofind.gui.searchbar import CUTOFF_MAX
from photofind.testing.samples import make_sample_library
from tests.conftest import IndexedLibrary
from tests.gui.conftest import OpenWindow
from tests.gui.test_window import classes, ready, wait_for_results


def activate(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5_000)


def mean_colour(image: QImage, x0: int, y0: int, x1: int, y1: int) -> tuple[float, ...]:
    total = [0.0, 0.0, 0.0]
    n = 0
    for y in range(y0, y1, 3):
        for x in range(x0, x1, 3):
            c = QColor(image.pixel(x, y))
            total[0] += c.red()
            total[1] += c.green()
            total[2] += c.blue()
            n += 1
    return tuple(v / n for v in total)


def test_a_tile_shows_its_thumbnail_and_the_columns_fill_the_width(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, library_copy: Path) -> None:
    window = open_window(library_copy)
    window.resize(1000 + 150, 700)  # a width that fixed 172-px cells would leave a strip in
    ready(qtbot, window)
    first = window.model.hit(0)
    qtbot.waitUntil(lambda: window.cache.get(first.info.id) is not None, timeout=10_000)
    qtbot.wait(100)  # the repaint after the thumbnail arrived
    grid = window.grid
    shot = grid.viewport().grab().toImage()
    rect = grid.visualRect(window.model.index(0))
    tile = window.grid.delegate.tile
    box_x = rect.x() + (rect.width() - tile) // 2
    store = ThumbStore(library_copy / "thumbs.sqlite3")
    thumb = QImage.fromData(store.get(first.info.id) or b"")
    store.close()
    fitted = thumb.scaled(tile, tile, Qt.AspectRatioMode.KeepAspectRatio,
                          Qt.TransformationMode.SmoothTransformation)
    x0 = box_x + (tile - fitted.width()) // 2
    y0 = rect.y() + 6 + (tile - fitted.height()) // 2
    ratio = shot.devicePixelRatio()
    seen = mean_colour(shot, int(x0 * ratio) + 4, int(y0 * ratio) + 4,
                       int((x0 + fitted.width()) * ratio) - 4,
                       int((y0 + fitted.height()) * ratio) - 4)
    expected = mean_colour(fitted, 4, 4, fitted.width() - 4, fitted.height() - 4)
    assert max(abs(a - b) for a, b in zip(seen, expected, strict=True)) < 10, (seen, expected)
    # The columns share the width: the strip right of the last column is small.
    columns = [grid.visualRect(window.model.index(i)) for i in range(window.model.rowCount())]
    top_row = [r for r in columns if r.y() == columns[0].y()]
    right_gap = grid.viewport().width() - max(r.right() for r in top_row)
    assert len(top_row) >= 4 and right_gap < 24, right_gap
    # Thumbnails are scaled once per tile size, not on every paint.
    scalings = window.cache.scalings
    grid.viewport().repaint()
    assert window.cache.scalings == scalings


def test_from_the_search_box_to_the_viewer_with_the_keyboard(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, library_copy: Path, indexed: IndexedLibrary) -> None:
    window = open_window(library_copy)
    ready(qtbot, window)
    activate(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)  # Ctrl+F
    assert window.search.hasFocus()
    qtbot.keyClicks(window.search, "a blue star")
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    hits = wait_for_results(qtbot, window)
    qtbot.keyClick(window.search, Qt.Key.Key_Down)  # Down reaches the results
    assert window.grid.hasFocus() and window.grid.currentIndex().row() == 0
    qtbot.keyClick(window.grid, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.search.hasFocus()
    qtbot.keyClick(window.search, Qt.Key.Key_Tab)  # so does Tab
    assert window.grid.hasFocus()
    qtbot.keyClick(window.grid, Qt.Key.Key_Return)  # Enter opens the selected photo
    viewer = window.viewer
    assert viewer is not None and viewer.isVisible() and viewer.hit == hits[0]
    qtbot.waitUntil(lambda: not viewer.view.pixmap.isNull(), timeout=30_000)
    # The photo fits the space it has: a 400-px photo fills a larger viewer.
    rect, view = viewer.view.photo_rect(), viewer.view
    assert abs(rect.width() - view.width()) < 2 or abs(rect.height() - view.height()) < 2
    assert max(rect.width(), rect.height()) > 400
    qtbot.keyClick(viewer, Qt.Key.Key_Plus)  # zoom in
    assert viewer.view.zoom > 1 and viewer.view.photo_rect().width() > rect.width()
    qtbot.keyClick(viewer, Qt.Key.Key_Minus)
    assert viewer.view.zoom == 1.0
    qtbot.keyClick(viewer, Qt.Key.Key_Right)  # the next result
    assert viewer.hit == hits[1] and window.grid.currentIndex().row() == 1
    qtbot.keyClick(viewer, Qt.Key.Key_Left)
    assert viewer.hit == hits[0]
    assert classes(indexed, [viewer.hit])[0] == ("blue", "star")
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)  # Escape closes
    assert not viewer.isVisible()
    activate(qtbot, window)
    window.grid.setFocus()
    qtbot.keyClick(window.grid, Qt.Key.Key_Space)  # Space toggles it
    assert viewer.isVisible()
    qtbot.keyClick(viewer, Qt.Key.Key_Space)
    assert not viewer.isVisible()


def crash_or_fail(path: str) -> None:
    """Decode hook (runs in the decode worker): damaged files, as a test sees them."""
    if path == os.environ.get("PHOTOFIND_TEST_CRASH"):
        os._exit(3)  # the decoder dies, as on a segfault
    if path == os.environ.get("PHOTOFIND_TEST_BROKEN"):
        raise OSError("broken data stream when reading image file")


def test_the_viewer_shows_a_photo_or_says_why_it_cannot(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, library_copy: Path, monkeypatch) -> None:
    window = open_window(library_copy)
    ready(qtbot, window)
    crash, broken, fine = (window.model.hit(r) for r in range(3))
    monkeypatch.setenv("PHOTOFIND_DECODE_HOOK", f"{__name__}:crash_or_fail")
    monkeypatch.setenv("PHOTOFIND_TEST_CRASH", crash.info.path)
    monkeypatch.setenv("PHOTOFIND_TEST_BROKEN", broken.info.path)
    window.grid.setFocus()
    window.grid.setCurrentIndex(window.model.index(0))
    qtbot.keyClick(window.grid, Qt.Key.Key_Return)
    viewer = window.viewer
    assert viewer is not None
    qtbot.waitUntil(lambda: "Cannot show" in viewer.view.message, timeout=30_000)
    assert "crashed" in viewer.view.message  # in a worker process: the window lives on
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: "Cannot show" in viewer.view.message, timeout=30_000)
    assert "broken" in viewer.view.message or "truncated" in viewer.view.message \
        or "damaged" in viewer.view.message, viewer.view.message
    qtbot.keyClick(viewer, Qt.Key.Key_Right)  # a new decoder took the crashed one's place
    qtbot.waitUntil(lambda: not viewer.view.pixmap.isNull(), timeout=30_000)
    # the same photo (its smart-album labels may arrive meanwhile: they follow indexing)
    assert viewer.hit is not None and viewer.hit.info.id == fine.info.id


def test_cutoff_slider_counts_and_newest_first(qtbot, open_window: OpenWindow,  # type: ignore[no-untyped-def]
                                               library_copy: Path,
                                               indexed: IndexedLibrary) -> None:
    window = open_window(library_copy, cutoff=0)  # the automatic cut-off
    ready(qtbot, window)
    qtbot.keyClicks(window.search, "a red circle")
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    hits = wait_for_results(qtbot, window)
    everything = len(indexed.photos)
    assert 3 <= len(hits) < 12
    assert classes(indexed, hits).count(("red", "circle")) >= len(hits) - 1
    assert window.count_label.text().startswith(f"{len(hits)} matches (of {everything} ranked")
    window.cutoff.setValue(CUTOFF_MAX)  # all the way right: every photo ranked
    assert window.model.total() == everything
    assert window.count_label.text() == f"{everything} matches"
    window.cutoff.setValue(10)  # within 0.10 of the best match
    best = window.model.hit(0).score
    assert best is not None
    shown = [window.model.hit(r) for r in range(window.model.rowCount())]
    assert all(h.score is not None and h.score >= best - 0.10 for h in shown)
    window.bar.order.setCurrentText("Newest first")
    by_date = [window.model.hit(r) for r in range(window.model.rowCount())]
    assert {h.info.id for h in by_date} == {h.info.id for h in shown}
    assert [h.info.date for h in by_date] == sorted((h.info.date for h in shown), reverse=True)


def test_problems_pause_and_removing_a_folder(qtbot, open_window: OpenWindow,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    folder = tmp_path / "Pictures"
    make_sample_library(folder, per_class=3, large=0)  # 60 photos
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    window = open_window(tmp_path / "library")
    qtbot.waitUntil(lambda: window.queries.model_loaded, timeout=60_000)
    window.add_folder(str(folder))
    qtbot.waitUntil(lambda: window.indexing and window.progress_bar.value() > 0,
                    timeout=60_000)
    qtbot.mouseClick(window.status.pause_button, Qt.MouseButton.LeftButton)
    assert window.status.pause_button.text() == "Resume indexing"
    catalog = Catalog(tmp_path / "library" / "catalog.sqlite3")
    qtbot.wait(1500)  # the batch in flight is committed
    held = catalog.embedding_count(window.settings.model)
    qtbot.wait(2000)
    assert catalog.embedding_count(window.settings.model) == held < 60  # paused
    qtbot.mouseClick(window.status.pause_button, Qt.MouseButton.LeftButton)
    assert window.status.pause_button.text() == "Pause indexing"
    qtbot.waitUntil(lambda: window.model.total() == 60 and not window.indexing,
                    timeout=180_000)
    assert catalog.embedding_count(window.settings.model) == 60
    catalog.close()
    problems = window.status.problems_button
    qtbot.waitUntil(lambda: problems.isVisible(), timeout=30_000)
    assert problems.text() == "1 problem"
    qtbot.mouseClick(problems, Qt.MouseButton.LeftButton)
    dialog = next(w for w in QApplication.topLevelWidgets()
                  if w.windowTitle().startswith("Problems") and w.isVisible())
    table = dialog.table  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: table.rowCount() == 1, timeout=10_000)
    assert table.item(0, 0).text() == str(folder / "broken.jpg") and table.item(0, 1).text()
    assert "1 file could not be read" in dialog.summary.text()  # type: ignore[attr-defined]
    dialog.close()

    folders = window.open_folders()  # Folders: Remove forgets the folder, not the files
    qtbot.waitUntil(lambda: folders.table.rowCount() == 1, timeout=10_000)
    folders.table.selectRow(0)
    qtbot.mouseClick(folders.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: folders.table.rowCount() == 0, timeout=30_000)
    qtbot.waitUntil(lambda: window.stack.currentIndex() == 0, timeout=30_000)  # empty state
    assert len(list(folder.rglob("*.*"))) == 61  # every file still there


def test_a_model_that_cannot_be_downloaded_says_what_to_do(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, library_copy: Path, tmp_path: Path, monkeypatch,
        indexed: IndexedLibrary) -> None:
    """An empty model cache and the hub offline: the real message, not an injected one."""
    import huggingface_hub.constants

    cache = tmp_path / "empty-hf"
    cache.mkdir()
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    shutil.rmtree(cache / "hub", ignore_errors=True)
    window = open_window(library_copy, model="ViT-B-32/laion2b_s34b_b79k")
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=60_000)
    text = window.banner.text()
    assert "offline" in text and "huggingface.co/laion/" in text and str(cache) in text
    assert "browsing" in text  # and what still works
    assert not window.search.isEnabled()
    assert window.status.device_label.text() == "model: not loaded"
    hits = wait_for_results(qtbot, window)  # browsing works
    assert len(hits) == len(indexed.photos) and window.stack.currentIndex() == GRID
    red_circle = next(h for h in hits if classes(indexed, [h]) == [("red", "circle")])
    window.find_similar(red_circle)  # stored vectors need no model ...
    assert window.status_info is not None
    hits = wait_for_results(qtbot, window)  # ... but these are the toy model's: none here
    assert not list((cache / "hub").rglob("*.safetensors"))  # nothing was fetched
