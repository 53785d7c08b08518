"""The files of a library folder, named in one place.

``catalog.sqlite3`` (the source of truth), ``vectors.<generation>.hnsw`` (the
vector cache), ``thumbs.sqlite3`` (the thumbnail cache), ``photofind.lock`` (the pid of
the running writer) and ``photofind.clean`` (left by a writer that closed
cleanly: its databases' sizes and times, so the next writer can skip their
integrity check). A SQLite file comes with its sidecars
(``-wal``, ``-shm``, ``-journal``), which move with it. A damaged database is
never deleted: it is moved aside under a name that no other aside copy has.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CATALOG = "catalog.sqlite3"
THUMBS = "thumbs.sqlite3"
LOCK = "photofind.lock"
CLEAN = "photofind.clean"
_SIDECARS = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class LibraryFiles:
    """Where each file of the library folder ``dir`` lives."""

    dir: Path

    @property
    def catalog(self) -> Path:
        return self.dir / CATALOG

    @property
    def thumbs(self) -> Path:
        return self.dir / THUMBS

    @property
    def lock(self) -> Path:
        return self.dir / LOCK

    @property
    def clean(self) -> Path:
        """Written by a writer that closed cleanly: what its databases looked like."""
        return self.dir / CLEAN

    def index(self, generation: int) -> Path:
        return self.dir / f"vectors.{generation}.hnsw"

    def index_files(self) -> Iterator[tuple[int, Path]]:
        """(generation, path) of every index file there, finished or not (``.tmp``)."""
        for path in self.dir.glob("vectors.*.hnsw*"):
            try:
                yield int(path.name.split(".")[1]), path
            except (IndexError, ValueError):
                continue

    def writable(self) -> bool:
        """Whether this process may create files in the folder (a read-only mount,
        or a folder the user may not write, is not; root's override counts)."""
        return os.access(self.dir, os.W_OK | os.X_OK)


def fingerprint(path: Path) -> list[list[int]]:
    """(size, mtime_ns) of a SQLite file and each of its sidecars ([] when absent):
    any write to the database, or a file put in its place, changes it."""
    out: list[list[int]] = []
    for suffix in ("", "-wal", "-journal"):  # not -shm: readers write to it
        part = Path(str(path) + suffix)
        try:
            st = part.stat()
        except OSError:
            out.append([])
        else:
            out.append([st.st_size, st.st_mtime_ns])
    return out


def sidecars(path: Path) -> list[Path]:
    """A SQLite file and the files SQLite keeps beside it."""
    return [Path(str(path) + suffix) for suffix in _SIDECARS]


def move_aside(path: Path) -> Path:
    """Move a damaged database and its sidecars to ``<stem>.damaged-<time>[-n]<suffix>``
    (a name no earlier aside copy has) and return the new path. Callers hold the
    writer lock, so no other process moves files aside meanwhile."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in itertools.count(1):
        tag = stamp if n == 1 else f"{stamp}-{n}"
        aside = path.with_name(f"{path.stem}.damaged-{tag}{path.suffix}")
        if not any(p.exists() for p in sidecars(aside)):
            break
    for part, target in zip(sidecars(path), sidecars(aside), strict=True):
        if part.exists():
            os.replace(part, target)
    return aside
