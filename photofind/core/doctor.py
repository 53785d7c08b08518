"""``photofind doctor``: check a library, and rebuild what is derived.

Checks the catalog (quick_check, or integrity_check when full), the index
against the catalog (same ids, a sample of vectors found as their own
nearest neighbour), the thumbnail store, the roots, the model and SQLite.
Repair rebuilds only derived data (the index, missing thumbnails); it never
touches the user's photos.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photofind.core.catalog import catalog_problem
from photofind.core.library import Library
from photofind.core.scanner import root_is_online
from photofind.core.vectors import VectorIndex

MIN_SQLITE = (3, 24, 0)  # upsert


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(lib: Library, full: bool = False) -> Iterator[Check]:
    problem = catalog_problem(lib.catalog.path, full)
    kind = "integrity_check" if full else "quick_check"
    yield Check("catalog", problem is None, problem or f"{kind} passed")
    yield _index_check(lib)
    yield _thumbs_check(lib)
    counts = lib.catalog.counts_by_root()
    for root in lib.catalog.roots():
        ok, failed = counts.get(root.id, (0, 0))
        online = root_is_online(Path(root.path), ok + failed)
        yield Check(f"folder {root.path}", True,
                    f"{'online' if online else 'OFFLINE (photos kept)'}, {ok} photos")
    yield _model_check(lib)
    version = tuple(int(x) for x in sqlite3.sqlite_version.split("."))
    yield Check("sqlite", version >= MIN_SQLITE, f"version {sqlite3.sqlite_version}")


def _index_check(lib: Library) -> Check:
    manifest = lib.catalog.manifest(lib.model)
    stored = lib.catalog.embedding_ids(lib.model)
    if manifest is None:
        return Check("index", not stored, "no index yet" if not stored
                     else f"missing: {len(stored)} stored vectors are not indexed")
    path = lib.dir / f"vectors.{manifest.generation}.hnsw"
    try:
        index = VectorIndex.load(path, manifest.dim, manifest.sha256)
    except (OSError, ValueError, RuntimeError) as exc:
        return Check("index", False, f"{path.name} is unusable ({exc})")
    newer = sum(len(ids) for ids, _, _ in lib.catalog.embeddings_after(lib.model,
                                                                         manifest.max_seq))
    missing = stored - index.ids()
    if newer < len(missing):
        return Check("index", False, f"{len(missing)} stored vectors are not indexed")
    sample = random.Random(0).sample(sorted(stored & index.ids()),
                                     min(50, len(stored & index.ids())))
    for photo_id in sample:
        vec = lib.catalog.embedding(photo_id, lib.model)
        assert vec is not None
        ids, scores = index.query(np.asarray(vec, np.float32), 5)
        tied = {int(i) for i, s in zip(ids, scores, strict=True) if s >= scores[0] - 1e-4}
        if photo_id not in tied:  # (identical photos tie for first place)
            return Check("index", False, f"photo {photo_id} is not its own nearest neighbour")
    return Check("index", True, f"{path.name}: {len(index)} vectors agree with the catalog"
                 + (f" ({newer} newer ones are added on load)" if newer else ""))


def _thumbs_check(lib: Library) -> Check:
    problem = catalog_problem(lib.dir / "thumbs.sqlite3")
    if problem and (lib.dir / "thumbs.sqlite3").exists():
        return Check("thumbnails", False, problem)
    missing = len(lib.missing_thumbnails())
    return Check("thumbnails", missing == 0,
                 f"{missing} photos have no thumbnail" if missing else "every photo has one")


def _model_check(lib: Library) -> Check:
    from photofind.core.model.sources import model_problem

    problem = model_problem(lib.model)
    return Check("model", problem is None, f"{lib.model}: {problem or 'available offline'}")


def repair(lib: Library) -> Iterator[str]:
    """Rebuild the index from stored vectors and make missing thumbnails."""
    thumbs_path = lib.dir / "thumbs.sqlite3"
    if thumbs_path.exists() and catalog_problem(thumbs_path):
        lib.close_thumbs()
        for suffix in ("", "-wal", "-shm"):
            Path(str(thumbs_path) + suffix).unlink(missing_ok=True)
        yield "thumbnail store was damaged: started a new one"
    count = lib.rebuild_vectors()
    yield f"index rebuilt from {count} stored vectors (nothing re-embedded)"
    todo = [(pid, path) for pid, path, _ in lib.missing_thumbnails() if Path(path).is_file()]
    if todo:
        made = lib.make_thumbnails(todo)
        yield f"{made} missing thumbnails made"
