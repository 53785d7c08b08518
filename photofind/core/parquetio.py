"""Embeddings as Parquet shards: the schema, writing and reading shards, the manifest.

A folder of embeddings (made by ``photofind cluster embed`` or ``photofind
export --parquet``) holds ``part-NNNNN.parquet`` shards and a ``manifest.json``
naming the model, the dimension and every shard with its counts. One row per
file: path, size, mtime_ns, quick hash (imaging.partial_hash), content hash,
capture date, width, height, model id, the embedding as a fixed-size list of
float16 or float32 (null for a file that could not be read) and the reason it
could not. Other tools (clip-retrieval, LAION's) read such Parquet embeddings.

Every file is written beside its final name and renamed into place (after an
fsync), so a shard or manifest that exists is whole. pyarrow is imported only
here, and only when a shard is read or written, so the rest of photofind runs
without it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from photofind.core.errors import PhotofindError
from photofind.core.vectors import fsync_dir

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT = "photofind-embeddings/1"
MANIFEST = "manifest.json"
DTYPES = ("float16", "float32")
PYARROW_MISSING = ("Parquet embeddings need pyarrow, which is not installed: pip install"
                   " 'photofind[cluster]' (or pip install pyarrow).")


@dataclass(frozen=True)
class Record:
    """One file of a shard; ``embedding`` is None when it could not be read."""

    path: str
    size: int
    mtime_ns: int
    quick_hash: str | None
    taken_at: str | None = None
    width: int | None = None
    height: int | None = None
    embedding: npt.NDArray[np.float32] | None = None
    reason: str | None = None
    content_hash: str | None = None


@dataclass(frozen=True)
class ShardInfo:
    file: str
    rows: int
    embedded: int
    failed: int
    bytes: int


@dataclass
class Manifest:
    model: str
    dim: int
    dtype: str
    shards: list[ShardInfo] = field(default_factory=list)
    complete: bool = False
    roots: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"rows": sum(s.rows for s in self.shards),
                "embedded": sum(s.embedded for s in self.shards),
                "failed": sum(s.failed for s in self.shards)}

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "model": self.model, "dim": self.dim, "dtype": self.dtype,
                "complete": self.complete, "roots": self.roots, "counts": self.counts(),
                "shards": [vars(s) for s in self.shards]}


def pyarrow_module() -> Any:
    """pyarrow, or one sentence saying how to get it."""
    try:
        import pyarrow
        import pyarrow.parquet  # the writer and reader live there
    except ImportError as exc:
        raise PhotofindError(PYARROW_MISSING) from exc
    return pyarrow


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def schema(dim: int, dtype: str) -> pa.Schema:
    pa = pyarrow_module()
    value = pa.float16() if dtype == "float16" else pa.float32()
    return pa.schema([
        ("path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()),
        ("quick_hash", pa.string()), ("content_hash", pa.string()),
        ("taken_at", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
        ("model", pa.string()), ("embedding", pa.list_(value, dim)), ("reason", pa.string()),
    ])


def _table(records: Sequence[Record], model: str, dim: int, dtype: str) -> pa.Table:
    pa = pyarrow_module()
    sch = schema(dim, dtype)
    missing = np.array([r.embedding is None for r in records], dtype=bool)
    matrix = np.zeros((len(records), dim), dtype=dtype)
    for i, r in enumerate(records):
        if r.embedding is not None:
            matrix[i] = r.embedding
    values = pa.array(matrix.reshape(-1), type=sch.field("embedding").type.value_type)
    embedding = pa.FixedSizeListArray.from_arrays(values, dim, mask=pa.array(missing))
    columns = {
        "path": [r.path for r in records], "size": [r.size for r in records],
        "mtime_ns": [r.mtime_ns for r in records],
        "quick_hash": [r.quick_hash for r in records],
        "content_hash": [r.content_hash for r in records],
        "taken_at": [r.taken_at for r in records], "width": [r.width for r in records],
        "height": [r.height for r in records], "model": [model] * len(records),
    }
    arrays = [pa.array(columns[f.name], type=f.type) for f in sch if f.name in columns]
    return pa.Table.from_arrays([*arrays, embedding, pa.array([r.reason for r in records],
                                                              type=pa.string())], schema=sch)


def write_shard(folder: Path, name: str, records: Sequence[Record], model: str, dim: int,
                dtype: str) -> ShardInfo:
    """Write one shard (rows sorted by path) whole or not at all."""
    pq = pyarrow_module().parquet
    ordered = sorted(records, key=lambda r: r.path)
    table = _table(ordered, model, dim, dtype)
    final = folder / name
    with _atomic(final) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    embedded = sum(r.embedding is not None for r in ordered)
    return ShardInfo(name, len(ordered), embedded, len(ordered) - embedded,
                     final.stat().st_size)


def shard_info(path: Path) -> ShardInfo | None:
    """The counts of a whole shard, None when there is no readable shard there."""
    pa = pyarrow_module()
    try:
        reasons = pa.parquet.read_table(path, columns=["reason"]).column("reason")
    except (OSError, ValueError, pa.ArrowException):
        return None
    failed = len(reasons) - reasons.null_count
    return ShardInfo(path.name, len(reasons), len(reasons) - failed, failed,
                     path.stat().st_size)


def read_shard(path: Path) -> Iterator[Record]:
    """The records of one shard (embeddings as float32)."""
    pq = pyarrow_module().parquet
    try:
        table = pq.read_table(path)
    except (OSError, pyarrow_module().ArrowException) as exc:
        raise PhotofindError(f"The shard {path} cannot be read ({exc}).") from exc
    cols = {name: table.column(name).to_pylist() for name in table.column_names
            if name != "embedding"}
    emb = table.column("embedding").combine_chunks()
    dim = emb.type.list_size
    flat = emb.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    # flatten() leaves out null lists: walk the valid rows in order.
    matrix = flat.reshape(-1, dim) if dim else flat.reshape(0, 0)
    valid = emb.is_valid().to_numpy(zero_copy_only=False)
    row = 0
    for i in range(table.num_rows):
        vec = None
        if valid[i]:
            vec = matrix[row]
            row += 1
        yield Record(cols["path"][i], cols["size"][i], cols["mtime_ns"][i],
                     cols["quick_hash"][i], cols["taken_at"][i], cols["width"][i],
                     cols["height"][i], vec, cols["reason"][i], cols["content_hash"][i])


def listing_table(columns: dict[str, list[Any]]) -> pa.Table:
    """Plain columns as an Arrow table (what a pipeline's first stage reads)."""
    return pyarrow_module().table(columns)


# --- the manifest and other small files -----------------------------------

def write_manifest(folder: Path, manifest: Manifest) -> None:
    write_json(folder / MANIFEST, manifest.to_json())


def read_manifest(folder: Path) -> Manifest:
    """The manifest of a folder of embeddings, or one sentence saying why not."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise PhotofindError(f"There is no folder {folder}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PhotofindError(
            f"{folder} has no {MANIFEST}: it is not a folder of photofind embeddings (made by"
            " `photofind cluster embed` or `photofind export --parquet`).") from None
    except (OSError, ValueError) as exc:
        raise PhotofindError(f"The manifest {path} cannot be read ({exc}).") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PhotofindError(f"{path} is not a manifest this photofind reads"
                             f" (format {data.get('format') if isinstance(data, dict) else '?'};"
                             f" expected {FORMAT}).")
    try:
        shards = [ShardInfo(**s) for s in data["shards"]]
        return Manifest(str(data["model"]), int(data["dim"]), str(data["dtype"]), shards,
                        bool(data.get("complete")), list(data.get("roots") or []))
    except (KeyError, TypeError, ValueError) as exc:
        raise PhotofindError(f"The manifest {path} is incomplete ({exc}).") from exc


def write_json(path: Path, data: object) -> None:
    with _atomic(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)


@contextlib.contextmanager
def _atomic(final: Path) -> Iterator[Path]:
    """Yield a temporary name beside ``final``; once written, fsync and rename it."""
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        fsync_dir(final.parent)


def clean_temporaries(folder: Path) -> None:
    """Remove what a killed writer left half written."""
    for tmp in folder.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
