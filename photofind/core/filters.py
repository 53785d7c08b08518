"""Filters that narrow any query: folders, a date range, kind and orientation.

A :class:`Filter` is plain data (what the CLI's flags and the window's sidebar
and chips ask for); :func:`matching_ids` turns it into the ids of the photos
it keeps, with SQL over the catalog's indexed columns. Within one field the
values are alternatives (``--in A --in B``: either folder); fields combine
(folder and date and kind).

Dates are whole periods, both ends inclusive: ``--after 2019-06`` keeps June
2019 on, ``--before 2019`` keeps everything up to the last second of 2019. A
photo's date is its taken date, else (rows written before taken dates were
always recorded) its file's modification time, in local time.

The kind of a photo is fixed by its file name: a RAW extension is ``raw``, a
PNG is ``screenshot`` (screenshots are PNGs; a PNG photo is rare), anything
else ``photo``. The catalog stores it on write (see :func:`kind_of`).
"""

from __future__ import annotations

import calendar
import os
import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from photofind.core.errors import UsageError
from photofind.core.records import RAW_EXTENSIONS
from photofind.core.vectors import best

KINDS = ("photo", "screenshot", "raw")
ORIENTATIONS = ("landscape", "portrait", "square")
SCREENSHOT_EXTENSIONS = (".png",)

_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")


def _orientation_sql(shape: str, t: str) -> str:
    """The condition for one orientation; ``t`` prefixes the columns (``p.``).
    Sides within 2% of each other make a square (a 1000 x 1010 crop looks square)."""
    square = f"ABS({t}width - {t}height) * 50 <= MAX({t}width, {t}height)"
    if shape == "square":
        return square
    longer = f"{t}width > {t}height" if shape == "landscape" else f"{t}height > {t}width"
    return f"{longer} AND NOT ({square})"


def kind_of(path: str) -> str:
    """``raw``, ``screenshot`` or ``photo``, from the file's extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext in RAW_EXTENSIONS:
        return "raw"
    return "screenshot" if ext in SCREENSHOT_EXTENSIONS else "photo"


@dataclass(frozen=True)
class Period:
    """A calendar year, month or day, as the user wrote it (``2019-06``)."""

    year: int
    month: int | None = None
    day: int | None = None

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _DATE.match(text.strip())
        if match is None:
            raise UsageError(f"{text!r} is not a date: write a year (2019), a month (2019-06)"
                             " or a day (2019-06-21).")
        year, month, day = (int(g) if g else None for g in match.groups())
        assert year is not None
        try:
            datetime(year, 1 if month is None else month, 1 if day is None else day)
        except ValueError:
            raise UsageError(f"{text!r} is not a date in the calendar.") from None
        return cls(year, month, day)

    def first(self) -> datetime:
        return datetime(self.year, self.month or 1, self.day or 1)

    def last(self) -> datetime:
        """The period's last second."""
        month = self.month or 12
        day = self.day or calendar.monthrange(self.year, month)[1]
        return datetime(self.year, month, day, 23, 59, 59)

    def __str__(self) -> str:
        if self.month is None:
            return f"{self.year:04d}"
        if self.day is None:
            return f"{self.year:04d}-{self.month:02d}"
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"


