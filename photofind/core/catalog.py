"""The catalog: SQLite, the source of truth for roots, photos and embeddings.

One writer connection per library (the indexer's thread); readers open their
own connections (WAL lets them read while the writer writes). The schema
version lives in ``PRAGMA user_version``. Embeddings are stored as float16
blobs with the model id that made them; ``seq`` grows with every write, so
the HNSW cache can catch up with whatever was stored after it was saved.
Photo ids are AUTOINCREMENT: an id is never reused, so it is a safe HNSW label.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

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
_MIGRATIONS: list[str] = [_SCHEMA]

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
SCHEMA_VERSION = len(_MIGRATIONS)

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Root:
    id: int
    path: str
    state: str  # "online" | "offline"


@dataclass(frozen=True)
class PhotoRow:
    id: int
    root_id: int
    path: str
    size: int
    mtime_ns: int
    phash: str
    status: str
    reason: str | None = None


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

    @property
    def date(self) -> str:
        """Capture date, else the file's time (ISO 8601, seconds)."""
        if self.taken_at:
            return self.taken_at
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.mtime_ns / 1e9))


@dataclass(frozen=True)
class Manifest:
    model: str
    generation: int
    sha256: str
    dim: int
    max_seq: int
    count: int


@dataclass(frozen=True)
class NewPhoto:
    """A decoded file ready to be written (``vec`` None when it failed)."""

    root_id: int
    path: str
    size: int
    mtime_ns: int
    phash: str
    width: int | None = None
    height: int | None = None
    taken_at: str | None = None
    reason: str | None = None
    photo_id: int | None = None  # set when the file replaces a known photo


def connect(path: Path) -> sqlite3.Connection:
    """A connection as photofind uses them: explicit transactions, a 30 s wait
    for a busy database, usable from the one thread that owns it at a time."""
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 30000")
    db.execute("PRAGMA synchronous = NORMAL")
    return db


