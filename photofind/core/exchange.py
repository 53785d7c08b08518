"""Moving embeddings in and out of a library as Parquet shards (parquetio.py).

``import_shards`` attaches embeddings made elsewhere (``photofind cluster
embed``, another library's export) to the files of this library, as its writer:
a shard row gives its embedding to the file at its path (after ``--map``
prefixes) only when the file has the row's size and quick hash, and its whole
content hash where the row has one, so no photo is ever given another photo's
vector. Those photos are written through the catalog's own write path, get
their thumbnails as indexing makes them, and the vector cache catches up;
nothing is re-embedded and nothing is deleted. Whatever does not match is
counted and reported (``photofind index`` embeds it here).

``export_shards`` writes a library's embeddings in the same format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from photofind.core import parquetio
from photofind.core.catalog import Vector
from photofind.core.errors import PhotofindError
from photofind.core.imaging import content_hash, partial_hash
from photofind.core.library import Library
from photofind.core.records import FileRecord, mtime_date
from photofind.core.scanner import scan
from photofind.core.thumbs import make_thumbnails

log = logging.getLogger(__name__)

WRITE_BATCH = 500  # photos per catalog transaction
SHOWN = 5  # paths kept per kind of mismatch, for the report


@dataclass
class Tally:
    """How many rows fell in one kind, and the first few of their paths."""

    count: int = 0
    paths: list[str] = field(default_factory=list)

    def add(self, path: str) -> None:
        self.count += 1
        if len(self.paths) < SHOWN:
            self.paths.append(path)


@dataclass
class ImportReport:
    rows: int = 0  # rows in the shards
    complete: bool = True  # the run that made them had finished
    attached: int = 0  # photos given their embedding, none re-embedded
    kept: int = 0  # rows of photos that already had an embedding of the model
    changed: Tally = field(default_factory=Tally)  # the file is not what was embedded
    unreadable: Tally = field(default_factory=Tally)  # could not be read where embedded
    # no readable photo of the library's online folders at that path
    outside: Tally = field(default_factory=Tally)
    not_in_shards: Tally = field(default_factory=Tally)  # files here that no row covers

    def counts(self) -> dict[str, int]:
        return {"rows": self.rows, "attached": self.attached, "kept": self.kept,
                **{name: getattr(self, name).count for name in
                   ("changed", "unreadable", "outside", "not_in_shards")}}


@dataclass(frozen=True)
class _Target:
    """A file of the library that a shard row may give its embedding to."""

    found: FileRecord | None  # a file new (or changed) since the catalog saw it
    row: FileRecord | None  # a known photo: replaced by ``found``, or only lacking a vector


def import_shards(lib: Library, folder: Path, maps: Sequence[tuple[str, str]] = ()
                  ) -> ImportReport:
    """Attach the embeddings in ``folder`` to the files of the library (as writer)."""
    manifest = parquetio.read_manifest(folder)
    if manifest.model != lib.model:
        raise PhotofindError(
            f"The embeddings in {folder} were made by the model {manifest.model}, and this"
            f" library searches with {lib.model}: import them with --model {manifest.model}.")
    dim = lib.catalog.embedding_dim(lib.model)
    if dim is not None and dim != manifest.dim:
        raise PhotofindError(f"The embeddings in {folder} have {manifest.dim} dimensions, the"
                             f" library's {dim}: they are not from the same model.")
    changes = scan(lib.catalog, lib.catalog.roots(), lib.dir)
    targets = _targets(lib, changes.new + [f for _, f in changes.changed],
                       {f.path: row for row, f in changes.changed})
    report = ImportReport(complete=manifest.complete)
    writes: list[tuple[_Target, parquetio.Record]] = []
    for shard in manifest.shards:
        for record in parquetio.read_shard(folder / shard.file):
            report.rows += 1
            path = _mapped(record.path, maps)
            target = _match(lib, targets.pop(path, None), path, record, report)
            if target is not None:
                writes.append((target, record))
                if len(writes) >= WRITE_BATCH:
                    report.attached += _write(lib, writes)
                    writes = []
    report.attached += _write(lib, writes)
    for path in sorted(targets):
        report.not_in_shards.add(path)
    lib.vectors.save()  # each write caught the index up
    return report


def _match(lib: Library, target: _Target | None, path: str, record: parquetio.Record,
           report: ImportReport) -> _Target | None:
    """The target when the row may give it its embedding; else the row is counted."""
    if target is None:
        known = lib.catalog.photo_by_path(path)
        if known is not None and known.status == "ok":
            report.kept += 1
        else:
            report.outside.add(path)
    elif record.embedding is None:
        report.unreadable.add(path)
    elif not _same_file(target, record):
        report.changed.add(path)
    else:
        return target
    return None


def _targets(lib: Library, found: list[FileRecord], replaced: dict[str, FileRecord]
             ) -> dict[str, _Target]:
    """path -> what an embedding may go to: files new or changed since the catalog
    saw them, and readable photos without an embedding of the model."""
    targets = {f.path: _Target(f, replaced.get(f.path)) for f in found if not f.problem}
    for row in lib.catalog.ok_photos_without_embedding(lib.model):  # on connected drives
        if row.path not in targets:
            targets[row.path] = _Target(None, row)
    return targets


def _mapped(path: str, maps: Sequence[tuple[str, str]]) -> str:
    """The path a row names, with the first matching ``FROM=TO`` prefix replaced."""
    for old, new in maps:
        if path == old or path.startswith(old.rstrip("/\\") + "/"):
            return new.rstrip("/\\") + path[len(old.rstrip("/\\")):]
    return path


def _same_file(target: _Target, record: parquetio.Record) -> bool:
    """Whether the file here is the one the row was made from: same size and quick
    hash, and the same whole content where the row knows it (else its file time)."""
    if target.found is None and target.row is not None:  # unchanged: the catalog knows it
        row = target.row
        if (row.size, row.quick_hash) != (record.size, record.quick_hash):
            return False
        if record.content_hash is None:  # size and quick hash alone: the file time too
            return row.mtime_ns == record.mtime_ns
        if row.content_hash == record.content_hash:
            return True
        return _hash_matches(partial(content_hash, like=record.content_hash), row.path,
                             record.content_hash)
    assert target.found is not None
    found = target.found
    if found.size != record.size or not _hash_matches(
            lambda p: partial_hash(p, found.size), found.path, record.quick_hash):
        return False
    if record.content_hash is None:  # size and quick hash alone: the file time too
        return found.mtime_ns == record.mtime_ns
    return _hash_matches(partial(content_hash, like=record.content_hash), found.path,
                         record.content_hash)


def _hash_matches(hasher: Callable[[str], str], path: str, expected: str | None) -> bool:
    try:
        return expected is not None and hasher(path) == expected
    except OSError:
        return False


def _write(lib: Library, writes: list[tuple[_Target, parquetio.Record]]) -> int:
    """One catalog transaction for new and replaced files (thumbnails made as
    indexing makes them), one for photos that only lacked the embedding."""
    fresh = [(t.found, t.row, r) for t, r in writes if t.found is not None]
    rows = [replace(f, id=row.id if row else 0, quick_hash=r.quick_hash or "", width=r.width,
                    height=r.height, taken_at=r.taken_at or mtime_date(f.mtime_ns),
                    taken_source=None if r.taken_at else "mtime",
                    content_hash=r.content_hash) for f, row, r in fresh]
    vectors: list[Vector | None] = [r.embedding for _, _, r in fresh]
    if rows:
        ids = lib.catalog.write_batch(lib.model, rows, vectors)
        make_thumbnails(lib.thumbs, [(pid, f.path) for pid, (f, _, _) in zip(ids, fresh,
                                                                             strict=True)])
    known = [(t.row.id, r.embedding) for t, r in writes
             if t.found is None and t.row is not None and r.embedding is not None]
    if known:
        lib.catalog.add_embeddings(lib.model, [pid for pid, _ in known],
                                   [vec for _, vec in known])
    lib.vectors.catch_up()
    return len(writes)


# --- export ------------------------------------------------------------------

def export_shards(lib: Library, out: Path, shard_size: int = 10_000,
                  dtype: str = "float16") -> parquetio.Manifest:
    """Write the library's embeddings of its model to ``out`` (a new folder)."""
    parquetio.pyarrow_module()
    if (out / parquetio.MANIFEST).exists():
        raise PhotofindError(f"{out} already holds embeddings: export into a new folder.")
    dim = lib.catalog.embedding_dim(lib.model)
    if dim is None:
        raise PhotofindError(f"The library has no embeddings of {lib.model} to export: index"
                             " it first.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PhotofindError(f"Cannot create {out}: {exc.strerror or exc}.") from exc
    manifest = parquetio.Manifest(lib.model, dim, dtype,
                                  roots=[r.path for r in lib.catalog.roots()])
    for index, chunk in enumerate(_chunks(_exported(lib), shard_size)):
        manifest.shards.append(parquetio.write_shard(out, parquetio.shard_name(index), chunk,
                                                     lib.model, dim, dtype))
    manifest.complete = True
    parquetio.write_manifest(out, manifest)
    return manifest


def _exported(lib: Library) -> Iterator[parquetio.Record]:
    for p in lib.catalog.embedded_photos(lib.model):
        yield parquetio.Record(p.path, p.size, p.mtime_ns, p.quick_hash, p.taken_at, p.width,
                               p.height, p.vector, None, p.content_hash)


def _chunks(records: Iterator[parquetio.Record], size: int
            ) -> Iterator[list[parquetio.Record]]:
    chunk: list[parquetio.Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