@dataclass(frozen=True)
class Filter:
    """What to keep. Empty fields keep everything; an empty Filter is no filter."""

    folders: tuple[str, ...] = ()  # resolved folders inside roots (subtrees)
    after: Period | None = None  # inclusive: from the period's first second
    before: Period | None = None  # inclusive: to the period's last second
    kinds: tuple[str, ...] = ()
    orientations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for kind in self.kinds:
            if kind not in KINDS:
                raise UsageError(f"{kind!r} is not a kind: choose {', '.join(KINDS)}.")
        for shape in self.orientations:
            if shape not in ORIENTATIONS:
                raise UsageError(f"{shape!r} is not an orientation: choose"
                                 f" {', '.join(ORIENTATIONS)}.")
        if self.after and self.before and self.after.first() > self.before.last():
            raise UsageError(f"The dates are the wrong way round: {self.after} is after"
                             f" {self.before}.")

    def __bool__(self) -> bool:
        return bool(self.folders or self.after or self.before or self.kinds
                    or self.orientations)

    def where(self, table: str = "") -> tuple[str, list[object]]:
        """A SQL condition on ``photos`` (its columns prefixed with ``table.``
        when given) and its arguments; "1" for an empty filter."""
        t = f"{table}." if table else ""
        parts: list[str] = []
        args: list[object] = []
        if self.folders:
            spans = []
            for folder in self.folders:
                prefix = folder.rstrip("/\\") + os.sep
                # Every path below prefix sorts between it and its successor (an index range).
                spans.append(f"({t}path >= ? AND {t}path < ?)")
                args += [prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)]
            parts.append(f"({' OR '.join(spans)})")
        if self.after or self.before:
            first = self.after.first() if self.after else None
            end = _next_second(self.before.last()) if self.before else None
            # ISO 8601 strings sort as their times do; "~" sorts after any of them.
            parts.append(f"(({t}taken_at >= ? AND {t}taken_at < ?) OR ({t}taken_at IS NULL"
                         f" AND {t}mtime_ns >= ? AND {t}mtime_ns < ?))")
            args += [first.isoformat() if first else "", end.isoformat() if end else "~",
                     _local_ns(first) if first else -(1 << 62),
                     _local_ns(end) if end else 1 << 62]
        if self.kinds:
            parts.append(f"{t}kind IN ({','.join('?' * len(self.kinds))})")
            args += list(self.kinds)
        if self.orientations:
            parts.append("(" + " OR ".join(f"({_orientation_sql(o, t)})"
                                           for o in self.orientations) + ")")
        # No status test: failed photos have no vectors, so no query finds them,
        # and the condition would cost a row lookup per photo (the indexes cover the rest).
        return " AND ".join(parts) or "1", args

    def parts(self) -> list[tuple[str, str]]:
        """Each active part as (key, a few words): the window's removable chips."""
        out = [(f"in:{f}", f"in {os.path.basename(f.rstrip(os.sep)) or f}")
               for f in self.folders]
        if self.after and self.before and self.after == self.before:
            out.append(("dates", str(self.after)))
        elif self.after or self.before:
            words = [f"from {self.after}" if self.after else "",
                     f"to {self.before}" if self.before else ""]
            out.append(("dates", " ".join(w for w in words if w)))
        out += [(f"kind:{k}", {"photo": "photos", "screenshot": "screenshots",
                               "raw": "RAW"}[k]) for k in self.kinds]
        out += [(f"orientation:{o}", o) for o in self.orientations]
        return out

    def without(self, key: str) -> Filter:
        """This filter less the part ``key`` (one of :meth:`parts`' keys)."""
        if key == "dates":
            return replace(self, after=None, before=None)
        part, _, value = key.partition(":")
        if part == "in":
            return replace(self, folders=tuple(f for f in self.folders if f != value))
        if part == "kind":
            return replace(self, kinds=tuple(k for k in self.kinds if k != value))
        return replace(self, orientations=tuple(o for o in self.orientations if o != value))


def _next_second(moment: datetime) -> datetime | None:
    try:
        return moment + timedelta(seconds=1)
    except OverflowError:  # the end of year 9999: no end
        return None


def _local_ns(moment: datetime) -> int:
    """A local wall-clock time as nanoseconds since the epoch (far dates clamped)."""
    try:
        return int(moment.timestamp()) * 1_000_000_000
    except (OverflowError, OSError, ValueError):
        return -(1 << 62) if moment.year < 1970 else 1 << 62


def folder_in_roots(text: str, roots: Sequence[str]) -> str:
    """The folder a user named, spelt as the catalog stores it (below its root);
    one sentence when it lies outside every root of the library."""
    from photofind.core.roots import resolved, same_or_inside

    # As written first (a link inside a root stays there), else where it leads.
    for path in dict.fromkeys((os.path.abspath(os.path.expanduser(text)), resolved(text))):
        for root in roots:
            if same_or_inside(path, root):
                below = path[len(root.rstrip(os.sep)):].strip(os.sep)
                return os.path.join(root, below) if below else root
    raise UsageError(f"{text} is not inside any folder of the library (see `photofind"
                     " status`).")


