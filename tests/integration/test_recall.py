"""HNSW answers agree with exact search (recall@10 >= 0.99) for text and image
queries: on the toy library through the real search path, and on a larger
clustered collection where the graph is really approximate."""

from __future__ import annotations

import numpy as np

from photofind.core.config import Settings
from photofind.core.library import Library
from photofind.core.search import Searcher, Term
from photofind.core.vectors import EF_IMAGE, EF_TEXT, VectorIndex
from photofind.testing.shapes import CLASSES, caption
from tests.conftest import IndexedLibrary


def recall_at_10(found: list[list[int]], exact: list[list[int]]) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact,
                                                                         strict=True)]))


def test_library_search_matches_brute_force(indexed: IndexedLibrary) -> None:
    settings = Settings.resolve(str(indexed.cli.library), indexed.cli.model, "cpu")
    with Library.open(settings) as lib:
        searcher = Searcher(lib)
        ids = sorted(lib.catalog.embedding_ids(lib.model))
        matrix = np.stack([lib.catalog.embedding(i, lib.model) for i in ids])
        for terms in ([[Term(1.0, "text", caption(*cs))] for cs in CLASSES],
                      [[Term(1.0, "image", str(p.path))] for p in indexed.photos[::6]]):
            found, exact = [], []
            for query in terms:
                vector, exclude = searcher.query_vector(query)
                found.append([info.id for info, _ in searcher.nearest(vector, 10, exclude)])
                order = np.argsort(-(matrix @ vector))
                exact.append([ids[i] for i in order if ids[i] not in exclude][:10])
            assert recall_at_10(found, exact) >= 0.99


def test_recall_on_a_larger_clustered_collection() -> None:
    """20,000 vectors in 50 tight clusters; image queries sit near photos, text
    queries near a cluster but shifted by a shared offset (CLIP's modality gap,
    top cosine about 0.5), which is where approximate search loses recall."""
    rng = np.random.default_rng(0)
    dim = 64
    centres = rng.normal(size=(50, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    data = centres[rng.integers(0, 50, 20000)] + rng.normal(scale=0.6, size=(20000, dim))
    gap = rng.normal(size=dim)
    gap /= np.linalg.norm(gap)
    image_like = data[rng.integers(0, len(data), 100)] + rng.normal(scale=0.05, size=(100, dim))
    text_like = centres[rng.integers(0, 50, 100)] + 1.5 * gap \
        + rng.normal(scale=0.3 / np.sqrt(dim), size=(100, dim))
    data = (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)
    index = VectorIndex(dim, capacity=len(data))
    index.add(np.arange(len(data), dtype=np.int64), data)
    for queries, ef in ((image_like, EF_IMAGE), (text_like, EF_TEXT)):
        queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
        found = [index.query(q, 10, ef)[0].tolist() for q in queries]
        exact = [np.argsort(-(data @ q))[:10].tolist() for q in queries]
        assert recall_at_10(found, exact) >= 0.99
