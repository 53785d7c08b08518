"""The viewer's "Where?": a heatmap of the query's words over the photo,
computed on a worker and cancelled when the user moves to another photo."""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from tests.gui.conftest import OpenWindow
from tests.gui.test_window import ready, wait_for_results


def slow_decode(path: str) -> None:
    """Decode hook: the chosen photo takes a while (so a run is still going)."""
    if path == os.environ.get("PHOTOFIND_TEST_SLOW"):
        time.sleep(1.5)


def brightness(view, rect) -> float:  # type: ignore[no-untyped-def]
    """The painted photo's mean brightness inside rect."""
    image = view.grab().toImage()
    ratio = image.devicePixelRatio()
    total, n = 0.0, 0
    for y in range(int(rect.top() * ratio) + 2, int(rect.bottom() * ratio) - 2, 4):
        for x in range(int(rect.left() * ratio) + 2, int(rect.right() * ratio) - 2, 4):
            c = QColor(image.pixel(x, y))
            total += (c.red() + c.green() + c.blue()) / 3
            n += 1
    return total / max(n, 1)


def test_where_paints_a_heatmap_and_moving_on_cancels_it(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, library_copy: Path, monkeypatch) -> None:
    window = open_window(library_copy)
    ready(qtbot, window)
    qtbot.keyClicks(window.search, "a blue square")
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    hits = wait_for_results(qtbot, window)
    qtbot.keyClick(window.search, Qt.Key.Key_Down)
    qtbot.keyClick(window.grid, Qt.Key.Key_Return)
    viewer = window.viewer
    assert viewer is not None and viewer.where.isVisible()  # the query has words
    qtbot.waitUntil(lambda: not viewer.view.pixmap.isNull(), timeout=30_000)
    photo = viewer.view.photo_rect()
    before = brightness(viewer.view, photo)
    qtbot.keyClick(viewer, Qt.Key.Key_W)  # Where?
    assert viewer.where.isChecked() and viewer.spinner.isVisible()
    qtbot.waitUntil(lambda: viewer.view.location is not None, timeout=60_000)
    assert not viewer.spinner.isVisible()
    location = viewer.view.location
    assert location is not None and location.width > 0 and location.height > 0
    x0, y0, x1, y1 = location.box
    assert 0 <= x0 < x1 <= location.width and 0 <= y0 < y1 <= location.height
    after = brightness(viewer.view, photo)
    assert after < before - 10, (before, after)  # the map shades what does not match

    # A run still going when the user moves on is cancelled, and never painted.
    monkeypatch.setenv("PHOTOFIND_DECODE_HOOK", f"{__name__}:slow_decode")
    monkeypatch.setenv("PHOTOFIND_TEST_SLOW", hits[1].info.path)
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert viewer.hit is not None and viewer.hit.info.id == hits[1].info.id
    assert viewer.view.location is None
    cancelled = window.locator.cancelled_runs
    qtbot.keyClick(viewer, Qt.Key.Key_W)
    qtbot.waitUntil(lambda: window.locator.running is not None, timeout=10_000)
    qtbot.keyClick(viewer, Qt.Key.Key_Right)  # move on while it runs
    assert viewer.hit is not None and viewer.hit.info.id == hits[2].info.id
    assert not viewer.where.isChecked()
    qtbot.waitUntil(lambda: window.locator.running is None, timeout=30_000)
    assert window.locator.cancelled_runs == cancelled + 1
    qtbot.wait(200)
    assert viewer.view.location is None and not viewer.spinner.isVisible()
