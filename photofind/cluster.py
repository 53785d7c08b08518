"""``photofind cluster embed``: embed an archive on a Ray cluster into Parquet shards.

The only module that imports ray. The driver lists the files with the
scanner's own walk (the formats and skips of indexing), sorts them by path and
cuts them into shards of ``shard_size`` paths; the cut (the first path of every
shard) is kept in ``plan.json``, so a rerun puts every file in the shard it had
before and skips the shards already written. A Ray Data pipeline then decodes
the files in one of photofind's isolated decode processes (decodepool.py,
imaging.decode_file: draft decoding, EXIF orientation, the same failure
reasons; a crash or a hang costs one file) and embeds them in actors that hold
the model (the Encoder from core/model): CPU actors run ONNX Runtime and decode
their own batches; GPU actors (when asked) run torch with CUDA and are fed by
decoding actors of their own. The rows stream back to the driver, which
writes each shard as soon as all its rows are in (temp file, fsync, rename;
see core/parquetio.py) and the manifest after it. The driver's ``PHOTOFIND_*``
settings (``PHOTOFIND_DECODE_TIMEOUT`` ...) apply on the workers.

The files must be readable at the same paths on every worker (a NAS mounted
alike), and the model folder too: workers never download anything.
"""

from __future__ import annotations

import bisect
import logging
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from photofind.core import parquetio
from photofind.core.config import Settings
from photofind.core.decodepool import DecodePool
from photofind.core.errors import PhotofindError
from photofind.core.imaging import Decoded, Preprocess, partial_hash
from photofind.core.model.encoder import Encoder
from photofind.core.model.loading import is_onnx_spec, load_encoder
from photofind.core.scanner import walk

log = logging.getLogger(__name__)

RAY_MISSING = ("photofind cluster needs Ray, which is not installed: pip install"
               " 'photofind[cluster]' (on this machine and on every worker).")
PLAN = "plan.json"
Batch = dict[str, npt.NDArray[Any]]


@dataclass(frozen=True)
class ClusterOptions:
    """How the work is spread (see the README's section on sizing workers)."""

    address: str | None = None  # a running cluster (ray start --head); None: a local one
    shard_size: int = 10_000  # files per Parquet shard
    batch_size: int | None = None  # pictures per embedding call (default: the model's)
    decode_batch: int = 16  # files per decoding call
    cpus_per_actor: int = 1  # ONNX Runtime threads of each embedding actor
    actors: int | None = None  # embedding actors (default: up to what the CPUs allow)
    gpus: bool = False  # one GPU per actor, the model on torch + CUDA
    decode_memory_mb: int | None = None  # memory Ray reserves per decoding actor
    dtype: str = "float16"  # how the embeddings are stored


@dataclass
class EmbedReport:
    files: int = 0  # files listed now
    shards: int = 0
    written: int = 0  # shards written by this run
    skipped: int = 0  # shards a previous run had written
    embedded: int = 0  # rows with an embedding, in every shard
    failed: int = 0  # rows of files that could not be read
    late: int = 0  # files new since their (written) shard was made: not in it
    seconds: float = 0.0


@dataclass(frozen=True)
class _File:
    path: str
    size: int
    mtime_ns: int
    problem: str | None  # never opened (a bad name, a pipe, a broken link)


def ray_module() -> Any:
    """ray, or one sentence saying how to get it."""
    try:
        import ray
        import ray.data  # the pipeline
    except ImportError as exc:
        raise PhotofindError(RAY_MISSING) from exc
    return ray


