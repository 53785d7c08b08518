"""One file record from the scanner to the catalog, and catalogs from before it upgrade."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import numpy as np

from photofind.core import catalog as catalog_module
from photofind.core.catalog import SCHEMA_VERSION, Catalog
from photofind.core.imaging import partial_hash
from photofind.core.records import FileRecord, mtime_date
from photofind.core.scanner import scan


def _old_catalog(path: Path, version: int) -> sqlite3.Connection:
    """A catalog as a photofind at schema ``version`` left it."""
    db = sqlite3.connect(path, isolation_level=None)
    for step in catalog_module._MIGRATIONS[:version]:
        db.executescript(step)
    db.execute(f"PRAGMA user_version = {version}")
    return db


def test_a_catalog_from_before_the_rename_keeps_its_quick_hashes_and_confirms_moves(
        tmp_path: Path) -> None:
    photo = tmp_path / "Pictures" / "a.jpg"
    photo.parent.mkdir()
    photo.write_bytes(os.urandom(200_000))
    st = photo.stat()
    rename_step = next(i for i, step in enumerate(catalog_module._MIGRATIONS)
                       if "RENAME COLUMN phash TO quick_hash" in step)
    db = _old_catalog(tmp_path / "catalog.sqlite3", rename_step)
    db.execute("INSERT INTO roots(path, added_at) VALUES (?, 0)", (str(photo.parent),))
    with photo.open("rb") as fh:  # the content hash photofind wrote then: blake2b-160
        digest = hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=20)).hexdigest()
    db.execute("INSERT INTO photos(root_id, path, size, mtime_ns, phash, status, indexed_at,"
               " content_hash) VALUES (1, ?, ?, ?, ?, 'ok', 0, ?)",
               (str(photo), st.st_size, st.st_mtime_ns, partial_hash(str(photo)), digest))
    db.close()

    catalog = Catalog(tmp_path / "catalog.sqlite3")
    assert catalog.version() == SCHEMA_VERSION
    row = catalog.photo_by_path(str(photo))
    assert row is not None and row.quick_hash == partial_hash(str(photo))
    indexes = {r[0] for r in catalog.db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'photos'")
        if r[0]}
    assert any("quick_hash" in sql for sql in indexes) and not any(
        "phash" in sql for sql in indexes)

    # The upgraded row still pairs a renamed file with its photo (same id, no re-read).
    moved = photo.with_name("b.jpg")
    photo.rename(moved)
    changes = scan(catalog, catalog.roots())
    assert [(old.id, new.path) for old, new in changes.moved] == [(row.id, str(moved))]
    assert not changes.new and not changes.removed


def test_a_written_record_reads_back_as_the_same_record(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    root = catalog.add_root(str(tmp_path))
    record = FileRecord(root.id, str(tmp_path / "a.jpg"), 10, 20, quick_hash="q",
                        content_hash="c", dev=1, ino=2, ctime_ns=3, width=40, height=30,
                        taken_at="2019-06-21T10:00:00")
    ids = catalog.write_batch("m", [record, FileRecord(root.id, str(tmp_path / "b.jpg"), 1, 2,
                                                       reason="truncated")],
                              [None, None])
    catalog.write_batch("m", [record], [np.ones(4, np.float32)])
    back = catalog.photos_in_root(root.id)
    assert back[record.path] == FileRecord(root.id, record.path, 10, 20, id=ids[0],
                                           quick_hash="q", content_hash="c", dev=1, ino=2,
                                           ctime_ns=3, width=40, height=30,
                                           taken_at="2019-06-21T10:00:00", status="ok")
    assert back[str(tmp_path / "b.jpg")].status == "failed"
    assert catalog.failures() == [(str(tmp_path / "b.jpg"), "truncated")]


def test_a_raw_beside_a_known_jpeg_joins_it_and_is_no_photo_of_its_own(tmp_path: Path) -> None:
    folder = tmp_path / "DCIM"
    folder.mkdir()
    jpeg = folder / "IMG_0001.JPG"
    jpeg.write_bytes(b"jpeg")
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    root = catalog.add_root(str(folder))
    st = jpeg.stat()
    catalog.write_batch("m", [FileRecord(root.id, str(jpeg), st.st_size, st.st_mtime_ns,
                                         dev=st.st_dev, ino=st.st_ino,
                                         ctime_ns=st.st_ctime_ns)],
                        [np.ones(4, np.float32)])
    (folder / "IMG_0001.CR2").write_bytes(b"raw")  # the camera shot RAW+JPEG
    (folder / "IMG_0002.nef").write_bytes(b"raw")  # a RAW alone is a photo
    changes = scan(catalog, catalog.roots())
    assert [Path(f.path).name for f in changes.new] == ["IMG_0002.nef"]
    assert changes.unchanged == 1 and not changes.changed
    catalog.refresh_identity(changes.refreshed)
    row = catalog.photo_by_path(str(jpeg))
    assert row is not None and row.siblings == (str(folder / "IMG_0001.CR2"),)
    info = catalog.photo_info([row.id])[row.id]
    assert info.siblings == (str(folder / "IMG_0001.CR2"),)


def test_an_older_catalog_dates_its_undated_photos_by_file_time(tmp_path: Path) -> None:
    step = next(i for i, s in enumerate(catalog_module._MIGRATIONS) if "taken_source" in s)
    db = _old_catalog(tmp_path / "catalog.sqlite3", step)
    db.execute("INSERT INTO roots(path, added_at) VALUES ('/p', 0)")
    mtime_ns = 1_500_000_000 * 10**9
    for name, taken in (("exif.jpg", "2019-06-21T10:11:12"), ("plain.png", None)):
        db.execute("INSERT INTO photos(root_id, path, size, mtime_ns, quick_hash, status,"
                   " indexed_at, taken_at) VALUES (1, ?, 1, ?, '', 'ok', 0, ?)",
                   (f"/p/{name}", mtime_ns, taken))
    db.close()
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    rows = catalog.photos_in_root(1)
    assert (rows["/p/exif.jpg"].taken_at, rows["/p/exif.jpg"].taken_source) == (
        "2019-06-21T10:11:12", None)  # from EXIF, which tag was not recorded then
    assert (rows["/p/plain.png"].taken_at, rows["/p/plain.png"].taken_source) == (
        mtime_date(mtime_ns), "mtime")
