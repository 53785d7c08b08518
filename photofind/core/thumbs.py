"""The thumbnail store: small JPEGs in thumbs.sqlite3, a disposable cache, and
the making of the ones it lacks.

Thumbnails are made during indexing from the same decode as the embedding,
so the GUI never decodes a full photo to paint its grid; what a crash or a
full disk lost is made again from the files (``make_thumbnails``). A damaged
store is moved aside and started anew by the library (see library.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from photofind.core.catalog import Catalog, connect, connect_read_only
from photofind.core.libfiles import LibraryFiles

_TABLE = "CREATE TABLE IF NOT EXISTS thumbs(photo_id INTEGER PRIMARY KEY, jpeg BLOB NOT NULL)"


class ThumbStore:
    def __init__(self, path: Path, read_only: bool = False) -> None:
        if read_only:
            # A read-only library without a store shows placeholders.
            self.db = connect_read_only(path) if path.is_file() else connect(Path(":memory:"))
        else:
            self.db = connect(path)
            self.db.execute("PRAGMA journal_mode = WAL")
        if not read_only or not path.is_file():
            self.db.execute(_TABLE)

    @classmethod
    def of_library(cls, library: Path) -> ThumbStore:
        """The store of a library folder, read-only where the folder is."""
        files = LibraryFiles(library)
        return cls(files.thumbs, read_only=not files.writable())

    def put_many(self, items: Iterable[tuple[int, bytes]]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO thumbs(photo_id, jpeg) VALUES (?, ?)",
                                list(items))

    def get(self, photo_id: int) -> bytes | None:
        try:
            row = self.db.execute("SELECT jpeg FROM thumbs WHERE photo_id = ?",
                                  (photo_id,)).fetchone()
        except sqlite3.DatabaseError:  # damaged: a placeholder until a writer replaces it
            return None
        return bytes(row[0]) if row else None

    def photo_ids(self) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT photo_id FROM thumbs")}

    def having(self, ids: Sequence[int]) -> set[int]:
        """Which of ``ids`` have a thumbnail."""
        have: set[int] = set()
        for lo in range(0, len(ids), 500):
            chunk = ids[lo:lo + 500]
            have.update(r[0] for r in self.db.execute(
                f"SELECT photo_id FROM thumbs WHERE photo_id IN ({','.join('?' * len(chunk))})",
                chunk))
        return have

    def delete(self, ids: Sequence[int]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("DELETE FROM thumbs WHERE photo_id = ?", [(i,) for i in ids])

    def close(self) -> None:
        self.db.close()


def missing_thumbnails(catalog: Catalog, store: ThumbStore, among: Iterable[int] | None = None
                       ) -> list[tuple[int, str, int]]:
    """(photo id, path, root id) of indexed photos that have no thumbnail: in the
    whole library, or only among the photo ids ``among`` (looked up by key)."""
    if among is not None:
        known = catalog.photo_paths(among)
        have = store.having([pid for pid, _, _ in known])
        return [row for row in known if row[0] not in have]
    have = store.photo_ids()
    rows = catalog.db.execute("SELECT id, path, root_id FROM photos WHERE status = 'ok'")
    return [(pid, path, root) for pid, path, root in rows if pid not in have]


def make_thumbnails(store: ThumbStore, photos: list[tuple[int, str]]) -> int:
    """Decode (in isolated workers) and store thumbnails; returns how many."""
    from photofind.core.decodepool import DecodePool
    from photofind.core.imaging import Decoded, Preprocess

    made = 0
    with DecodePool(Preprocess(64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))) as pool:
        for (photo_id, _), result in pool.run(photos, lambda item: item[1]):
            if isinstance(result, Decoded):
                store.put_many([(photo_id, result.thumbnail)])
                made += 1
    return made
