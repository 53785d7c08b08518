"""Queries: parse text and image terms, combine them, rank with the index.

Syntax (the CLI's words, or one string from the GUI's search box):
``beach + ./me.jpg - crowd`` adds and subtracts terms; ``2:beach`` weights one.
A term that names an existing file is an image; ``text:word`` or
``text:"a phrase"`` matches the words read in photos (textsearch.py, which
also lifts photos that read a plain query's words); anything else is text.
Each term's vector is normalised, the weighted sum is re-normalised, and the
HNSW index answers. A library photo used as a term reuses its stored vector and is
left out of the results.

A :class:`~photofind.core.filters.Filter` narrows any query, the empty one
too (:meth:`Searcher.browse`: newest first). A filter that keeps many photos
walks the graph with the filter; one that keeps few is searched exactly over
its photos' stored vectors (see ``EXACT_FILTERED``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from photofind.core.catalog import PhotoInfo
from photofind.core.config import PHOTO_EXTENSIONS
from photofind.core.decodepool import DecodePool
from photofind.core.errors import PhotofindError
from photofind.core.filters import Filter, exact_nearest, matching_ids
from photofind.core.imaging import Failed
from photofind.core.library import Library
from photofind.core.textsearch import fuse, ranked_by_words, text_parts, words_value
from photofind.core.vectors import EF_IMAGE, EF_TEXT, EXACT_MAX, VectorIndex

_WEIGHT = re.compile(r"^(\d+(?:\.\d+)?|\.\d+):(.+)$", re.S)
_OPERATOR = re.compile(r"\s+([+-])\s+")
# A filter keeping at most this share of the indexed photos is searched
# exactly over its photos' stored vectors: below it the filtered graph walk
# visits more of the graph than there are photos to score, and loses recall
# (100,000 photos, benchmarks/bench_query.py, one run: the walk took 14x the
# exact time at 1%, 2.4x at 5%, 0.7x at 10%, 0.26x at 20%).
EXACT_FILTERED = 0.05


@dataclass(frozen=True)
class Term:
    weight: float  # negative for "- term"
    kind: str  # "text" | "image" | "words" (text: read in the photos, textsearch.py)
    value: str  # the text, an absolute image path, or the text: value


@dataclass(frozen=True)
class Result:
    photo_id: int
    path: str
    score: float
    online: bool


def parse_query(parts: list[str] | str) -> list[Term]:
    """Split words like ``["beach", "+", "2:./me.jpg", "-", "crowd"]`` into terms."""
    words = [parts] if isinstance(parts, str) else list(parts)
    tokens: list[str] = []
    for word in words:
        tokens.extend(t for t in _OPERATOR.split(f" {word} ") if t.strip())
    terms: list[Term] = []
    sign = 1.0
    for token in (t.strip() for t in tokens):
        if token in ("+", "-"):
            sign = -1.0 if token == "-" else 1.0
            continue
        weight = 1.0
        match = _WEIGHT.match(token)
        if match:
            weight, token = float(match.group(1)), match.group(2).strip()
        terms.extend(_term(sign * weight, part) for part in text_parts(token))
        sign = 1.0
    if not terms:
        raise PhotofindError("The query is empty: give some words or an image file.")
    if all(t.weight <= 0 for t in terms):
        raise PhotofindError("The query only subtracts: give at least one term to look for.")
    return terms


def _term(weight: float, token: str) -> Term:
    words = words_value(token)
    if words is not None:
        return Term(weight, "words", words)
    path = os.path.expanduser(token)
    if os.path.isfile(path):
        return Term(weight, "image", os.path.abspath(path))
    looks_like_path = (os.path.splitext(path)[1].lower() in PHOTO_EXTENSIONS
                       or token.startswith(("./", "../", "/", "~")))
    if looks_like_path and " " not in token.strip():
        raise PhotofindError(f"There is no image file at {token}.")
    return Term(weight, "text", token)


class Searcher:
    """Runs queries against one library (loads the model only for text and
    for images that are not in the library)."""

    def __init__(self, lib: Library) -> None:
        self.lib = lib

    def search(self, terms: list[Term], limit: int = 20, flt: Filter | None = None
               ) -> list[Result]:
        return [Result(info.id, info.path, round(score, 4), info.online)
                for info, score in self.ranked(terms, limit, flt)]

    def browse(self, flt: Filter | None = None, limit: int = -1) -> list[PhotoInfo]:
        """The photos the filter keeps (all of them without one), newest first."""
        return self.lib.catalog.newest_first(flt.where("p") if flt else None, limit)

    def ranked(self, terms: list[Term], limit: int, flt: Filter | None = None
               ) -> list[tuple[PhotoInfo, float]]:
        """The best ``limit`` photos for the terms (among those ``flt`` keeps)
        with what a result shows about them."""
        if any(t.kind == "words" for t in terms):
            return ranked_by_words(self, terms, limit, flt)
        needs_model = any(t.kind == "text" or self.lib.catalog.photo_by_path(t.value) is None
                          for t in terms)
        if needs_model and self.lib.catalog.embedding_dim(self.lib.model) is not None:
            # The model loads and encodes the words while the index loads.
            self.lib.load_model_soon([t.value for t in terms if t.kind == "text"])
        if self.lib.vectors.index() is None:  # say so before loading a model for nothing
            raise PhotofindError(
                f"No photos are indexed with the model {self.lib.model} yet: run"
                " `photofind index FOLDER` first.")
        vector, exclude = self.query_vector(terms)
        ef = EF_TEXT if any(t.kind == "text" for t in terms) else EF_IMAGE
        return fuse(self, terms, vector, self.nearest(vector, limit, exclude, ef, flt), limit, flt)

    def similar(self, image: str, limit: int = 20, flt: Filter | None = None) -> list[Result]:
        path = os.path.abspath(os.path.expanduser(image))
        if not os.path.isfile(path):
            raise PhotofindError(f"There is no image file at {image}.")
        return self.search([Term(1.0, "image", path)], limit, flt)

    def query_vector(self, terms: list[Term]) -> tuple[npt.NDArray[np.float32], set[int]]:
        total: npt.NDArray[np.float32] | None = None
        exclude: set[int] = set()
        for term in terms:
            if term.kind == "image":
                vec, photo_id = self._image_vector(term.value)
                if photo_id is not None:
                    exclude.add(photo_id)
            else:
                vec = self.lib.embedder().text_vector(term.value)
            part = term.weight * vec / max(float(np.linalg.norm(vec)), 1e-12)
            total = part if total is None else total + part
        assert total is not None
        norm = float(np.linalg.norm(total))
        if norm < 1e-6:
            raise PhotofindError("The query's terms cancel each other out.")
        return (total / norm).astype(np.float32), exclude

    def _image_vector(self, path: str) -> tuple[npt.NDArray[np.float32], int | None]:
        row = self.lib.catalog.photo_by_path(path)
        if row is not None:
            stored = self.lib.catalog.embedding(row.id, self.lib.model)
            if stored is not None:
                return stored, row.id
        embedder = self.lib.embedder()
        # A dropped file is as untrusted as any photo: decode it in a worker.
        with DecodePool(embedder.preprocess, workers=1) as pool:
            ((_, decoded),) = list(pool.run([path], str))
        if isinstance(decoded, Failed):
            raise PhotofindError(f"Cannot read {path} as an image ({decoded.reason}).")
        return embedder.encode_images(decoded.pixels[None])[0], None

    def nearest(self, vector: npt.NDArray[np.float32], limit: int,
                exclude: set[int] | None = None, ef: int = EF_TEXT, flt: Filter | None = None
                ) -> list[tuple[PhotoInfo, float]]:
        index = self.lib.vectors.index()
        if index is None or limit <= 0:
            return []
        exclude = exclude or set()
        if flt:
            ids, scores = self._filtered(index, vector, limit + 8, exclude, ef, flt)
        else:
            ids, scores = index.query(vector, limit + len(exclude) + 8, ef)
        info = self.lib.catalog.photo_info([int(i) for i in ids])
        results = []
        for pid, score in zip(ids.tolist(), scores.tolist(), strict=True):
            if pid in exclude or pid not in info:
                continue
            results.append((info[pid], float(score)))
            if len(results) == limit:
                break
        return results

    def _filtered(self, index: VectorIndex, vector: npt.NDArray[np.float32], k: int,
                  exclude: set[int], ef: int, flt: Filter
                  ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The k nearest among the photos ``flt`` keeps: through the graph when
        the filter keeps many (or the library is small enough to hold exactly),
        else exactly over their stored vectors."""
        allowed = matching_ids(self.lib.catalog.db, flt)
        if exclude:
            allowed = allowed - exclude
        if len(index) > EXACT_MAX and len(allowed) <= EXACT_FILTERED * len(index):
            return exact_nearest(self.lib.catalog.db, flt, self.lib.model, vector, k, exclude)
        found = index.query_filtered(vector, k, allowed, ef)
        if found is not None and (len(found[0]) == min(k, len(allowed))):
            return found
        return exact_nearest(self.lib.catalog.db, flt, self.lib.model, vector, k, exclude)
