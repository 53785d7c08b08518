"""Reports on a library: ``photofind status`` and ``photofind doctor``.

``status_report`` counts photos and failures and tells each folder's state.
The doctor checks the catalog (quick_check, or integrity_check when full), the index
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
from typing import Any

import numpy as np

from photofind.core.catalog import database_problem
from photofind.core.errors import PhotofindError
from photofind.core.library import Library
from photofind.core.scanner import root_online
from photofind.core.thumbs import make_thumbnails, missing_thumbnails
from photofind.core.vectors import VectorIndex

MIN_SQLITE = (3, 24, 0)  # upsert


def status_report(lib: Library) -> dict[str, Any]:
    """Photos, failures, folders and their state, model and device."""
    from photofind.core.model.loading import planned

    counts = lib.catalog.counts_by_root()
    roots = []
    for root in lib.catalog.roots():
        ok, _ = counts.get(root.id, (0, 0))
        online = root_online(lib.catalog, root)
        roots.append({"path": root.path, "state": "online" if online else "offline",
                      "photos": ok})
    failures: dict[str, int] = {}
    for _, reason in lib.catalog.failures():
        failures[reason] = failures.get(reason, 0) + 1
    try:
        runtime, device, engine = planned(lib.settings)
    except PhotofindError as exc:
        runtime, device, engine = lib.settings.runtime, lib.settings.device, str(exc)
    return {"photos": sum(c[0] for c in counts.values()),
            "failed": sum(c[1] for c in counts.values()),
            "model": lib.model, "device": device, "runtime": runtime, "engine": engine,
            "roots": roots, "failures": failures}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(lib: Library, full: bool = False) -> Iterator[Check]:
    problem = database_problem(lib.catalog.path, full)
    kind = "integrity_check" if full else "quick_check"
    yield Check("catalog", problem is None, problem or f"{kind} passed")
    yield _index_check(lib)
    yield _thumbs_check(lib)
    counts = lib.catalog.counts_by_root()
    for root in lib.catalog.roots():
        ok, _ = counts.get(root.id, (0, 0))
        online = root_online(lib.catalog, root)
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
    path = lib.files.index(manifest.generation)
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
        if not _finds_itself(index, photo_id, np.asarray(vec, np.float32)):
            return Check("index", False, f"photo {photo_id} is not its own nearest neighbour")
    return Check("index", True, f"{path.name}: {len(index)} vectors agree with the catalog"
                 + (f" ({newer} newer ones are added on load)" if newer else ""))


def _finds_itself(index: VectorIndex, photo_id: int, vec: np.ndarray[Any, Any]) -> bool:
    """The photo is among the best matches of its own vector. Identical copies
    tie for first place, so as long as every hit ties, look further."""
    k = 5
    while True:
        ids, scores = index.query(vec, k)
        tied = [int(i) for i, s in zip(ids, scores, strict=True) if s >= scores[0] - 1e-4]
        if photo_id in tied:
            return True
        if len(tied) < len(ids) or len(ids) < k:  # the tie ended, or nothing is left
            return False
        k *= 4


def _thumbs_check(lib: Library) -> Check:
    path = lib.files.thumbs
    problem = database_problem(path) if path.exists() else None
    if problem:
        return Check("thumbnails", False, problem)
    missing = len(missing_thumbnails(lib.catalog, lib.thumbs))
    return Check("thumbnails", missing == 0,
                 f"{missing} photos have no thumbnail" if missing else "every photo has one")


def _model_check(lib: Library) -> Check:
    from photofind.core.model.sources import model_problem

    problem = model_problem(lib.settings.model)
    return Check("model", problem is None, f"{lib.model}: {problem or 'available offline'}")


def repair(lib: Library) -> Iterator[str]:
    """Rebuild the index from stored vectors and make missing thumbnails (a
    damaged thumbnail store is moved aside as the writer opens it)."""
    count = lib.vectors.rebuild()
    yield f"index rebuilt from {count} stored vectors (nothing re-embedded)"
    store = lib.thumbs
    todo = [(pid, path) for pid, path, _ in missing_thumbnails(lib.catalog, store)
            if Path(path).is_file()]
    if todo:
        made = make_thumbnails(store, todo)
        yield f"{made} missing thumbnails made"
