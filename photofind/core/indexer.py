"""Indexing: change set -> decode pool -> embed in batches -> one writer.

Decoding runs in isolated worker processes (decodepool.py); files that were
being decoded when photofind last died are retried alone first and
quarantined after two deaths (attempts.py). Each batch is embedded, then written in one
catalog transaction and added to the HNSW index, so a crash loses at most the
batch in flight and the next run resumes. ``run_index`` is a generator that
yields progress; closing it stops the run after the current batch.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Self

import numpy as np

from photofind.core.attempts import QUARANTINE_AFTER, AttemptLog, Suspect
from photofind.core.catalog import Root
from photofind.core.decodepool import DecodePool
from photofind.core.duplicates import rehash_older_copies
from photofind.core.errors import DiskFullError, PhotofindError, is_disk_full, is_not_writable
from photofind.core.imaging import Decoded, Failed, Preprocess
from photofind.core.library import Library
from photofind.core.model.encoder import Encoder
from photofind.core.model.sources import peek_preprocess
from photofind.core.records import FileRecord, mtime_date
from photofind.core.scanner import ChangeSet, scan
from photofind.core.textindex import WHOLE, Scope
from photofind.core.thumbs import make_thumbnails, missing_thumbnails

log = logging.getLogger(__name__)

FIRST_BATCH = 16


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

    @classmethod
    def since(cls, start: float, done: int, total: int, counted: int | None = None) -> Self:
        """``done`` of ``total`` since ``start`` (perf_counter); the rate is of
        ``counted`` (default: ``done``), the time left at the pace of ``done``."""
        elapsed = max(time.perf_counter() - start, 1e-6)
        eta = (total - done) / (done / elapsed) if done else None
        return cls(done, total, (done if counted is None else counted) / elapsed, eta)


def _reembed_only(job: FileRecord) -> bool:
    """A job is a file record: one the scanner found (with the id of the photo
    it replaces, if any), or one read from the catalog (status "ok": the photo
    is unchanged and only lacks this model's embedding)."""
    return job.status == "ok"


def run_index(lib: Library, roots: list[Root] | None = None
              ) -> Generator[Progress, None, IndexReport]:
    """Bring the catalog and the index in line with the roots on disk."""
    roots = lib.catalog.roots() if roots is None else roots
    return (yield from apply_changes(lib, scan(lib.catalog, roots, lib.dir)))


def apply_changes(lib: Library, changes: ChangeSet) -> Generator[Progress, None, IndexReport]:
    """Write a change set: moves, removals, then decode and embed what is new."""
    try:
        return (yield from _apply_changes(lib, changes))
    except (OSError, sqlite3.Error) as exc:
        if is_disk_full(exc):
            raise DiskFullError(
                f"The disk holding the library ({lib.dir}) is full: free some space and run"
                " the index again (everything indexed so far is kept).") from exc
        if is_not_writable(exc):
            raise PhotofindError(
                f"Cannot write to {_unwritable(lib)} (permission denied): fix its permissions"
                " and run the index again (everything indexed so far is kept).") from exc
        raise


def _unwritable(lib: Library) -> str:
    """The library file (or the folder) that refuses writes, as best it can be told."""
    for path in (lib.dir, *sorted(lib.dir.glob("*.sqlite3*"))):
        if not os.access(path, os.W_OK):
            return str(path)
    return f"the library {lib.dir}"


def _apply_changes(lib: Library, changes: ChangeSet) -> Generator[Progress, None, IndexReport]:
    report = IndexReport(unchanged=changes.unchanged,
                         offline=[r.path for r in changes.offline] + sorted(changes.absent))
    _apply_state(lib, changes, report)
    jobs = _jobs(lib, changes)
    newest = lib.catalog.newest_photo_id()  # photos above it are this run's
    if jobs:
        yield from _decode_and_embed(lib, jobs, report)
    lib.vectors.catch_up()
    if changes.scope is None:
        lib.vectors.save()  # a full pass ends with the index file current
    else:
        lib.vectors.save_if_due()  # a watcher batch: only when the unsaved part is large
    _fill_thumbnails(lib, changes)
    scope = _scope_ids(changes)
    yield from _read_text(lib, None if scope is None else Scope(frozenset(scope), newest))
    return report  # labels are derived data, caught up off this path (core/albums.py)


def _read_text(lib: Library, scope: Scope | None) -> Iterator[Progress]:
    """The words in photos are read after the CLIP pass (core/reading.py): a
    full pass catches up the whole library, a watcher batch its own photos."""
    from photofind.core.reading import StopReading, read_text

    with contextlib.suppress(StopReading):  # the watcher has files to index first
        yield from read_text(lib, scope=scope or WHOLE)


def _fill_thumbnails(lib: Library, changes: ChangeSet) -> None:
    """Thumbnails lost to a crash or a full disk are made on the next run."""
    online = {r.id for r in changes.online}
    todo = [(pid, path) for pid, path, root_id
            in missing_thumbnails(lib.catalog, lib.thumbs, _scope_ids(changes))
            if root_id in online]
    if todo:
        if changes.scope is None:
            log.info("making %d thumbnails an earlier run did not store", len(todo))
        make_thumbnails(lib.thumbs, todo)


def _scope_ids(changes: ChangeSet) -> set[int] | None:
    """The photo ids a change set's catch-up looks at (None: the whole library):
    those the scan knew in its folders, and those it found changed or moved."""
    if changes.scope is None:
        return None
    return changes.scope | {row.id for row, _ in changes.changed} \
        | {row.id for row, _ in changes.moved}


def _apply_state(lib: Library, changes: ChangeSet, report: IndexReport) -> None:
    catalog = lib.catalog
    for root in changes.offline:
        if root.state != "offline":
            catalog.set_root_state(root.id, "offline")
    for root in changes.online:
        place = changes.places.get(root.id)
        if root.state != "online" or (place is not None and (root.dev, root.ino) != place):
            catalog.set_root_state(root.id, "online", place)
    if changes.refreshed:
        catalog.refresh_identity(changes.refreshed)
    if changes.moved:
        catalog.move_photos(replace(f, id=row.id) for row, f in changes.moved)
        report.moved = len(changes.moved)
    if changes.removed:
        ids = [row.id for row in changes.removed]
        catalog.delete_photos(ids)
        lib.thumbs.delete(ids)
        lib.vectors.forget(ids)
        report.removed = len(ids)


def _jobs(lib: Library, changes: ChangeSet) -> list[FileRecord]:
    jobs = list(changes.new)
    jobs += [replace(f, id=row.id) for row, f in changes.changed]
    changed_ids = {row.id for row, _ in changes.changed}
    online = {r.id for r in changes.online}
    scope = _scope_ids(changes)
    missing = lib.catalog.ok_photos_without_embedding(lib.model) if scope is None \
        else lib.catalog.ok_photos_without_embedding_among(lib.model, scope)
    catch_up = [row for row in missing if row.id not in changed_ids and row.root_id in online]
    if catch_up and scope is None:
        log.info("embedding %d photos that have no vector from %s yet", len(catch_up),
                 lib.model)
    return jobs + catch_up


def _decode_and_embed(lib: Library, jobs: list[FileRecord], report: IndexReport
                      ) -> Iterator[Progress]:
    attempts = AttemptLog(lib.catalog.path)
    try:
        suspects, quarantined, rest = _triage(attempts.recover(), jobs)
        if quarantined:
            _write(lib, lib.embedder, [],
                   [(job, Failed("crashed decoder")) for job in quarantined], report)
            for job in quarantined:
                attempts.finish(job.path)
        never_opened = [(job, Failed(job.problem)) for job in rest if job.problem]
        if never_opened:
            rest = [job for job in rest if not job.problem]
            _write(lib, lib.embedder, [], never_opened, report)
        yield Progress(0, len(jobs), 0.0, None)  # the bar shows while the model loads
        preprocess, embedder = _model_soon(lib)
        with DecodePool(preprocess, notes=lib.catalog.path) as pool:
            def run(part: list[FileRecord], in_flight: int | None) -> Generator[
                    tuple[FileRecord, Decoded | Failed], None, None]:
                return pool.run(part, lambda j: j.path,
                                started=lambda j: attempts.start(j.path, j.size, j.mtime_ns),
                                finished=lambda j: attempts.finish(j.path),
                                max_in_flight=in_flight)

            # Files that were in flight when photofind died go first, one at a time.
            runs = [run(suspects, 1), run(rest, None)]
            try:
                yield from _embed_stream(lib, itertools.chain(*runs), len(jobs), embedder,
                                         report)
            finally:  # a run stopped early: its feeder thread ends before the pool closes
                for part in runs:
                    part.close()
    finally:
        attempts.close()


def _model_soon(lib: Library) -> tuple[Preprocess, Callable[[], Encoder]]:
    """The model's input geometry now, and the model itself when first needed.

    When the geometry can be read from the model's config file, the model loads
    in a thread while the decode workers start on the photos (seconds saved on
    every run); otherwise it loads here first.
    """
    early = None if lib.model_loaded else peek_preprocess(lib.settings.model)
    if early is None:
        embedder = lib.embedder()
        return embedder.preprocess, lambda: embedder
    lib.load_model_soon(images=True)

    def get() -> Encoder:
        embedder = lib.embedder()
        if embedder.preprocess != early:
            raise RuntimeError(f"{lib.model}: its config file and open_clip disagree on"
                               f" the input geometry ({early} vs {embedder.preprocess})")
        return embedder
    return early, get


def _triage(suspects: dict[str, Suspect], jobs: list[FileRecord]
            ) -> tuple[list[FileRecord], list[FileRecord], list[FileRecord]]:
    """Split jobs into (retry alone first, quarantine now, the rest)."""
    first, quarantined, rest = [], [], []
    for job in jobs:
        note = suspects.get(job.path)
        if note is None or (note.size, note.mtime_ns) != (job.size, job.mtime_ns):
            rest.append(job)  # unsuspected, or changed since: a new chance
        elif note.deaths >= QUARANTINE_AFTER:
            quarantined.append(job)
        else:
            first.append(job)
    return first, quarantined, rest


def _embed_stream(lib: Library, stream: Iterator[tuple[FileRecord, Decoded | Failed]], total: int,
                  embedder: Callable[[], Encoder], report: IndexReport) -> Iterator[Progress]:
    batch_size = FIRST_BATCH  # until the model (and so its device) is known
    batch: list[tuple[FileRecord, Decoded]] = []
    failures: list[tuple[FileRecord, Failed]] = []
    start = time.perf_counter()
    done = 0
    for job, result in stream:
        if isinstance(result, Failed):
            failures.append((job, result))
        else:
            batch.append((job, result))
        if len(batch) >= batch_size or len(failures) >= 64:
            batch_size = embedder().batch_size if batch else batch_size
            _write(lib, embedder, batch, failures, report)
            done += len(batch) + len(failures)
            batch, failures = [], []
            lib.vectors.save_if_due()
            yield Progress.since(start, done, total, report.embedded)
    if batch or failures:
        _write(lib, embedder, batch, failures, report)
        done += len(batch) + len(failures)
        yield Progress.since(start, done, total, report.embedded)


def _write(lib: Library, embedder: Callable[[], Encoder], batch: list[tuple[FileRecord, Decoded]],
           failures: list[tuple[FileRecord, Failed]], report: IndexReport) -> int:
    """Embed one batch and write it, with the batch's failures, in one transaction."""
    catalog = lib.catalog
    vectors = embedder().encode_images(np.stack([d.pixels for _, d in batch])) \
        if batch else np.empty((0, 0), np.float32)
    reembed = [(job, vec) for (job, _), vec in zip(batch, vectors, strict=True)
               if _reembed_only(job)]
    if reembed:
        catalog.add_embeddings(lib.model, [j.id for j, _ in reembed],
                               [v for _, v in reembed])
    fresh = [(job, dec, vec) for (job, dec), vec in zip(batch, vectors, strict=True)
             if not _reembed_only(job)]
    # An unchanged photo that could not be read for a new model (its drive went away
    # meanwhile) keeps its row and its other models' vectors; the next run retries it.
    failures = [(job, fail) for job, fail in failures if not _reembed_only(job)]
    rows = [_new_photo(job, dec) for job, dec, _ in fresh]
    rows += [_failed_photo(job, fail) for job, fail in failures]
    vecs = [vec for _, _, vec in fresh] + [None] * len(failures)
    ids = catalog.write_batch(lib.model, rows, vecs)
    rehash_older_copies(catalog, rows[:len(fresh)])
    lib.thumbs.put_many((pid, dec.thumbnail) for pid, (_, dec, _) in zip(ids, fresh,
                                                                          strict=False))
    failed_ids = ids[len(fresh):]
    lib.vectors.forget(failed_ids)
    lib.vectors.catch_up()
    for job, _, _ in fresh:
        if not job.id:
            report.added += 1
        else:
            report.updated += 1
    report.failed += len(failures)
    report.embedded += len(batch)
    return len(batch)


def _new_photo(job: FileRecord, dec: Decoded) -> FileRecord:
    """The record with what its decode learnt; dated by its file time without EXIF."""
    taken_at, source = (dec.taken_at, dec.taken_source) if dec.taken_at \
        else (mtime_date(job.mtime_ns), "mtime")
    return replace(job, quick_hash=dec.quick_hash, content_hash=dec.content_hash or None,
                   width=dec.width, height=dec.height, taken_at=taken_at, taken_source=source)


def _failed_photo(job: FileRecord, fail: Failed) -> FileRecord:
    return replace(job, reason=fail.reason)