def embed(roots: Sequence[Path], out: Path, spec: str, options: ClusterOptions,
          progress: Callable[[str], None] = lambda _: None) -> EmbedReport:
    """Embed every photo under ``roots`` into shards in ``out`` (resumable)."""
    ray = ray_module()
    parquetio.pyarrow_module()
    start = time.perf_counter()
    if options.dtype not in parquetio.DTYPES:
        raise PhotofindError(f"Unknown embedding type {options.dtype!r}: choose float16 or"
                             " float32.")
    if options.gpus and is_onnx_spec(spec):
        raise PhotofindError(f"--gpus runs the model on torch with CUDA, and {spec} is an ONNX"
                             " folder (CPU only): give the open_clip model instead.")
    folders = [_root(r) for r in roots]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PhotofindError(f"Cannot create {out}: {exc.strerror or exc}.") from exc
    parquetio.clean_temporaries(out)
    encoder = _load(spec, "cpu")  # checks the model here first; its geometry and id
    files = list_files(folders)
    firsts = _plan(out, [str(f) for f in folders], encoder.model_id, files, options.shard_size)
    by_shard: dict[int, list[_File]] = defaultdict(list)
    for f in files:
        by_shard[max(0, bisect.bisect_right(firsts, f.path) - 1)].append(f)
    manifest = parquetio.Manifest(encoder.model_id, encoder.dim, options.dtype,
                                  roots=[str(f) for f in folders])
    report = EmbedReport(files=len(files), shards=len(firsts))
    todo = _resume(out, by_shard, len(firsts), encoder, manifest, report)
    if report.skipped:
        progress(f"{report.skipped} of {len(firsts)} shards were written before; skipping"
                 " them")
    if any(todo.values()):
        started = _start(ray, options.address)
        try:
            _run(ray, todo, encoder, spec, options, out, manifest, report, progress)
        finally:
            if started:
                ray.shutdown()
    manifest.complete = True
    parquetio.write_manifest(out, manifest)
    counts = manifest.counts()
    report.embedded, report.failed = counts["embedded"], counts["failed"]
    report.seconds = time.perf_counter() - start
    return report


def _resume(out: Path, by_shard: dict[int, list[_File]], count: int, encoder: Encoder,
            manifest: parquetio.Manifest, report: EmbedReport) -> dict[int, list[_File]]:
    """The shards still to write, after taking in those a previous run wrote whole."""
    done = _written_shards(out, count)
    for index, info in sorted(done.items()):
        manifest.shards.append(info)
        report.late += max(0, len(by_shard.get(index, [])) - info.rows)
    report.skipped = len(done)
    todo = {i: by_shard.get(i, []) for i in range(count) if i not in done}
    for index in [i for i, rows in todo.items() if not rows]:  # its files all went since
        _add_shard(out, manifest, parquetio.write_shard(
            out, parquetio.shard_name(index), [], encoder.model_id, encoder.dim,
            manifest.dtype))
    parquetio.write_manifest(out, manifest)
    return todo


def _root(path: Path) -> Path:
    real = path.expanduser().resolve()
    if not real.is_dir():
        raise PhotofindError(f"There is no folder {path}.")
    return real


def _load(spec: str, device: str) -> Encoder:
    """The model as photofind loads it (an Encoder)."""
    return load_encoder(Settings(Path(tempfile.gettempdir()), spec, device))


def list_files(roots: Sequence[Path]) -> list[_File]:
    """Every photo file under the roots, as indexing finds them, sorted by path."""
    files: list[_File] = []
    for root in roots:
        unreadable: set[str] = set()
        files += [_File(e.path, e.size, e.mtime_ns, e.problem) for e in walk(root, None,
                                                                             unreadable)]
        for folder in sorted(unreadable):
            log.warning("the folder %s cannot be listed: its files are not embedded", folder)
    # Nested roots list some files twice: each is one row.
    return sorted({f.path: f for f in files}.values(), key=lambda f: f.path)


