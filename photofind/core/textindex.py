"""Text read in photos, in the catalog: storing it, finding photos by it.

Tables (a catalog migration step): ``photo_text`` holds, per photo, the text
read (one line per line), the lines with their confidence and boxes and a box
per word (JSON, fractions of the upright photo), the mean confidence, and the
engine id that read it; ``photo_text_fts`` is an SQLite FTS5 index over the
text (unicode61 tokenizer, diacritics folded: "Müller" finds "Muller"; prefix
indexes for ``rec*``), kept in step by triggers, over the text and over the
pieces of long words the recogniser read run together (``run_parts``). A photo written again by the
indexer (a changed file) loses its text until it is read again; text read by
another engine id counts as unread. ``library_options`` holds the library's
switch for reading text.

Query words become FTS5 expressions here (every word quoted, so no user input
is FTS syntax): ``receipt`` a word, ``rec*`` a prefix, ``"total 42.50"`` a
phrase (the tokenizer splits it into total, 42, 50 in a row).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from photofind.core.catalog import Catalog
from photofind.core.ocr import Box, Line, Word

OPTION = "read_text"  # library_options key: "1" reads text, "0" does not
ENV = "PHOTOFIND_OCR"  # "0": a library without its own choice does not read text
_TOKEN = re.compile(r"\w+", re.UNICODE)
RUN, MAX_RUN = 8, 40  # lengths of a word read run together (run_parts)
# Words a plain query shares with any text: they lift nothing in the hybrid ranking.
STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in",
    "is", "it", "its", "of", "on", "or", "photo", "photos", "picture", "pictures", "image",
    "the", "that", "this", "to", "was", "with"))


@dataclass(frozen=True)
class ReadText:
    """What was read in one photo."""

    photo_id: int
    engine: str
    lines: tuple[Line, ...]
    confidence: float | None
    problem: str | None  # why it could not be read, else None

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


def reading_enabled(catalog: Catalog) -> bool:
    """The library's choice, else ``PHOTOFIND_OCR`` (on unless it is "0")."""
    row = catalog.db.execute("SELECT value FROM library_options WHERE key = ?",
                             (OPTION,)).fetchone()
    if row is not None:
        return bool(row[0] == "1")
    return os.environ.get(ENV, "1") != "0"


def set_reading(catalog: Catalog, enabled: bool) -> None:
    with catalog.transaction() as db:
        db.execute("INSERT OR REPLACE INTO library_options(key, value) VALUES (?, ?)",
                   (OPTION, "1" if enabled else "0"))


# Why a read failed, when it may go better next time (a busy machine, a reader
# that died): such a photo is tried once more.
RETRY = ("timeout", "crashed reader")
_UNREAD = ("FROM photos p JOIN roots r ON r.id = p.root_id"
           " LEFT JOIN photo_text t ON t.photo_id = p.id"
           " WHERE p.status = 'ok' AND r.state = 'online'"
           " AND (t.photo_id IS NULL OR t.engine != ? OR t.problem IN (?, ?))")


# A scope longer than this reads the whole library instead (SQLite's variable limit).
_SCOPE_MAX = 30_000


@dataclass(frozen=True)
class Scope:
    """Which photos a reading pass looks at: ``among`` (a change set's photos)
    and every photo with an id above ``newer_than`` (those the batch added);
    ``among`` None: the whole library."""

    among: frozenset[int] | None = None
    newer_than: int = 0

    def sql(self) -> tuple[str, list[int]]:
        if self.among is None or len(self.among) > _SCOPE_MAX:
            return "", []
        marks = ",".join("?" * len(self.among))
        return f" AND (p.id > ? OR p.id IN ({marks}))", [self.newer_than, *sorted(self.among)]


WHOLE = Scope()


def unread(catalog: Catalog, engine: str, limit: int, after: int = 0, scope: Scope = WHOLE
           ) -> list[tuple[int, str, bool]]:
    """(photo id, path, is a retry) of readable photos on connected drives that
    have no text from ``engine`` yet (or one more try due), oldest first, from
    the id ``after`` on (a pass keeps its place: it never walks what it read)."""
    where, args = scope.sql()
    rows = catalog.db.execute(
        f"SELECT p.id, p.path, t.engine = ? AND t.problem IS NOT NULL {_UNREAD}"
        f" AND p.id > ?{where} ORDER BY p.id LIMIT ?",
        (engine, engine, *RETRY, after, *args, limit))
    return [(int(r[0]), str(r[1]), bool(r[2])) for r in rows]


def unread_count(catalog: Catalog, engine: str, scope: Scope = WHOLE) -> int:
    where, args = scope.sql()
    row = catalog.db.execute(f"SELECT COUNT(*) {_UNREAD}{where}",
                             (engine, *RETRY, *args)).fetchone()
    return int(row[0])


