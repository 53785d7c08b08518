"""Exact copies show as one tile with a "× N" badge, the preview lists every
copy, and the Duplicates page shows groups with the suggested photo ticked."""

from __future__ import annotations

import dataclasses
import random
import shutil
from pathlib import Path

from PySide6.QtCore import QRect
from PySide6.QtGui import QImage, QPainter

from photofind.gui.duplicates import DUPES
from photofind.gui.views import TileDelegate
from photofind.testing.shapes import CLASSES, draw_picture
from tests.conftest import Cli
from tests.gui.conftest import OpenWindow
from tests.gui.test_window import ready


def library_with_copies(cli: Cli, root: Path) -> list[Path]:
    """Six drawn photos, the first one also in two backup folders."""
    rng = random.Random(9)
    root.mkdir()
    photos = []
    for n, (c, s) in enumerate(CLASSES[:6]):
        photos.append(root / f"{n}-{c}-{s}.jpg")
        draw_picture(c, s, (400, 300), rng).save(photos[-1], quality=90)
    copies = [photos[0]]
    for folder in ("backup", "old-phone/backup"):
        (root / folder).mkdir(parents=True)
        copies.append(Path(shutil.copy2(photos[0], root / folder / photos[0].name)))
    assert cli.index(str(root))["added"] == 8
    return copies


def test_exact_copies_are_one_tile_with_a_badge_and_the_preview_lists_them(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, cli: Cli, tmp_path: Path, monkeypatch) -> None:
    copies = library_with_copies(cli, tmp_path / "Pictures")
    window = open_window(cli.library)
    ready(qtbot, window)
    hits = [window.model.hit(r) for r in range(window.model.rowCount())]
    assert len(hits) == 6  # eight files, six pictures
    (copied,) = [h for h in hits if h.copies]
    assert copied.info.path == str(copies[0])  # the shortest path is the one shown
    assert sorted(c.path for c in copied.copies) == sorted(str(p) for p in copies[1:])
    row = hits.index(copied)
    painted: list[tuple[int, str]] = []
    badge = TileDelegate._badge

    def noting_badge(painter: QPainter, box: QRect, text: str) -> None:
        painted.append((window.grid.indexAt(box.center()).row(), text))
        badge(painter, box, text)

    monkeypatch.setattr(TileDelegate, "_badge", staticmethod(noting_badge))
    # What a person sees: the window drawn with the copies and again without them
    # differs in the copied tile's top-right corner and nowhere else. Every thumbnail
    # is loaded first, and the grid laid out before each grab, so both show photos.
    ids = [h.info.id for h in hits]
    qtbot.waitUntil(lambda: all(window.cache.get(i) is not None for i in ids), timeout=30_000)

    def drawn() -> QImage:
        window.grid.doItemsLayout()
        return window.grid.viewport().grab().toImage()

    with_badge = drawn()
    assert painted and set(painted) == {(row, "× 3")}  # only on the tile with copies
    window.model.set_hits([dataclasses.replace(h, copies=()) for h in hits])
    without = drawn()
    cell = window.grid.visualRect(window.model.index(row))
    ratio = with_badge.devicePixelRatio()
    changed = [(x / ratio, y / ratio) for y in range(with_badge.height())
               for x in range(with_badge.width()) if with_badge.pixel(x, y) != without.pixel(x, y)]
    assert len(changed) > 100  # a visible label, not a stray pixel
    assert all(cell.center().x() < x <= cell.right() + 1 and cell.top() <= y < cell.top() + 40
               for x, y in changed)
    window.model.set_hits(hits)
    window.open_viewer(row)
    assert window.viewer is not None
    info = window.viewer.info.text()
    assert "3 identical copies" in info and all(str(p) in info for p in copies)


def test_the_duplicates_page_shows_groups_with_the_keep_ticked(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, cli: Cli, tmp_path: Path) -> None:
    copies = library_with_copies(cli, tmp_path / "Pictures")
    window = open_window(cli.library)
    ready(qtbot, window)
    entry = next(e for e in window.sidebar.entries(DUPES) if e.key == "exact")
    assert entry.count is None  # not looked for until asked
    window.sidebar.chosen.emit(entry)
    page = window.dupes_page
    qtbot.waitUntil(lambda: len(page.tiles) == 3, timeout=30_000)
    assert window.stack.currentWidget() is page
    assert [t.path for t in page.tiles] == [str(p) for p in copies]  # shortest path first
    assert [t.keep.isChecked() for t in page.tiles] == [True, False, False]
    assert window.sidebar.entries(DUPES)[0].count == 1
    going, nothing_kept = page.chosen_for_trash()
    assert [t.path for t in going] == [str(p) for p in copies[1:]] and not nothing_kept
    for tile in page.tiles:
        tile.keep.setChecked(False)
    assert page.chosen_for_trash() == ([], [0])  # a group must keep one: nothing goes
    window.search.setText("a red circle")
    window.run_query()
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.grid, timeout=30_000)
