"""The thumbnail store: 256-px JPEGs in thumbs.sqlite3, a disposable cache.

Thumbnails are made during indexing from the same decode as the embedding,
so the GUI never decodes a full photo to paint its grid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from photofind.core.catalog import connect


class ThumbStore:
    def __init__(self, path: Path) -> None:
        self.db = connect(path)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS thumbs(photo_id INTEGER PRIMARY KEY, jpeg BLOB NOT NULL)")

    def put_many(self, items: Iterable[tuple[int, bytes]]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO thumbs(photo_id, jpeg) VALUES (?, ?)",
                                list(items))

    def get(self, photo_id: int) -> bytes | None:
        row = self.db.execute("SELECT jpeg FROM thumbs WHERE photo_id = ?",
                              (photo_id,)).fetchone()
        return bytes(row[0]) if row else None

    def delete(self, ids: Sequence[int]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("DELETE FROM thumbs WHERE photo_id = ?", [(i,) for i in ids])

    def close(self) -> None:
        self.db.close()