def store(catalog: Catalog, results: Iterable[ReadText]) -> None:
    """Write what was read, in one transaction (photos gone meanwhile are skipped)."""
    now = time.time()
    with catalog.transaction() as db:
        for r in results:
            lines = json.dumps([_line_json(line) for line in r.lines], ensure_ascii=False)
            db.execute(
                "INSERT INTO photo_text(photo_id, engine, body, parts, lines, confidence,"
                " problem, read_at) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1"
                " FROM photos WHERE id = ?) ON CONFLICT(photo_id) DO UPDATE SET"
                " engine = excluded.engine, body = excluded.body, parts = excluded.parts,"
                " lines = excluded.lines, confidence = excluded.confidence,"
                " problem = excluded.problem, read_at = excluded.read_at",
                (r.photo_id, r.engine, r.text, run_parts(r.text), lines, r.confidence,
                 r.problem, now, r.photo_id))


def text_of(catalog: Catalog, photo_id: int) -> ReadText | None:
    row = catalog.db.execute(
        "SELECT engine, lines, confidence, problem FROM photo_text WHERE photo_id = ?",
        (photo_id,)).fetchone()
    if row is None:
        return None
    lines = tuple(_line_of(item) for item in json.loads(row[1]))
    return ReadText(photo_id, str(row[0]), lines, row[2], row[3])


def status(catalog: Catalog) -> dict[str, object]:
    """What ``photofind status`` says about reading: on or off, photos read
    (with text found in how many), photos waiting, the engine."""
    from photofind.core import ocr

    try:
        engine = ocr.engine_id() if ocr.installed() else None
    except ocr.EngineMissing:  # a language model named but missing: nothing is read
        engine = None
    read, with_text = catalog.db.execute(
        "SELECT COUNT(*), COALESCE(SUM(body != ''), 0) FROM photo_text").fetchone()
    return {"reading": reading_enabled(catalog), "read": int(read), "with_text": int(with_text),
            "waiting": unread_count(catalog, engine) if engine else 0, "engine": engine}


def run_parts(text: str) -> str:
    """The pieces of words read run together ("MARBLEBRIDGE": the recogniser
    missed a space), indexed beside the text so that "bridge" still finds it:
    every piece of 3 characters or more of a run of ``RUN`` or more."""
    parts: dict[str, None] = {}
    for word in words_of(text):
        if RUN <= len(word) <= MAX_RUN:
            for size in range(3, len(word)):
                for start in range(len(word) - size + 1):
                    parts[word[start:start + size]] = None
    return " ".join(parts)


# --- queries -------------------------------------------------------------------

def words_of(text: str) -> list[str]:
    """The words of a query or of read text, as the FTS tokenizer cuts them
    (lower case; diacritics are folded by the index)."""
    return [w.lower() for w in _TOKEN.findall(text)]


def expression(value: str) -> str | None:
    """The FTS5 expression of a ``text:`` value: a quoted phrase stays a phrase,
    ``word*`` is a prefix, other words must all be there. None: no words."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        words = words_of(value[1:-1])
        return '"' + " ".join(words) + '"' if words else None
    parts = []
    for raw in value.split():
        words = words_of(raw)
        if not words:
            continue
        phrase = '"' + " ".join(words) + '"'
        parts.append(phrase + "*" if raw.endswith("*") else phrase)
    return " AND ".join(parts) or None


def plain_expression(text: str) -> str | None:
    """The FTS5 expression a plain query's words look for in the hybrid ranking:
    every significant word (3 letters or more, not a stop word), all of them."""
    words = [w for w in words_of(text) if len(w) >= 3 and w not in STOPWORDS]
    return " AND ".join(f'"{w}"' for w in dict.fromkeys(words)) or None


def matching(catalog: Catalog, expr: str, limit: int | None = None) -> list[int]:
    """Photo ids whose text matches, best (bm25) first."""
    sql = ("SELECT f.rowid FROM photo_text_fts f JOIN photos p ON p.id = f.rowid"
           " WHERE photo_text_fts MATCH ? AND p.status = 'ok' ORDER BY bm25(photo_text_fts)")
    args: tuple[object, ...] = (expr,)
    if limit is not None:
        sql += " LIMIT ?"
        args += (limit,)
    try:
        return [int(r[0]) for r in catalog.db.execute(sql, args)]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # a read-only catalog from before text was read
        raise


def matched_words(read: ReadText, query: Sequence[str]) -> list[Word]:
    """The words of a photo's text that a query's words name (prefixes for
    ``word*``), with their boxes, for highlighting."""
    wanted = [(w.rstrip("*").lower(), w.endswith("*")) for w in query if w.rstrip("*")]
    found = []
    for line in read.lines:
        for word in line.words:
            for part in words_of(_fold(word.text)):
                if any(part == _fold(w) or (prefix and part.startswith(_fold(w)))
                       or (len(part) >= RUN and _fold(w) in part) for w, prefix in wanted):
                    found.append(word)
                    break
    return found


def _fold(text: str) -> str:
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _line_json(line: Line) -> dict[str, object]:
    return {"text": line.text, "confidence": round(line.confidence, 4), "box": list(line.box),
            "words": [[w.text, *w.box] for w in line.words]}


def _line_of(item: dict[str, object]) -> Line:
    words = tuple(Word(str(w[0]), _box(w[1:])) for w in item.get("words", []))  # type: ignore[attr-defined]
    return Line(str(item["text"]), float(item["confidence"]),  # type: ignore[arg-type]
                _box(item["box"]), words)


def _box(values: object) -> Box:
    x0, y0, x1, y1 = (float(v) for v in values)  # type: ignore[attr-defined]
    return (x0, y0, x1, y1)
