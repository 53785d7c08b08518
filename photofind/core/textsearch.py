"""Searching by the words read in photos: ``text:`` terms and the hybrid ranking.

- ``text:receipt``, ``text:rec*``, ``text:"total 42.50"`` match the read text
  only (textindex.expression). A query's ``text:`` terms must all match
  (``- text:word`` leaves out the photos that read it); with other terms the
  matches are ranked by CLIP as usual, alone by how well the text matches
  (bm25), each with score 1.0 (every one of them matches).
- A plain query's words also look for photos whose text holds all of its
  significant words, and the two rankings are fused by reciprocal rank
  (score 1/(60 + CLIP rank) + 1/(60 + text rank)): a photo that reads the
  query's words rises to the top, every other photo keeps its CLIP order and
  score, and a query whose words no photo reads is answered exactly as CLIP
  alone answers it. A photo lifted by its text shows the score of the photo
  ranked below it (the window's cut-off keeps it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from photofind.core import textindex
from photofind.core.catalog import Catalog, PhotoInfo
from photofind.core.errors import PhotofindError
from photofind.core.filters import Filter, matching_ids
from photofind.core.ocr import Box

if TYPE_CHECKING:
    from photofind.core.search import Searcher, Term

RRF_K = 60  # the usual constant of reciprocal-rank fusion
TEXT_DEPTH = 200  # text matches a plain query takes into the fusion
_TEXT_TERM = re.compile(r'(?:^|\s)(text:(?:"[^"]*"|\S+))', re.IGNORECASE)
Ranked = list[tuple[PhotoInfo, float]]


def text_parts(token: str) -> list[str]:
    """``beach text:"total 42.50"`` -> ``["beach", 'text:"total 42.50"']``."""
    parts = [m.strip() for m in _TEXT_TERM.findall(token)]
    rest = _TEXT_TERM.sub(" ", token).strip()
    return ([rest] if rest else []) + parts


def words_value(token: str) -> str | None:
    """The value of a ``text:`` term, or None for any other token."""
    return token[5:].strip() if token[:5].lower() == "text:" else None


def ranked_by_words(searcher: Searcher, terms: list[Term], limit: int,
                    flt: Filter | None = None) -> Ranked:
    """Rank a query that has ``text:`` terms (among the photos ``flt`` keeps)."""
    catalog = searcher.lib.catalog
    kept = matching_ids(catalog.db, flt) if flt else None
    required: set[int] | None = None
    order: list[int] = []
    excluded: set[int] = set()
    for term in (t for t in terms if t.kind == "words"):
        expr = textindex.expression(term.value)
        if expr is None:
            raise PhotofindError(f"text:{term.value} has no words to look for.")
        ids = textindex.matching(catalog, expr)
        if kept is not None:
            ids = [i for i in ids if i in kept]
        if term.weight < 0:
            excluded.update(ids)
        else:
            order = order or ids
            required = set(ids) if required is None else required & set(ids)
    others = [t for t in terms if t.kind != "words"]
    if not any(t.weight > 0 for t in others):
        ids = [i for i in order if i in (required or set()) and i not in excluded][:limit]
        info = catalog.photo_info(ids)
        return [(info[i], 1.0) for i in ids if i in info]
    vector, exclude = searcher.query_vector(others)
    if required is None:  # only "- text:word": CLIP ranks, the words leave photos out
        found = searcher.nearest(vector, limit + len(excluded), exclude | excluded, flt=flt)
        return found[:limit]
    ids = [i for i in required - excluded - exclude]
    scored = sorted(zip(_cosines(searcher, ids, vector), ids, strict=True), reverse=True)
    info = catalog.photo_info([i for _, i in scored[:limit]])
    return [(info[i], score) for score, i in scored[:limit] if i in info]


def fuse(searcher: Searcher, terms: list[Term], vector: npt.NDArray[np.float32],
         ranked: Ranked, limit: int, flt: Filter | None = None) -> Ranked:
    """CLIP's ranking with the photos that read the query's words lifted (those
    ``flt`` keeps)."""
    words = " ".join(t.value for t in terms if t.kind == "text" and t.weight > 0)
    expr = textindex.plain_expression(words)
    if expr is None or not ranked:
        return ranked
    catalog = searcher.lib.catalog
    exclude = {row.id for t in terms if t.kind == "image"
               for row in [catalog.photo_by_path(t.value)] if row is not None}
    kept = matching_ids(catalog.db, flt) if flt else None
    text_ids = [i for i in textindex.matching(catalog, expr, TEXT_DEPTH) if i not in exclude
                and (kept is None or i in kept)]
    if not text_ids:
        return ranked
    known = {info.id for info, _ in ranked}
    extra = [i for i in text_ids if i not in known]
    info = catalog.photo_info(extra)
    extra = [i for i in extra if i in info]
    pool = ranked + [(info[i], s) for i, s in zip(extra, _cosines(searcher, extra, vector),
                                                  strict=True)]
    pool.sort(key=lambda item: -item[1])
    text_rank = {pid: r for r, pid in enumerate(text_ids, 1)}

    def fused(item: tuple[int, tuple[PhotoInfo, float]]) -> float:
        rank, (photo, _) = item
        lift = 1.0 / (RRF_K + text_rank[photo.id]) if photo.id in text_rank else 0.0
        return 1.0 / (RRF_K + rank + 1) + lift

    order = [item for _, item in sorted(enumerate(pool), key=fused, reverse=True)][:limit]
    out: Ranked = []
    floor = -1.0
    for photo, score in reversed(order):  # a lifted photo takes the score below it
        floor = max(score, floor)
        out.append((photo, floor))
    return out[::-1]


def _cosines(searcher: Searcher, ids: list[int], vector: npt.NDArray[np.float32]
             ) -> list[float]:
    """Cosine of each photo's stored vector with the query (-1 without one)."""
    stored = searcher.lib.catalog.embeddings(ids, searcher.lib.model)
    return [float(stored[pid] @ vector) if pid in stored else -1.0 for pid in ids]


def highlight_words(query: str) -> list[str]:
    """The words of a query to mark on a photo's text: those of its ``text:``
    terms (``word*`` kept as a prefix) and its plain significant words."""
    words: list[str] = []
    for part in text_parts(query):
        value = words_value(part)
        if value is None:
            words += [w for w in textindex.words_of(part)
                      if len(w) >= 3 and w not in textindex.STOPWORDS]
        else:
            for raw in value.strip('"').split():
                words += [w + ("*" if raw.endswith("*") else "")
                          for w in textindex.words_of(raw)]
    return words


def photo_text(catalog: Catalog, path: str, query: str) -> tuple[str, list[Box]]:
    """A library photo's read text ("" when none) and the boxes of the words
    of ``query`` in it (fractions of the upright photo)."""
    row = catalog.photo_by_path(path)
    read = textindex.text_of(catalog, row.id) if row is not None else None
    if read is None:
        return "", []
    return read.text, [w.box for w in textindex.matched_words(read, highlight_words(query))]
