"""Which files were being decoded when photofind last died.

Before a file goes to a decoder it is noted here (committed), and the note is
dropped when the decoder answers. A note still marked in flight at the next
start means the whole app died while that file was being decoded: it counts
a death, and the file is retried alone, before anything else. After two such
deaths the file is quarantined (failed, ``crashed decoder``) instead of taking
the app down again; a changed file (new size or mtime) gets a new chance.

A decoder that outlives a killed photofind finishes its file and then clears
that file's note itself (decodepool.py): an app killed from outside (a
force-quit, a crash elsewhere) therefore leaves no suspect behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from photofind.core.catalog import connect

QUARANTINE_AFTER = 2


@dataclass(frozen=True)
class Suspect:
    path: str
    size: int
    mtime_ns: int
    deaths: int


class AttemptLog:
    """Its own connection to the catalog, used by one thread at a time."""

    def __init__(self, catalog_path: Path) -> None:
        self.db = connect(catalog_path)

    def close(self) -> None:
        self.db.close()

    def recover(self) -> dict[str, Suspect]:
        """Count a death for every file left in flight; return all suspects."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "UPDATE attempts SET deaths = deaths + 1, in_flight = 0 WHERE in_flight = 1")
        return {r[0]: Suspect(*r) for r in self.db.execute(
            "SELECT path, size, mtime_ns, deaths FROM attempts")}

    def start(self, path: str, size: int, mtime_ns: int) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO attempts(path, size, mtime_ns, in_flight) VALUES (?, ?, ?, 1)"
                " ON CONFLICT(path) DO UPDATE SET in_flight = 1,"
                " deaths = CASE WHEN size = excluded.size AND mtime_ns = excluded.mtime_ns"
                " THEN deaths ELSE 0 END, size = excluded.size, mtime_ns = excluded.mtime_ns",
                (path, size, mtime_ns))

    def finish(self, path: str) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM attempts WHERE path = ?", (path,))