class Catalog:
    """A connection to ``catalog.sqlite3`` (created and migrated on first open)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = connect(path)
        self.db.execute("PRAGMA foreign_keys = ON")
        if self.version() < SCHEMA_VERSION:
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
                for statement in step.split(";"):
                    if statement.strip():
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
        rows = self.db.execute("SELECT id, path, state FROM roots ORDER BY path")
        return [Root(*r) for r in rows]

    def add_root(self, path: str) -> Root:
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO roots(path, added_at) VALUES (?, ?)",
                       (path, time.time()))
        row = self.db.execute("SELECT id, path, state FROM roots WHERE path = ?",
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

    def set_root_state(self, root_id: int, state: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE roots SET state = ? WHERE id = ?", (state, root_id))

    # --- photos ----------------------------------------------------------
    def photos_in_root(self, root_id: int, under: str | None = None) -> dict[str, PhotoRow]:
        """Photos of a root, or only those below the folder ``under``."""
        query = ("SELECT id, root_id, path, size, mtime_ns, phash, status, reason"
                 " FROM photos WHERE root_id = ?")
        args: tuple[object, ...] = (root_id,)
        if under is not None:
            prefix = under.rstrip("/\\") + os.sep
            # Every path that starts with prefix sorts between prefix and its successor.
            query += " AND path >= ? AND path < ?"
            args += (prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1))
        return {r[2]: PhotoRow(*r) for r in self.db.execute(query, args)}

    def photo_by_path(self, path: str) -> PhotoRow | None:
        row = self.db.execute(
            "SELECT id, root_id, path, size, mtime_ns, phash, status, reason"
            " FROM photos WHERE path = ?", (path,)).fetchone()
        return PhotoRow(*row) if row else None

    def write_batch(self, model: str, photos: Sequence[NewPhoto],
                    vectors: Sequence[Vector | None]) -> list[int]:
        """Insert or update decoded photos and their embeddings in one transaction."""
        ids: list[int] = []
        now = time.time()
        with self.transaction() as db:
            for photo, vec in zip(photos, vectors, strict=True):
                status = "ok" if vec is not None else "failed"
                values = (photo.root_id, photo.path, photo.size, photo.mtime_ns, photo.phash,
                          photo.width, photo.height, photo.taken_at, status, photo.reason, now)
                if photo.photo_id is None:
                    cur = db.execute(
                        "INSERT INTO photos(root_id, path, size, mtime_ns, phash, width, height,"
                        " taken_at, status, reason, indexed_at)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?)", values)
                    photo_id = int(cur.lastrowid or 0)
                else:
                    photo_id = photo.photo_id
                    db.execute(
                        "UPDATE photos SET root_id=?, path=?, size=?, mtime_ns=?, phash=?,"
                        " width=?, height=?, taken_at=?, status=?, reason=?, indexed_at=?"
                        " WHERE id=?", (*values, photo_id))
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

    def move_photos(self, moves: Iterable[tuple[int, int, str, int]]) -> None:
        """Apply renames: (photo id, new root id, new path, new mtime_ns)."""
        with self.transaction() as db:
            for photo_id, root_id, path, mtime_ns in moves:
                db.execute("UPDATE photos SET root_id=?, path=?, mtime_ns=? WHERE id=?",
                           (root_id, path, mtime_ns, photo_id))

    def delete_photos(self, ids: Sequence[int]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM photos WHERE id = ?", [(i,) for i in ids])

    def ok_photos_without_embedding(self, model: str) -> list[PhotoRow]:
        rows = self.db.execute(
            "SELECT p.id, p.root_id, p.path, p.size, p.mtime_ns, p.phash, p.status, p.reason"
            " FROM photos p JOIN roots r ON r.id = p.root_id"
            " WHERE p.status = 'ok' AND r.state = 'online' AND NOT EXISTS"
            " (SELECT 1 FROM embeddings e WHERE e.photo_id = p.id AND e.model = ?)",
            (model,))
        return [PhotoRow(*r) for r in rows]

    def photo_info(self, ids: Sequence[int]) -> dict[int, PhotoInfo]:
        out: dict[int, PhotoInfo] = {}
        for chunk_start in range(0, len(ids), 500):
            chunk = list(ids[chunk_start:chunk_start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"{_INFO} WHERE p.id IN ({marks}) AND p.status = 'ok'", chunk)
            for r in rows:
                out[r[0]] = PhotoInfo(r[0], r[1], bool(r[2]), *r[3:])
        return out

    def newest_first(self) -> list[PhotoInfo]:
        """Every readable photo, newest first (capture date, else file time)."""
        rows = self.db.execute(
            f"{_INFO} WHERE p.status = 'ok' ORDER BY COALESCE(p.taken_at,"
            " strftime('%Y-%m-%dT%H:%M:%S', p.mtime_ns / 1e9, 'unixepoch', 'localtime'))"
            " DESC, p.id DESC")
        return [PhotoInfo(r[0], r[1], bool(r[2]), *r[3:]) for r in rows]

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

    # --- index manifest --------------------------------------------------
    def manifest(self, model: str) -> Manifest | None:
        row = self.db.execute(
            "SELECT model, generation, sha256, dim, max_seq, count FROM index_manifest"
            " WHERE model = ?", (model,)).fetchone()
        return Manifest(*row) if row else None

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


def catalog_problem(path: Path, full: bool = False) -> str | None:
    """None if SQLite's quick_check (integrity_check when full) passes, else why not."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
        try:
            pragma = "integrity_check" if full else "quick_check"
            rows = [r[0] for r in db.execute(f"PRAGMA {pragma}")]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if rows == ["ok"] else "; ".join(rows[:3])


def salvage_roots(path: Path) -> list[str]:
    """The folders of a damaged catalog, as far as they can still be read."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return [r[0] for r in db.execute("SELECT path FROM roots")]
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return []


_INFO = ("SELECT p.id, p.path, r.state = 'online', p.width, p.height, p.taken_at, p.size,"
         " p.mtime_ns FROM photos p JOIN roots r ON r.id = p.root_id")


def _decode_vec(blob: bytes) -> Vector:
    """float16 storage moves a unit vector's norm by ~1e-4; restore it."""
    vec = np.frombuffer(blob, dtype=np.float16).astype(np.float32)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec
