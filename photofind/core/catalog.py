"""The catalog: SQLite, the source of truth for roots, photos and embeddings.

One writer connection per library (the indexer's thread); readers open their
own connections (WAL lets them read while the writer writes). The schema
version lives in ``PRAGMA user_version``. Embeddings are stored as float16
blobs with the model id that made them; ``seq`` grows with every write, so
the HNSW cache can catch up with whatever was stored after it was saved.
Photo ids are AUTOINCREMENT: an id is never reused, so it is a safe HNSW label.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from photofind.core.errors import PhotofindError
from photofind.core.filters import kind_of
from photofind.core.records import FileRecord, mtime_date

_SCHEMA = """
CREATE TABLE roots(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL DEFAULT 'online',
    added_at REAL NOT NULL
);
CREATE TABLE photos(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    root_id INTEGER NOT NULL REFERENCES roots(id) ON DELETE CASCADE,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    phash TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    taken_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    reason TEXT,
    indexed_at REAL NOT NULL
);
CREATE INDEX photos_root ON photos(root_id);
CREATE INDEX photos_size_hash ON photos(size, phash);
CREATE TABLE embeddings(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vec BLOB NOT NULL,
    UNIQUE(photo_id, model)
);
CREATE TABLE attempts(
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    in_flight INTEGER NOT NULL,
    deaths INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE index_manifest(
    model TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    dim INTEGER NOT NULL,
    max_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    saved_at REAL NOT NULL
);
"""

# Schema steps, oldest first: step i takes a catalog from version i to i + 1.
# Append new steps at the end (never edit a released one); a catalog whose
# version is above len(_MIGRATIONS) was written by a newer photofind.
_MIGRATIONS: list[str] = [
    _SCHEMA,
    # Where each root and photo lived (device ids), the file's identity beyond
    # size and mtime (inode, ctime) and a hash of its whole content: a missing
    # drive is told from a deleted file, a replaced file from an unchanged one,
    # and a move is confirmed before an embedding is reused.
    "ALTER TABLE roots ADD COLUMN dev INTEGER;"
    "ALTER TABLE roots ADD COLUMN ino INTEGER;"
    "ALTER TABLE photos ADD COLUMN dev INTEGER;"
    "ALTER TABLE photos ADD COLUMN ino INTEGER;"
    "ALTER TABLE photos ADD COLUMN ctime_ns INTEGER;"
    "ALTER TABLE photos ADD COLUMN content_hash TEXT",
]

# Saved searches ("My albums" in the window; core/savedsearches.py).
_MIGRATIONS.append("""
CREATE TABLE saved_searches(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    query_text TEXT NOT NULL,
    image_path TEXT,
    cutoff INTEGER NOT NULL,
    created_at REAL NOT NULL
);
""")

# Smart albums (albums.py): each photo's labels per model, which embeddings
# they cover (a vocabulary digest and the highest embedding seq labelled), and
# the vocabulary's text vectors per model, computed once.
_MIGRATIONS.append("""
CREATE TABLE photo_labels(
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    label TEXT NOT NULL,
    probability REAL NOT NULL,
    PRIMARY KEY(model, label, photo_id)
);
CREATE INDEX photo_labels_photo ON photo_labels(photo_id);
CREATE TABLE label_state(
    model TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    max_seq INTEGER NOT NULL
);
CREATE TABLE concept_vectors(
    model TEXT NOT NULL,
    digest TEXT NOT NULL,
    logit_scale REAL NOT NULL,
    dim INTEGER NOT NULL,
    vecs BLOB NOT NULL,
    PRIMARY KEY(model, digest)
);
""")
# Duplicates (duplicates.py): each photo's perceptual hashes, with the file
# time they were computed for (a changed file is hashed again).
_MIGRATIONS.append("""
CREATE TABLE picture_hashes(
    photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
    mtime_ns INTEGER NOT NULL,
    hashes TEXT NOT NULL
);
""")

# The partial hash (size, first and last 64 KiB) was named "phash", which reads
# as a perceptual hash in a photo app: it is the quick hash.
_MIGRATIONS.append("""
ALTER TABLE photos RENAME COLUMN phash TO quick_hash;
DROP INDEX photos_size_hash;
CREATE INDEX photos_size_quick_hash ON photos(size, quick_hash);
""")

# Where each taken date came from (records.TakenSource); photos without an
# EXIF date are dated by their file time from now on, so old ones are too. And
# the RAW files of a RAW+JPEG shot, listed with its picture (a JSON list).
_MIGRATIONS.append("""
ALTER TABLE photos ADD COLUMN taken_source TEXT;
ALTER TABLE photos ADD COLUMN siblings TEXT;
UPDATE photos SET taken_source = 'mtime', taken_at = strftime('%Y-%m-%dT%H:%M:%S',
    mtime_ns / 1000000000, 'unixepoch', 'localtime') WHERE taken_at IS NULL AND status = 'ok';
""")

# Filters (filters.py): each photo's kind from its file name (RAW, PNG as
# screenshot, else photo; new rows get it on write, filters.kind_of), and the
# indexes a filtered query reads (kind; the taken date, else the file time;
# width and height, scanned without the rows for orientation).
_MIGRATIONS.append("""
ALTER TABLE photos ADD COLUMN kind TEXT NOT NULL DEFAULT 'photo';
UPDATE photos SET kind = CASE
    WHEN lower(path) LIKE '%.dng' OR lower(path) LIKE '%.cr2' OR lower(path) LIKE '%.cr3'
      OR lower(path) LIKE '%.nef' OR lower(path) LIKE '%.arw' OR lower(path) LIKE '%.orf'
      OR lower(path) LIKE '%.rw2' OR lower(path) LIKE '%.raf' OR lower(path) LIKE '%.pef'
      OR lower(path) LIKE '%.srw' THEN 'raw'
    WHEN lower(path) LIKE '%.png' THEN 'screenshot'
    ELSE 'photo' END;
CREATE INDEX photos_kind ON photos(kind);
CREATE INDEX photos_taken ON photos(taken_at, mtime_ns);
CREATE INDEX photos_shape ON photos(width, height);
""")

# Text read in photos (textindex.py): what was read per photo, by which OCR
# engine, with its lines, boxes and confidence (and the parts of words read run
# together, searchable too); an FTS5 index over it kept in
# step by triggers (diacritics folded, prefix queries); a photo written again
# (a changed file: its indexed_at moves) loses its text until it is read again.
# library_options holds per-library switches (reading text on or off).
_MIGRATIONS.append("""
CREATE TABLE photo_text(
    photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
    engine TEXT NOT NULL,
    body TEXT NOT NULL,
    parts TEXT NOT NULL,
    lines TEXT NOT NULL,
    confidence REAL,
    problem TEXT,
    read_at REAL NOT NULL
);
CREATE INDEX photo_text_engine ON photo_text(engine);
CREATE VIRTUAL TABLE photo_text_fts USING fts5(
    body, parts, content='photo_text', content_rowid='photo_id',
    tokenize='unicode61 remove_diacritics 2', prefix='2 3'
);
CREATE TRIGGER photo_text_added AFTER INSERT ON photo_text BEGIN
    INSERT INTO photo_text_fts(rowid, body, parts) VALUES (new.photo_id, new.body, new.parts);
END;
CREATE TRIGGER photo_text_removed AFTER DELETE ON photo_text BEGIN
    INSERT INTO photo_text_fts(photo_text_fts, rowid, body, parts)
        VALUES ('delete', old.photo_id, old.body, old.parts);
END;
CREATE TRIGGER photo_text_changed AFTER UPDATE ON photo_text BEGIN
    INSERT INTO photo_text_fts(photo_text_fts, rowid, body, parts)
        VALUES ('delete', old.photo_id, old.body, old.parts);
    INSERT INTO photo_text_fts(rowid, body, parts) VALUES (new.photo_id, new.body, new.parts);
END;
CREATE TRIGGER photo_text_stale AFTER UPDATE OF indexed_at ON photos
    WHEN new.indexed_at IS NOT old.indexed_at BEGIN
    DELETE FROM photo_text WHERE photo_id = new.id;
END;
CREATE TABLE library_options(
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
""")
SCHEMA_VERSION = len(_MIGRATIONS)

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Root:
    id: int
    path: str
    state: str  # "online" | "offline"
    dev: int | None = None  # the device it was on when last seen online
    ino: int | None = None  # and its folder's inode there (None where unknown)


# A photo row is a FileRecord: its columns, in one order for every read and write.
_COLUMNS = tuple(f.name for f in fields(FileRecord) if f.name != "problem")
_ROW = f"SELECT {', '.join(_COLUMNS)} FROM photos"
_STORED = tuple(c for c in _COLUMNS if c != "id")  # what a write sets, and indexed_at
# Derived on write, beside the record's own columns: indexed_at and kind (filters.kind_of).
_WRITTEN = ", ".join([*_STORED, "indexed_at", "kind"])
_MARKS = ",".join("?" * (len(_STORED) + 2))
_UPSERT = ", ".join(f"{c}=excluded.{c}" for c in [*_STORED, "indexed_at", "kind"])
_ASSIGN = ", ".join(f"{c}=?" for c in [*_STORED, "indexed_at", "kind"])


def _record(row: Sequence[Any]) -> FileRecord:
    """A record from a row selected as ``_ROW``."""
    values = dict(zip(_COLUMNS, row, strict=True))
    values["siblings"] = _paths(values["siblings"])
    return FileRecord(**values)


def _paths(stored: str | None) -> tuple[str, ...]:
    """The siblings column: a JSON list of paths, NULL when there are none."""
    return tuple(json.loads(stored)) if stored else ()


def _siblings(record: FileRecord) -> str | None:
    return json.dumps(list(record.siblings)) if record.siblings else None


def _values(record: FileRecord) -> tuple[object, ...]:
    """A record's values for the ``_STORED`` columns."""
    return tuple(_siblings(record) if c == "siblings" else getattr(record, c)
                 for c in _STORED)


@dataclass(frozen=True)
class PhotoInfo:
    """What a search result shows about a photo."""

    id: int
    path: str
    online: bool
    width: int | None
    height: int | None
    taken_at: str | None
    size: int
    mtime_ns: int = 0
    siblings: tuple[str, ...] = ()  # RAW files of the same shot

    @property
    def date(self) -> str:
        """Capture date, else the file's time (ISO 8601, seconds)."""
        return self.taken_at or mtime_date(self.mtime_ns)


@dataclass(frozen=True)
class Manifest:
    model: str
    generation: int
    sha256: str
    dim: int
    max_seq: int
    count: int


@dataclass(frozen=True)
class EmbeddedPhoto:
    """A photo and its embedding, as an export writes them."""

    path: str
    size: int
    mtime_ns: int
    quick_hash: str
    content_hash: str | None
    taken_at: str | None
    width: int | None
    height: int | None
    vector: Vector


def connect(path: Path) -> sqlite3.Connection:
    """A connection as photofind uses them: explicit transactions, a 30 s wait
    for a busy database, usable from the one thread that owns it at a time."""
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 30000")
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write (``mode=ro``). On read-only media, where
    SQLite cannot make the ``-shm`` file a WAL database needs, the file is
    opened as immutable instead. Raises sqlite3.OperationalError when there
    is no such file. The URI comes from pathlib, so ``#``, ``?`` and ``%`` in a
    folder name stay part of the path."""
    if not path.is_file():
        raise sqlite3.OperationalError(f"unable to open database file {path}")
    uri = path.resolve().as_uri()
    for flags in ("mode=ro", "mode=ro&immutable=1"):
        db = sqlite3.connect(f"{uri}?{flags}", uri=True, timeout=30.0, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout = 30000")
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.DatabaseError as exc:
            db.close()
            if not _cannot_open(exc):
                raise
            error = exc
    raise error


class Catalog:
    """A connection to ``catalog.sqlite3`` (created and migrated on first open;
    ``read_only`` for a library on read-only media)."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = path
        self.db = connect_read_only(path) if read_only else connect(path)
        try:
            version = self.version()
        except sqlite3.DatabaseError:
            self.db.close()
            raise
        if version > SCHEMA_VERSION:
            self.db.close()
            raise PhotofindError(
                f"The catalog {path} was written by a newer photofind (schema {version};"
                f" this one knows up to {SCHEMA_VERSION}): update photofind to use it.")
        self.db.execute("PRAGMA foreign_keys = ON")
        if version < SCHEMA_VERSION:
            if read_only:
                self.db.close()
                raise PhotofindError(
                    f"The catalog {path} is from an older photofind and its folder is"
                    " read-only: open it once where it can be written, to update it.")
            self._migrate()

    def close(self) -> None:
        self.db.close()

    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        self.db.execute("PRAGMA journal_mode = WAL")
        with self.transaction():
            if self.version() >= SCHEMA_VERSION:  # another process got there first
                return
            for step in _MIGRATIONS[self.version():]:
                for statement in _statements(step):
                    self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: committed on success, rolled back on any error."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- roots -----------------------------------------------------------
    def roots(self) -> list[Root]:
        rows = self.db.execute("SELECT id, path, state, dev, ino FROM roots ORDER BY path")
        return [Root(*r) for r in rows]

    def add_root(self, path: str) -> Root:
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO roots(path, added_at) VALUES (?, ?)",
                       (path, time.time()))
        row = self.db.execute("SELECT id, path, state, dev, ino FROM roots WHERE path = ?",
                              (path,)).fetchone()
        return Root(*row)

    def remove_root(self, root_id: int) -> list[int]:
        """Forget a root and its photos; returns the photo ids that went."""
        with self.transaction() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM photos WHERE root_id = ?",
                                            (root_id,))]
            db.execute("DELETE FROM roots WHERE id = ?", (root_id,))
        return ids

    def merge_roots(self, absorbed: Sequence[int], into: int) -> None:
        """Move the photos of nested roots to the root that now contains them."""
        with self.transaction() as db:
            for root_id in absorbed:
                db.execute("UPDATE photos SET root_id = ? WHERE root_id = ?", (into, root_id))
                db.execute("DELETE FROM roots WHERE id = ?", (root_id,))

    def set_root_state(self, root_id: int, state: str,
                       place: tuple[int, int | None] | None = None) -> None:
        """Record a root's state and, when online, where it is: (device, inode)."""
        dev, ino = place or (None, None)
        with self.transaction() as db:
            db.execute("UPDATE roots SET state = ?, dev = COALESCE(?, dev),"
                       " ino = CASE WHEN ? IS NULL THEN ino ELSE ? END WHERE id = ?",
                       (state, dev, dev, ino, root_id))

    # --- photos ----------------------------------------------------------
    def photos_in_root(self, root_id: int, under: str | None = None) -> dict[str, FileRecord]:
        """Photos of a root, or only those below the folder ``under``."""
        query = f"{_ROW} WHERE root_id = ?"
        args: tuple[object, ...] = (root_id,)
        if under is not None:
            prefix = under.rstrip("/\\") + os.sep
            # Every path that starts with prefix sorts between prefix and its successor;
            # the range is searched in the path index (``+root_id`` keeps SQLite from
            # walking every photo of the root instead).
            query = f"{_ROW} WHERE +root_id = ? AND path >= ? AND path < ?"
            args += (prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1))
        records = (_record(r) for r in self.db.execute(query, args))
        return {record.path: record for record in records}

    def photo_count(self, root_id: int) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM photos WHERE root_id = ?",
                              (root_id,)).fetchone()
        return int(row[0])

    def sample_photos(self, root_id: int, limit: int) -> list[FileRecord]:
        """A few readable photos of a root (to tell whether its drive is there)."""
        rows = self.db.execute(f"{_ROW} WHERE root_id = ? AND status = 'ok' LIMIT ?",
                               (root_id, limit))
        return [_record(r) for r in rows]

    def photo_by_path(self, path: str) -> FileRecord | None:
        row = self.db.execute(f"{_ROW} WHERE path = ?", (path,)).fetchone()
        return _record(row) if row else None

    def write_batch(self, model: str, photos: Sequence[FileRecord],
                    vectors: Sequence[Vector | None]) -> list[int]:
        """Insert or update decoded photos and their embeddings in one transaction
        (a photo is "ok" with a vector, "failed" without one).

        A record with an id replaces that photo; any other path already in the
        catalog is updated in place (whichever root or run recorded it), so no
        file name can make a write fail.
        """
        ids: list[int] = []
        now = time.time()
        with self.transaction() as db:
            for photo, vec in zip(photos, vectors, strict=True):
                status = "ok" if vec is not None else "failed"
                values = (*_values(replace(photo, status=status)), now, kind_of(photo.path))
                if not photo.id:
                    row = db.execute(
                        f"INSERT INTO photos({_WRITTEN}) VALUES ({_MARKS})"
                        f" ON CONFLICT(path) DO UPDATE SET {_UPSERT} RETURNING id",
                        values).fetchone()
                    photo_id = int(row[0])
                else:
                    photo_id = photo.id
                    db.execute("DELETE FROM photos WHERE path = ? AND id != ?",
                               (photo.path, photo_id))
                    db.execute(f"UPDATE photos SET {_ASSIGN} WHERE id=?", (*values, photo_id))
                db.execute("DELETE FROM embeddings WHERE photo_id = ?", (photo_id,))
                if vec is not None:
                    db.execute(
                        "INSERT INTO embeddings(photo_id, model, dim, vec) VALUES (?,?,?,?)",
                        (photo_id, model, len(vec), vec.astype(np.float16).tobytes()))
                ids.append(photo_id)
        return ids

    def add_embeddings(self, model: str, ids: Sequence[int], vectors: Sequence[Vector]) -> None:
        """Store embeddings for photos already in the catalog (a model switch)."""
        with self.transaction() as db:
            for photo_id, vec in zip(ids, vectors, strict=True):
                db.execute("DELETE FROM embeddings WHERE photo_id = ? AND model = ?",
                           (photo_id, model))
                db.execute(
                    "INSERT INTO embeddings(photo_id, model, dim, vec) VALUES (?,?,?,?)",
                    (photo_id, model, len(vec), vec.astype(np.float16).tobytes()))

    def move_photos(self, moves: Iterable[FileRecord]) -> None:
        """Apply renames: each photo (the record's id) keeps its id and embedding
        at its new place."""
        with self.transaction() as db:
            for m in moves:
                db.execute("DELETE FROM photos WHERE path = ? AND id != ?", (m.path, m.id))
                db.execute("UPDATE photos SET root_id=?, path=?, mtime_ns=?, dev=?, ino=?,"
                           " ctime_ns=?, content_hash=?, siblings=?, kind=? WHERE id=?",
                           (m.root_id, m.path, m.mtime_ns, m.dev, m.ino, m.ctime_ns,
                            m.content_hash, _siblings(m), kind_of(m.path), m.id))

    def refresh_identity(self, records: Iterable[FileRecord]) -> None:
        """Record the device, inode, ctime and RAW siblings of files found
        unchanged (by id)."""
        with self.transaction() as db:
            db.executemany("UPDATE photos SET dev=?, ino=?, ctime_ns=?, siblings=? WHERE id=?",
                           [(r.dev, r.ino, r.ctime_ns, _siblings(r), r.id) for r in records])

    def delete_photos(self, ids: Sequence[int]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM photos WHERE id = ?", [(i,) for i in ids])

    def ok_photos_without_embedding(self, model: str) -> list[FileRecord]:
        rows = self.db.execute(f"{_ROW} p WHERE {_WITHOUT_VECTOR}", (model,))
        return [_record(r) for r in rows]

    def any_ok_photo_without_embedding(self, model: str) -> bool:
        """Whether a readable photo on a connected drive lacks a vector from
        ``model`` (stops at the first one)."""
        row = self.db.execute(
            f"SELECT EXISTS (SELECT 1 FROM photos p WHERE {_WITHOUT_VECTOR})", (model,)).fetchone()
        return bool(row[0])

    def ok_photos_without_embedding_among(self, model: str, ids: Iterable[int]
                                          ) -> list[FileRecord]:
        """Like ``ok_photos_without_embedding``, but only among ``ids`` (a change
        set's photos): each is looked up by its key, so the cost follows the
        change set, not the library."""
        out: list[FileRecord] = []
        for chunk in _chunks(sorted(set(ids)), 500):
            rows = self.db.execute(
                f"{_ROW} p WHERE p.id IN ({','.join('?' * len(chunk))}) AND {_WITHOUT_VECTOR}",
                (*chunk, model))
            out += [_record(r) for r in rows]
        return out

    def photo_paths(self, ids: Iterable[int]) -> list[tuple[int, str, int]]:
        """(id, path, root id) of the readable photos among ``ids``."""
        out: list[tuple[int, str, int]] = []
        for chunk in _chunks(sorted(set(ids)), 500):
            out += self.db.execute(
                f"SELECT id, path, root_id FROM photos WHERE id IN ({','.join('?' * len(chunk))})"
                " AND status = 'ok'", chunk).fetchall()
        return out

    def photo_info(self, ids: Sequence[int]) -> dict[int, PhotoInfo]:
        out: dict[int, PhotoInfo] = {}
        for chunk in _chunks(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"{_INFO} WHERE p.id IN ({marks}) AND p.status = 'ok'", chunk)
            for r in rows:
                out[r[0]] = _info(r)
        return out

    def newest_first(self, where: tuple[str, Sequence[object]] | None = None,
                     limit: int = -1) -> list[PhotoInfo]:
        """Every readable photo, newest first (capture date, else file time); or
        the first ``limit`` of those that also meet ``where`` (SQL on ``p``)."""
        condition, args = where or ("1", ())
        rows = self.db.execute(
            f"{_INFO} WHERE p.status = 'ok' AND ({condition}) {_NEWEST_FIRST} LIMIT ?",
            (*args, limit))
        return [_info(r) for r in rows]

    def newest_first_ids(self) -> list[int]:
        """The ids of ``newest_first``, in its order: 8 bytes a photo where the
        listing's rows take hundreds (a window reads those a page at a time)."""
        return [r[0] for r in self.db.execute(
            f"SELECT p.id FROM photos p WHERE p.status = 'ok' {_NEWEST_FIRST}")]

    def failures(self) -> list[tuple[str, str]]:
        rows = self.db.execute(
            "SELECT path, reason FROM photos WHERE status = 'failed' ORDER BY path")
        return [(r[0], r[1] or "unreadable") for r in rows]

    def forget_failures(self) -> int:
        """Drop failed files (and crash notes) so the next index tries them again."""
        with self.transaction() as db:
            count = db.execute("DELETE FROM photos WHERE status = 'failed'").rowcount
            db.execute("DELETE FROM attempts")
        return int(count)

    def counts_by_root(self) -> dict[int, tuple[int, int]]:
        """root id -> (photos indexed, files failed)."""
        rows = self.db.execute(
            "SELECT root_id, SUM(status = 'ok'), SUM(status = 'failed')"
            " FROM photos GROUP BY root_id")
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}

    # --- embeddings ------------------------------------------------------
    def embedding(self, photo_id: int, model: str) -> Vector | None:
        row = self.db.execute(
            "SELECT vec FROM embeddings WHERE photo_id = ? AND model = ?",
            (photo_id, model)).fetchone()
        return _decode_vec(row[0]) if row else None

    def embeddings(self, photo_ids: Sequence[int], model: str) -> dict[int, Vector]:
        """The stored vectors of these photos from ``model`` (those that have one)."""
        out: dict[int, Vector] = {}
        for chunk in _chunks(list(photo_ids), 500):
            rows = self.db.execute(
                f"SELECT photo_id, vec FROM embeddings WHERE model = ? AND photo_id IN"
                f" ({','.join('?' * len(chunk))})", (model, *chunk))
            for pid, blob in rows:
                out[int(pid)] = _decode_vec(blob)
        return out

    def embeddings_after(self, model: str, seq: int, chunk: int = 20000
                         ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], int]]:
        """Yield (photo ids, vectors, highest seq) in chunks for embeddings newer than seq."""
        while True:
            rows = self.db.execute(
                "SELECT seq, photo_id, vec FROM embeddings WHERE model = ? AND seq > ?"
                " ORDER BY seq LIMIT ?", (model, seq, chunk)).fetchall()
            if not rows:
                return
            seq = rows[-1][0]
            ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.stack([_decode_vec(r[2]) for r in rows])
            yield ids, vecs, seq

    def embedding_ids(self, model: str) -> set[int]:
        return {r[0] for r in self.db.execute(
            "SELECT photo_id FROM embeddings WHERE model = ?", (model,))}

    def embedding_dim(self, model: str) -> int | None:
        row = self.db.execute("SELECT dim FROM embeddings WHERE model = ? LIMIT 1",
                              (model,)).fetchone()
        return int(row[0]) if row else None

    def embedding_count(self, model: str) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM embeddings WHERE model = ?",
                              (model,)).fetchone()
        return int(row[0])

    def embedded_photos(self, model: str) -> Iterator[EmbeddedPhoto]:
        """Readable photos with an embedding of ``model``, by path (an export)."""
        rows = self.db.execute(
            "SELECT p.path, p.size, p.mtime_ns, p.quick_hash, p.content_hash, p.taken_at, p.width,"
            " p.height, e.vec FROM photos p JOIN embeddings e ON e.photo_id = p.id"
            " WHERE e.model = ? AND p.status = 'ok' ORDER BY p.path", (model,))
        for path, size, mtime_ns, quick, whole, taken, width, height, vec in rows:
            yield EmbeddedPhoto(path, size, mtime_ns, quick, whole, taken, width, height,
                                _decode_vec(vec))

    # --- index manifest --------------------------------------------------
    def manifest(self, model: str) -> Manifest | None:
        row = self.db.execute(
            "SELECT model, generation, sha256, dim, max_seq, count FROM index_manifest"
            " WHERE model = ?", (model,)).fetchone()
        return Manifest(*row) if row else None

    def newest_photo_id(self) -> int:
        """The highest photo id so far (0 in an empty catalog): ids only grow."""
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'photos'").fetchone()
        return int(row[0]) if row else 0

    def max_generation(self) -> int:
        row = self.db.execute("SELECT MAX(generation) FROM index_manifest").fetchone()
        return int(row[0] or 0)

    def commit_manifest(self, m: Manifest) -> None:
        """The one commit point of an index save."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO index_manifest(model, generation, sha256, dim, max_seq,"
                " count, saved_at) VALUES (?,?,?,?,?,?,?)",
                (m.model, m.generation, m.sha256, m.dim, m.max_seq, m.count, time.time()))

    def generations_in_use(self) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT generation FROM index_manifest")}


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of a migration step (a trigger's body keeps its ``;``)."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.replace(";", "").strip():
                yield pending
            pending = ""


def database_problem(path: Path, full: bool = False) -> str | None:
    """None if SQLite's quick_check (integrity_check when full) passes on the
    file, else what is damaged. A file SQLite cannot open or read for another
    reason (missing, a folder, no permission, an I/O error) is not called
    damaged: that raises PhotofindError, and nothing may be moved aside."""
    try:
        db = connect_read_only(path)
        try:
            pragma = "integrity_check" if full else "quick_check"
            rows = [r[0] for r in db.execute(f"PRAGMA {pragma}")]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        if _damaged(exc):
            return str(exc)
        raise PhotofindError(f"Cannot open {path}: {exc}.") from exc
    return None if rows == ["ok"] else "; ".join(rows[:3])


def salvage_roots(path: Path) -> list[str]:
    """The folders of a damaged catalog, as far as they can still be read."""
    try:
        db = connect_read_only(path)
        try:
            return [r[0] for r in db.execute("SELECT path FROM roots")]
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return []


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """SQLite opened the file and found it is no (longer a) database."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _cannot_open(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in (sqlite3.SQLITE_CANTOPEN,
                                                   sqlite3.SQLITE_READONLY)


