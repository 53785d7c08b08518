"""Promises of a large library: the work of a watcher batch follows the batch,
not the library; index saves grow with the library, the catalog staying the
truth; a writer that closed cleanly is not re-checked from end to end on the
next open; the all-photos view loads its rows in pages.
"""

from __future__ import annotations

import logging
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from photofind.core import library, vectorcache
from photofind.core.config import Settings
from photofind.core.indexer import apply_changes
from photofind.core.library import Library
from photofind.core.records import FileRecord
from photofind.core.scanner import scan_folders
from photofind.testing.shapes import draw_picture

REPO = Path(__file__).resolve().parents[2]


def _drain(gen: Iterator[object]) -> object:
    try:
        while True:
            next(gen)
    except StopIteration as done:
        return done.value


def _add_photo(lib: Library, folder: Path, name: str) -> None:
    """A new photo lands in ``folder``; the watcher's scan of that folder is applied."""
    folder.mkdir(parents=True, exist_ok=True)
    draw_picture("red", "circle", (96, 96), random.Random(name)).save(folder / name, "JPEG")
    root = lib.catalog.roots()[0]
    report = _drain(apply_changes(lib, scan_folders(lib.catalog, {root: [str(folder)]})))
    assert report.added == 1  # type: ignore[attr-defined]


def _synthetic_rows(lib: Library, root: Path, n: int) -> None:
    """``n`` photos the catalog knows (with vectors and thumbnails) in another
    folder of the root: the bulk of a big library, which a batch must not visit."""
    dim = lib.catalog.embedding_dim(lib.model)
    assert dim is not None
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    rid = lib.catalog.roots()[0].id
    photos = [FileRecord(rid, str(root / "old" / f"IMG_{i:05d}.jpg"), 1000 + i, 10**18 + i,
                         quick_hash=f"{i:032x}", width=96, height=96) for i in range(n)]
    ids = lib.catalog.write_batch(lib.model, photos, list(vecs))
    lib.thumbs.put_many((pid, b"jpeg") for pid in ids)
    lib.vectors.catch_up()


class _Steps:
    """SQLite virtual-machine steps run on a library's connections."""

    def __init__(self, *dbs: object) -> None:
        self.count = 0
        for db in dbs:
            db.set_progress_handler(self._tick, 100)  # type: ignore[attr-defined]

    def _tick(self) -> int:
        self.count += 100
        return 0


def _steps_for_one_photo(tmp_path: Path, toy_model: str, bulk: int) -> int:
    root = tmp_path / f"root-{bulk}"
    root.mkdir()
    settings = Settings.resolve(str(tmp_path / f"lib-{bulk}"), toy_model, "cpu")
    with Library.open(settings, writer=True) as lib:
        lib.catalog.add_root(str(root))
        _add_photo(lib, root / "first", "a.jpg")
        _synthetic_rows(lib, root, bulk)
        _add_photo(lib, root / "warm", "b.jpg")  # the index is loaded, the labels caught up
        steps = _Steps(lib.catalog.db, lib.thumbs.db)
        _add_photo(lib, root / "new", "c.jpg")
        return steps.count


