"""Saved searches: a name for a query (its words, its image, its cut-off).

The window lists them as "My albums"; opening one runs its query again, so
an album keeps up with the photos that arrive. They live in the catalog
(table ``saved_searches``), next to the photos they search.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from photofind.core.catalog import Catalog
from photofind.core.errors import PhotofindError, is_not_writable


@dataclass(frozen=True)
class SavedSearch:
    id: int
    name: str
    text: str
    image_path: str | None
    cutoff: int  # the window's cut-off slider position (0: automatic)


def saved_searches(catalog: Catalog) -> list[SavedSearch]:
    """Every saved search, by name."""
    rows = catalog.db.execute("SELECT id, name, query_text, image_path, cutoff"
                              " FROM saved_searches ORDER BY name COLLATE NOCASE")
    return [SavedSearch(*row) for row in rows]


def save_search(catalog: Catalog, name: str, text: str, image_path: str | None,
                cutoff: int) -> SavedSearch:
    name = _clean(name)
    with _writing(catalog, name) as db:
        cur = db.execute("INSERT INTO saved_searches(name, query_text, image_path, cutoff,"
                         " created_at) VALUES (?, ?, ?, ?, ?)",
                         (name, text, image_path, cutoff, time.time()))
    return SavedSearch(int(cur.lastrowid or 0), name, text, image_path, cutoff)


def rename_search(catalog: Catalog, search_id: int, name: str) -> None:
    name = _clean(name)
    with _writing(catalog, name) as db:
        db.execute("UPDATE saved_searches SET name = ? WHERE id = ?", (name, search_id))


def remove_search(catalog: Catalog, search_id: int) -> None:
    with _writing(catalog, "") as db:
        db.execute("DELETE FROM saved_searches WHERE id = ?", (search_id,))


@contextmanager
def _writing(catalog: Catalog, name: str) -> Iterator[sqlite3.Connection]:
    """One write, with the user's sentence for what can go wrong."""
    try:
        with catalog.transaction() as db:
            yield db
    except sqlite3.IntegrityError as exc:
        raise PhotofindError(f"There is already an album named “{name}”.") from exc
    except sqlite3.OperationalError as exc:
        if is_not_writable(exc):
            raise PhotofindError("This library is read-only here, so albums cannot be"
                                 " saved, renamed or removed in it.") from exc
        raise


def _clean(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise PhotofindError("An album needs a name.")
    return name