def _plan(out: Path, roots: list[str], model: str, files: list[_File], size: int) -> list[str]:
    """The first path of every shard: made by the first run, kept by the next ones."""
    path = out / PLAN
    if path.is_file():
        import json

        try:
            plan = json.loads(path.read_text(encoding="utf-8"))
            firsts, old_roots, old_model = plan["firsts"], plan["roots"], plan["model"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PhotofindError(f"{path} cannot be read ({exc}): choose another --out"
                                 " folder, or delete it to start over.") from exc
        if (old_roots, old_model) != (roots, model):
            raise PhotofindError(
                f"{out} holds the shards of another run (model {old_model}, folders"
                f" {', '.join(old_roots)}): choose another --out folder.")
        return [str(p) for p in firsts]
    if size < 1:
        raise PhotofindError("The shard size must be at least 1.")
    firsts = [files[i].path for i in range(0, len(files), size)] or [""]
    parquetio.write_json(path, {"model": model, "roots": roots, "shard_size": size,
                                "firsts": firsts})
    return firsts


def _written_shards(out: Path, count: int) -> dict[int, parquetio.ShardInfo]:
    """Shards a previous run wrote whole (a half-written one never has its name)."""
    done = {}
    for index in range(count):
        path = out / parquetio.shard_name(index)
        if path.is_file():
            info = parquetio.shard_info(path)
            if info is not None:
                done[index] = info
    return done


def _start(ray: Any, address: str | None) -> bool:
    """Connect to the cluster (or start a local one); True when this call started Ray."""
    if ray.is_initialized():
        return False
    try:
        # photofind's settings here (PHOTOFIND_DECODE_TIMEOUT ...) apply on the workers too.
        env = {k: v for k, v in os.environ.items() if k.startswith("PHOTOFIND_")}
        common = {"log_to_driver": False, "logging_level": logging.WARNING,
                  "runtime_env": {"env_vars": env}}
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(include_dashboard=False, **common)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise PhotofindError(f"Cannot reach the Ray cluster at {address or 'this machine'}"
                             f" ({exc}).") from exc
    ray.data.DataContext.get_current().enable_progress_bars = False  # one line a shard
    logging.getLogger("ray").setLevel(logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    return True


def _run(ray: Any, todo: dict[int, list[_File]], encoder: Encoder, spec: str,
         options: ClusterOptions, out: Path, manifest: parquetio.Manifest,
         report: EmbedReport, progress: Callable[[str], None]) -> None:
    files = [(index, f) for index, rows in sorted(todo.items()) for f in rows]
    per_block = max(options.decode_batch, min(256, len(files) // 8 or 1))
    table = parquetio.listing_table({
        "path": [f.path for _, f in files], "size": [f.size for _, f in files],
        "mtime_ns": [f.mtime_ns for _, f in files], "shard": [i for i, _ in files],
        "problem": [f.problem for _, f in files]})
    blocks = [table.slice(i, per_block) for i in range(0, len(files), per_block)]
    cpus = int(ray.cluster_resources().get("CPU", 1))
    ds = ray.data.from_arrow(blocks)
    if options.gpus:  # GPU actors only embed: decoding has actors of its own
        decode_args: dict[str, Any] = {"num_cpus": 1}
        if options.decode_memory_mb:
            decode_args["memory"] = options.decode_memory_mb * 1024 * 1024
        ds = ds.map_batches(
            Decoder, batch_size=options.decode_batch, batch_format="numpy",
            fn_constructor_kwargs={"pre": encoder.preprocess},
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, cpus)),
            **decode_args)
    actors = options.actors or max(1, cpus // max(1, options.cpus_per_actor))
    embed_args: dict[str, Any] = {"num_cpus": options.cpus_per_actor}
    if options.gpus:
        embed_args["num_gpus"] = 1
    elif options.decode_memory_mb:
        embed_args["memory"] = options.decode_memory_mb * 1024 * 1024
    ds = ds.map_batches(
        Embedder, batch_size=options.batch_size or encoder.batch_size, batch_format="numpy",
        fn_constructor_kwargs={"spec": spec, "device": "cuda" if options.gpus else "cpu",
                               "threads": options.cpus_per_actor,
                               "pre": None if options.gpus else encoder.preprocess},
        compute=ray.data.ActorPoolStrategy(size=actors) if options.actors
        else ray.data.ActorPoolStrategy(min_size=1, max_size=actors), **embed_args)
    expected = {index: len(rows) for index, rows in todo.items() if rows}
    try:
        _collect(ds, expected, encoder, options, out, manifest, report, progress)
    except ray.exceptions.RayError as exc:
        raise PhotofindError(
            f"The run on Ray stopped ({type(exc).__name__}: {str(exc).splitlines()[0]});"
            f" the {report.written + report.skipped} shards written are kept: run the same"
            " command again to go on.") from exc


def _collect(ds: Any, expected: dict[int, int], encoder: Encoder, options: ClusterOptions,
             out: Path, manifest: parquetio.Manifest, report: EmbedReport,
             progress: Callable[[str], None]) -> None:
    """Write each shard as soon as all its rows are back."""
    pending: dict[int, list[parquetio.Record]] = defaultdict(list)
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for index, record in _records(batch):
            pending[index].append(record)
            if len(pending[index]) == expected[index]:
                info = parquetio.write_shard(out, parquetio.shard_name(index),
                                             pending.pop(index), encoder.model_id,
                                             encoder.dim, options.dtype)
                _add_shard(out, manifest, info)
                report.written += 1
                progress(f"shard {index + 1}/{report.shards} written: {info.rows} files,"
                         f" {info.failed} unreadable")
    if pending:
        raise PhotofindError(f"The cluster returned {sum(map(len, pending.values()))} rows"
                             " fewer than it was given: run the command again to finish.")


def _add_shard(out: Path, manifest: parquetio.Manifest, info: parquetio.ShardInfo) -> None:
    manifest.shards = sorted([*manifest.shards, info], key=lambda s: s.file)
    parquetio.write_manifest(out, manifest)


def _records(batch: Batch) -> Iterator[tuple[int, parquetio.Record]]:
    for i in range(len(batch["path"])):
        reason = _text(batch["reason"][i])
        ok = reason is None
        yield int(batch["shard"][i]), parquetio.Record(
            path=str(batch["path"][i]), size=int(batch["size"][i]),
            mtime_ns=int(batch["mtime_ns"][i]), quick_hash=_text(batch["quick_hash"][i]),
            taken_at=_text(batch["taken_at"][i]),
            width=int(batch["width"][i]) if ok else None,
            height=int(batch["height"][i]) if ok else None,
            embedding=batch["embedding"][i] if ok else None, reason=reason,
            content_hash=_text(batch["content_hash"][i]))


def _text(value: object) -> str | None:
    """A text column's value: a column of nothing but nulls comes back as NaNs."""
    return value if isinstance(value, str) else None


# --- what runs on the workers ---------------------------------------------

class Decoder:
    """A Ray actor that decodes files as indexing does: in one of photofind's
    isolated decode processes (decodepool.py), so a file that crashes, hangs or
    balloons its decoder costs that file only, with indexing's reason."""

    def __init__(self, pre: Preprocess) -> None:
        self.pre = pre
        self.pool = DecodePool(pre, workers=1)

    def __call__(self, batch: Batch) -> Batch:
        n = len(batch["path"])
        pixels = np.zeros((n, self.pre.size, self.pre.size, 3), np.uint8)
        cols: dict[str, list[Any]] = {k: [None] * n for k in ("quick_hash", "content_hash",
                                                               "taken_at", "reason")}
        width, height = np.zeros(n, np.int32), np.zeros(n, np.int32)
        opened = []
        for i in range(n):
            problem = _text(batch["problem"][i])
            if problem is None:
                opened.append(i)
            else:  # never opened, as indexing does
                cols["reason"][i] = problem
        for i, result in self.pool.run(opened, lambda i: str(batch["path"][i])):
            if isinstance(result, Decoded):
                pixels[i] = result.pixels
                width[i], height[i] = result.width, result.height
                cols["quick_hash"][i], cols["taken_at"][i] = result.quick_hash, result.taken_at
                cols["content_hash"][i] = result.content_hash or None
            else:
                cols["reason"][i] = result.reason
                cols["quick_hash"][i] = _quick_hash(str(batch["path"][i]))
        return {"path": batch["path"], "size": batch["size"], "mtime_ns": batch["mtime_ns"],
                "shard": batch["shard"], "width": width, "height": height, "pixels": pixels,
                **{k: np.array(v, dtype=object) for k, v in cols.items()}}


def _quick_hash(path: str) -> str | None:
    try:
        return partial_hash(path)
    except OSError:
        return None


class Embedder:
    """A Ray actor holding the model: decoded pixels in, embeddings out. On CPU
    actors it decodes its batches itself first (``pre`` given), with its own
    isolated decode process: the pixels never cross the object store, and the
    cores go to whichever of the two steps is running."""

    def __init__(self, spec: str, device: str, threads: int,
                 pre: Preprocess | None = None) -> None:
        os.environ["PHOTOFIND_THREADS"] = str(threads)  # what ONNX Runtime may use
        self.encoder = _load(spec, device)
        self.decoder = Decoder(pre) if pre is not None else None

    def __call__(self, batch: Batch) -> Batch:
        if self.decoder is not None:
            batch = self.decoder(batch)
        ok = np.array([_text(r) is None for r in batch["reason"]], dtype=bool)
        embedding = np.zeros((len(ok), self.encoder.dim), np.float32)
        if ok.any():
            embedding[ok] = self.encoder.encode_images(batch["pixels"][ok])
        out = {k: v for k, v in batch.items() if k != "pixels"}
        out["embedding"] = embedding
        return out