@pytest.mark.slow
def test_a_watcher_batch_of_one_photo_visits_rows_for_the_batch_not_the_library(
        tmp_path: Path, toy_model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    small = _steps_for_one_photo(tmp_path, toy_model, 500)
    large = _steps_for_one_photo(tmp_path, toy_model, 8000)
    # Looking up a photo by its key costs a few steps per row of the batch; a pass
    # over the library costs tens of steps per photo (8,000 more photos here).
    assert large < small + 20_000, (small, large)


@pytest.mark.slow
def test_watcher_batches_leave_the_index_file_alone_and_readers_see_them(
        tmp_path: Path, toy_model: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(vectorcache, "SAVE_MIN", 4)
    root = tmp_path / "root"
    root.mkdir()
    settings = Settings.resolve(str(tmp_path / "lib"), toy_model, "cpu")
    with Library.open(settings, writer=True) as lib:
        lib.catalog.add_root(str(root))
        _add_photo(lib, root / "first", "a.jpg")
        _synthetic_rows(lib, root, 8)
        lib.vectors.save()
        saved = lib.catalog.manifest(lib.model)
        for i in range(3):  # 3 photos, a third of the saved 9
            _add_photo(lib, root / "new", f"n{i}.jpg")
        assert lib.catalog.manifest(lib.model) == saved  # no whole-file rewrite per batch
        # A reader (another process's search) gets the new photos from the catalog.
        with Library.open(settings) as reader, caplog.at_level(logging.INFO):
            index = reader.vectors.index()
            assert index is not None and len(index) == 12
            new = reader.catalog.photo_by_path(str(root / "new" / "n2.jpg"))
            assert new is not None and new.id in index.ids()
        assert "lacked 3 vectors" in caplog.text
        for i in range(3, 7):  # then the unsaved part reaches 3/4 of the file: it is saved
            _add_photo(lib, root / "new", f"n{i}.jpg")
        later = lib.catalog.manifest(lib.model)
        assert later is not None and saved is not None
        assert later.generation > saved.generation and later.count == 16


def test_index_saves_while_a_library_grows_write_a_few_times_its_final_size(
        tmp_path: Path, toy_model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Indexing from empty, batch after batch as the indexer does (write, catch
    up, save when due, a full save at the end): the bytes of all saves stay
    within 4x the final file."""
    monkeypatch.setattr(vectorcache, "SAVE_MIN", 50)
    written: list[int] = []
    real_save = vectorcache.VectorIndex.save

    def counting_save(self: vectorcache.VectorIndex, path: Path) -> str:
        digest = real_save(self, path)
        written.append(path.stat().st_size)
        return digest

    monkeypatch.setattr(vectorcache.VectorIndex, "save", counting_save)
    root = tmp_path / "root"
    root.mkdir()
    rng = np.random.default_rng(1)
    with Library.open(Settings.resolve(str(tmp_path / "lib"), toy_model, "cpu"),
                      writer=True) as lib:
        rid = lib.catalog.add_root(str(root)).id
        for lo in range(0, 3000, 25):
            vecs = rng.normal(size=(25, 32)).astype(np.float32)
            lib.catalog.write_batch(lib.model, [
                FileRecord(rid, str(root / f"{i}.jpg"), i, i, quick_hash=f"{i:x}")
                for i in range(lo, lo + 25)],
                list(vecs / np.linalg.norm(vecs, axis=1, keepdims=True)))
            lib.vectors.catch_up()
            lib.vectors.save_if_due()
        lib.vectors.save()
    assert len(written) < 12  # at 50, 88, 153 ... photos, not one save per 50
    assert sum(written) <= 4 * written[-1], written


def test_a_cleanly_closed_catalog_is_not_checked_again_but_a_crashed_one_is(
        tmp_path: Path, toy_model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    real = library.database_problem

    def spy(path: Path, full: bool = False) -> str | None:
        checked.append(path.name)
        return real(path, full)

    monkeypatch.setattr(library, "database_problem", spy)
    settings = Settings.resolve(str(tmp_path / "lib"), toy_model, "cpu")
    with Library.open(settings, writer=True) as lib:
        lib.catalog.add_root(str(tmp_path))
        lib.thumbs.put_many([(1, b"x")])
    with Library.open(settings, writer=True) as lib:
        assert lib.thumbs.get(1) == b"x"
    assert checked == []  # nothing wrote to them since the clean close
    # A writer that dies leaves no clean mark: the next one checks what it opens.
    code = ("import os, sys; from photofind.core.config import Settings;"
            " from photofind.core.library import Library;"
            " lib = Library.open(Settings.resolve(sys.argv[1], sys.argv[2], 'cpu'), writer=True);"
            " lib.thumbs; os._exit(3)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "lib"), toy_model],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    with Library.open(settings, writer=True) as lib:
        lib.thumbs.get(1)
    assert checked == ["catalog.sqlite3", "thumbs.sqlite3"]
    # A file that changed after a clean close is checked (and a damaged one moved aside).
    (tmp_path / "lib" / "thumbs.sqlite3").write_bytes(b"\x00garbage" * 4000)
    with Library.open(settings, writer=True) as lib:
        assert lib.thumbs.get(1) is None
    assert checked[2:] == ["thumbs.sqlite3"]
    assert list((tmp_path / "lib").glob("thumbs.damaged-*"))


def test_the_all_photos_view_reads_rows_a_page_at_a_time(
        tmp_path: Path, toy_model: str, qtbot: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from photofind.core import catalog
    from photofind.gui.data import Query
    from photofind.gui.models import PAGE, ResultsModel
    from photofind.gui.workers import Queries, SharedIndex, SharedModel

    settings = Settings.resolve(str(tmp_path / "lib"), toy_model, "cpu")
    with Library.open(settings, writer=True) as lib:
        rid = lib.catalog.add_root(str(tmp_path)).id
        vecs = np.eye(1000, 32, dtype=np.float32) + 0.01
        lib.catalog.write_batch(lib.model, [
            FileRecord(rid, str(tmp_path / f"IMG_{i:04d}.jpg"), i, i, quick_hash=f"{i:x}",
                       width=96, height=96,
                       taken_at=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1.6e9 + i * 3600)))
            for i in range(1000)], list(vecs))
    read: list[int] = []

    real = catalog.PhotoInfo

    def counted(*fields: Any) -> catalog.PhotoInfo:  # each row read from the catalog
        read.append(fields[0])
        return real(*fields)

    monkeypatch.setattr(catalog, "PhotoInfo", counted)
    queries = Queries(settings, SharedModel(settings), SharedIndex())
    with Library.open(settings) as reader:
        listing = queries._answer(reader, Query())
    model = ResultsModel()
    model.set_hits(listing)
    assert model.total() == 1000 and model.rowCount() == PAGE
    first = model.index(0)
    assert first.data() == "IMG_0999.jpg"  # the newest photo leads
    assert len(read) <= PAGE  # the first page, not the library
    while model.canFetchMore(first.parent()):
        model.fetchMore(first.parent())
    assert model.index(999).data() == "IMG_0000.jpg"
    # Scrolled to the end: the first page and the last were read, once each.
    assert len(read) == len(set(read)) <= 2 * PAGE