# A readable photo (``p``) on a connected drive without a vector from the model (?).
_WITHOUT_VECTOR = ("p.status = 'ok' AND EXISTS (SELECT 1 FROM roots r WHERE r.id = p.root_id"
                   " AND r.state = 'online') AND NOT EXISTS (SELECT 1 FROM embeddings e"
                   " WHERE e.photo_id = p.id AND e.model = ?)")
_NEWEST_FIRST = ("ORDER BY COALESCE(p.taken_at, strftime('%Y-%m-%dT%H:%M:%S',"
                 " p.mtime_ns / 1000000000, 'unixepoch', 'localtime')) DESC, p.id DESC")
_INFO = ("SELECT p.id, p.path, r.state = 'online', p.width, p.height, p.taken_at, p.size,"
         " p.mtime_ns, p.siblings FROM photos p JOIN roots r ON r.id = p.root_id")


def _info(r: Sequence[Any]) -> PhotoInfo:
    """A PhotoInfo from a row selected as ``_INFO``."""
    return PhotoInfo(r[0], r[1], bool(r[2]), r[3], r[4], r[5], r[6], r[7], _paths(r[8]))


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for lo in range(0, len(items), size):
        yield items[lo:lo + size]


def _decode_vec(blob: bytes) -> Vector:
    """float16 storage moves a unit vector's norm by ~1e-4; restore it."""
    vec = np.frombuffer(blob, dtype=np.float16).astype(np.float32)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec
