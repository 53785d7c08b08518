"""Indexing: change set -> decode pool -> embed in batches -> one writer.

Decoding runs in worker processes started with ``spawn`` (never ``fork``, as
the parent may already run torch or Qt threads); they import only Pillow and
numpy. A bounded window of decodes is kept in flight so memory stays flat
however large the library. Each batch is embedded, then written in one
catalog transaction and added to the HNSW index, so a crash loses at most the
batch in flight and the next run resumes. ``run_index`` is a generator that
yields progress; closing it stops the run after the current batch.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field

import numpy as np

from photofind.core.catalog import NewPhoto, PhotoRow, Root
from photofind.core.imaging import Decoded, Failed, Preprocess, decode_file
from photofind.core.library import Library
from photofind.core.scanner import ChangeSet, FoundFile, scan

log = logging.getLogger(__name__)

SAVE_EVERY = 5000  # embedded photos between index-generation saves


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: int = 0
    embedded: int = 0
    offline: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        d = asdict(self)
        d.pop("offline")
        return d


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    rate: float  # images per second
    eta_s: float | None


@dataclass(frozen=True)
class _Job:
    root_id: int
    path: str
    size: int
    mtime_ns: int
    photo_id: int | None  # known photo being re-read
    reembed_only: bool = False  # photo unchanged, only its embedding is missing


def run_index(lib: Library, roots: list[Root] | None = None
              ) -> Generator[Progress, None, IndexReport]:
    """Bring the catalog and the index in line with the roots on disk."""
    catalog = lib.catalog
    roots = catalog.roots() if roots is None else roots
    changes = scan(catalog, roots, lib.dir)
    report = IndexReport(unchanged=changes.unchanged,
                         offline=[r.path for r in changes.offline])
    _apply_state(lib, changes, report)
    jobs = _jobs(lib, changes)
    if jobs:
        yield from _decode_and_embed(lib, jobs, report)
    lib.catch_up()
    lib.save_vectors()
    return report


def _apply_state(lib: Library, changes: ChangeSet, report: IndexReport) -> None:
    catalog = lib.catalog
    for root in changes.offline:
        if root.state != "offline":
            catalog.set_root_state(root.id, "offline")
            log.warning("folder %s is offline; its photos are kept", root.path)
    for root in changes.online:
        if root.state != "online":
            catalog.set_root_state(root.id, "online")
    if changes.moved:
        catalog.move_photos((row.id, f.root_id, f.path, f.mtime_ns) for row, f in changes.moved)
        report.moved = len(changes.moved)
    if changes.removed:
        ids = [row.id for row in changes.removed]
        catalog.delete_photos(ids)
        lib.thumbs.delete(ids)
        lib.forget_vectors(ids)
        report.removed = len(ids)


def _jobs(lib: Library, changes: ChangeSet) -> list[_Job]:
    jobs = [_Job(f.root_id, f.path, f.size, f.mtime_ns, None) for f in changes.new]
    jobs += [_Job(f.root_id, f.path, f.size, f.mtime_ns, row.id) for row, f in changes.changed]
    changed_ids = {row.id for row, _ in changes.changed}
    online = {r.id for r in changes.online}
    for row in lib.catalog.ok_photos_without_embedding(lib.model):
        if row.id not in changed_ids and row.root_id in online:
            jobs.append(_Job(row.root_id, row.path, row.size, row.mtime_ns, row.id, True))
    return jobs


def _decode_and_embed(lib: Library, jobs: list[_Job], report: IndexReport
                      ) -> Iterator[Progress]:
    embedder = lib.embedder()
    pre = embedder.preprocess
    batch: list[tuple[_Job, Decoded]] = []
    failures: list[tuple[_Job, Failed]] = []
    start = time.perf_counter()
    done = since_save = 0
    for job, result in _decode_all(jobs, pre):
        if isinstance(result, Failed):
            failures.append((job, result))
        else:
            batch.append((job, result))
        if len(batch) >= embedder.batch_size or len(failures) >= 64:
            n = _write(lib, batch, failures, report)
            done += len(batch) + len(failures)
            since_save += n
            batch, failures = [], []
            if since_save >= SAVE_EVERY:
                lib.save_vectors()
                since_save = 0
            yield _progress(done, len(jobs), report.embedded, start)
    if batch or failures:
        _write(lib, batch, failures, report)
        done += len(batch) + len(failures)
        yield _progress(done, len(jobs), report.embedded, start)


def _progress(done: int, total: int, embedded: int, start: float) -> Progress:
    elapsed = max(time.perf_counter() - start, 1e-6)
    rate = embedded / elapsed
    eta = (total - done) / (done / elapsed) if done else None
    return Progress(done, total, rate, eta)


def _decode_all(jobs: list[_Job], pre: Preprocess) -> Iterator[tuple[_Job, Decoded | Failed]]:
    """Decode in worker processes, a bounded window ahead, in completion order."""
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    window = workers * 8
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending: dict[Future[Decoded | Failed], _Job] = {}
        queue = iter(jobs)
        try:
            while True:
                while len(pending) < window:
                    job = next(queue, None)
                    if job is None:
                        break
                    pending[pool.submit(decode_file, job.path, pre)] = job
                if not pending:
                    return
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield pending.pop(future), future.result()
        finally:
            for future in pending:
                future.cancel()


def _write(lib: Library, batch: list[tuple[_Job, Decoded]],
           failures: list[tuple[_Job, Failed]], report: IndexReport) -> int:
    """Embed one batch and write it, with the batch's failures, in one transaction."""
    catalog = lib.catalog
    vectors = lib.embedder().encode_pixels(np.stack([d.pixels for _, d in batch])) \
        if batch else np.empty((0, 0), np.float32)
    reembed = [(job, vec) for (job, _), vec in zip(batch, vectors, strict=True)
               if job.reembed_only]
    if reembed:
        catalog.add_embeddings(lib.model, [j.photo_id or 0 for j, _ in reembed],
                               [v for _, v in reembed])
    fresh = [(job, dec, vec) for (job, dec), vec in zip(batch, vectors, strict=True)
             if not job.reembed_only]
    rows = [_new_photo(job, dec) for job, dec, _ in fresh]
    rows += [_failed_photo(job, fail) for job, fail in failures]
    vecs = [vec for _, _, vec in fresh] + [None] * len(failures)
    ids = catalog.write_batch(lib.model, rows, vecs)
    lib.thumbs.put_many((pid, dec.thumbnail) for pid, (_, dec, _) in zip(ids, fresh,
                                                                          strict=False))
    failed_ids = ids[len(fresh):]
    lib.forget_vectors(failed_ids)
    lib.catch_up()
    for job, _, _ in fresh:
        if job.photo_id is None:
            report.added += 1
        else:
            report.updated += 1
    report.failed += len(failures)
    report.embedded += len(batch)
    return len(batch)


def _new_photo(job: _Job, dec: Decoded) -> NewPhoto:
    return NewPhoto(job.root_id, job.path, job.size, job.mtime_ns, dec.phash, dec.width,
                    dec.height, dec.taken_at, None, job.photo_id)


def _failed_photo(job: _Job, fail: Failed) -> NewPhoto:
    return NewPhoto(job.root_id, job.path, job.size, job.mtime_ns, "", reason=fail.reason,
                    photo_id=job.photo_id)


__all__ = ["FoundFile", "IndexReport", "PhotoRow", "Progress", "run_index"]
