"""A disk that fills up under a photofind process (put this folder first on
the process's PYTHONPATH; test_faults.py does).

``PHOTOFIND_TEST_FULL=STORE:N`` makes the disk holding the library full at the
first write to STORE (``catalog``, ``thumbs`` or ``index``) once the catalog
holds N embeddings. From then on every write to a library file fails as it
would on a full disk: SQLite statements with "database or disk is full", an
fsync with ENOSPC. Reads keep working.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from typing import Any

_SPEC = os.environ.get("PHOTOFIND_TEST_FULL", "")
_LIBRARY = os.path.realpath(os.environ.get("PHOTOFIND_LIBRARY", "")) + os.sep
_STORES = {"catalog": "catalog.sqlite3", "thumbs": "thumbs.sqlite3", "index": ".hnsw.tmp"}
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")
_connect = sqlite3.connect
_fsync = os.fsync
_full = False


def _stored() -> int:
    db = _connect(f"file:{_LIBRARY}catalog.sqlite3?mode=ro", uri=True, timeout=30)
    try:
        return int(db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
    except sqlite3.OperationalError:  # a new catalog, still being created
        return 0
    finally:
        db.close()


def _write(path: str) -> None:
    """A write to a library file is about to happen: fail it if the disk is full."""
    global _full
    store, _, after = _SPEC.partition(":")
    if not _full and path.endswith(_STORES[store]) and _stored() >= int(after):
        _full = True
    if _full:
        if path.endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        raise sqlite3.OperationalError("database or disk is full")


class _Connection(sqlite3.Connection):
    path = ""

    def _check(self, sql: str) -> None:
        if sql.lstrip().upper().startswith(_WRITES):
            _write(self.path)

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._check(sql)
        return super().execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._check(sql)
        return super().executemany(sql, *args)


def _connect_library(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
    path = os.path.realpath(os.fspath(database)) if not str(database).startswith(
        "file:") else ""
    if not path.startswith(_LIBRARY) or "factory" in kwargs:
        return _connect(database, *args, **kwargs)
    db = _connect(database, *args, factory=_Connection, **kwargs)
    db.path = path
    return db


def _fsync_library(fd: int) -> None:
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        path = ""
    if path.startswith(_LIBRARY):
        _write(path)
    _fsync(fd)


if _SPEC and os.environ.get("PHOTOFIND_LIBRARY"):
    sqlite3.connect = _connect_library  # type: ignore[assignment]
    os.fsync = _fsync_library