@dataclass
class _Kept:
    """The last filter's ids, valid while its connection sees no new commit."""

    db: sqlite3.Connection | None = None
    key: tuple[object, ...] = ()
    ids: frozenset[int] = frozenset()


_last = _Kept()
_last_lock = threading.Lock()


def matching_ids(db: sqlite3.Connection, flt: Filter) -> frozenset[int]:
    """The ids of the photos the filter keeps (failed ones too: no query finds
    them, they have no vector). The answer is kept until the catalog changes,
    so words typed under one filter do not read its ids again."""
    state = (flt, db.execute("PRAGMA data_version").fetchone()[0], db.total_changes)
    with _last_lock:
        if _last.db is db and _last.key == state:
            return _last.ids
    where, args = flt.where()
    # One string parsed by numpy costs less than a Python row per photo.
    text = db.execute(f"SELECT group_concat(id) FROM photos WHERE {where}", args).fetchone()[0]
    ids = frozenset(np.array(text.split(","), np.int64).tolist() if text else ())
    with _last_lock:
        _last.db, _last.key, _last.ids = db, state, ids
    return ids


def forget_kept() -> None:
    """Drop the kept ids (benchmarks measure a filter's first query with it)."""
    with _last_lock:
        _last.db, _last.key, _last.ids = None, (), frozenset()


def exact_nearest(db: sqlite3.Connection, flt: Filter, model: str,
                  vector: npt.NDArray[np.float32], k: int, exclude: set[int]
                  ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The ``k`` photos the filter keeps that are nearest to ``vector``, best
    first: one matrix product over their stored vectors (for filters that keep
    few photos, where walking the graph would visit most of it)."""
    where, args = flt.where()
    rows = [r for r in db.execute(
        "SELECT photo_id, vec FROM embeddings WHERE model = ? AND photo_id IN"
        f" (SELECT id FROM photos WHERE {where})", [model, *args]) if r[0] not in exclude]
    if not rows or k <= 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    matrix = np.frombuffer(b"".join(r[1] for r in rows), np.float16).reshape(len(rows), -1)
    matrix = matrix.astype(np.float32)
    # Stored as float16: scored as unit vectors, as the index holds them.
    norms = np.sqrt(np.maximum(np.einsum("ij,ij->i", matrix, matrix), 1e-24))
    scores = (matrix @ (vector / max(float(np.linalg.norm(vector)), 1e-12))) / norms
    return best(ids, scores.astype(np.float32), k)


def folder_counts(db: sqlite3.Connection) -> dict[str, int]:
    """Readable photos per folder, each folder counting those below it too."""
    per_folder: dict[str, int] = {}
    for (path,) in db.execute("SELECT path FROM photos WHERE status = 'ok'"):
        folder = os.path.dirname(path)
        per_folder[folder] = per_folder.get(folder, 0) + 1
    roots = [r[0] for r in db.execute("SELECT path FROM roots")]
    totals: dict[str, int] = {}
    for folder, count in per_folder.items():
        top = next((r for r in roots if folder == r or folder.startswith(r.rstrip(os.sep)
                                                                          + os.sep)), None)
        while top is not None:
            totals[folder] = totals.get(folder, 0) + count
            if folder == top or os.path.dirname(folder) == folder:
                break
            folder = os.path.dirname(folder)
    return totals


def month_counts(db: sqlite3.Connection) -> dict[str, int]:
    """Readable photos per month (``2019-06``) of their date (taken, else file time)."""
    rows = db.execute(
        "SELECT substr(COALESCE(taken_at, strftime('%Y-%m-%dT%H:%M:%S', mtime_ns / 1000000000,"
        " 'unixepoch', 'localtime')), 1, 7) AS month, COUNT(*) FROM photos"
        " WHERE status = 'ok' GROUP BY month ORDER BY month DESC")
    return {str(month): int(count) for month, count in rows if month}
