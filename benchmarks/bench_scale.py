"""photofind at 100,000 and 1,000,000 photos on one machine.

Builds (once, then cached under ~/.cache/photofind/bench/scale-N) a synthetic
library of N photos written through photofind's own catalog and index code:
clustered unit vectors shaped like CLIP's, camera-like paths, dates, sizes and
dimensions, thumbnails for a sample only (the files themselves do not exist,
except the few this benchmark adds). Then prints, for each N:

  catalog open (a writer, including any integrity check) and a reader's open;
  disk sizes of catalog, index and thumbnails;
  cold `photofind search` wall time and peak RSS (ONNX Runtime, ViT-B-32 random weights);
  warm text-like query p50/p95 (k-NN + rows) and recall@10 against exact search;
  `similar` p50 (a library photo's stored vector);
  time and bytes written to add 100 new photos, and 1 photo (a watcher batch),
  with the model's share of the time;
  a cold window: the all-photos grid shown, and scrolled to the end (offscreen).

    nice -n 10 python benchmarks/bench_scale.py [--sizes 100000 1000000] [--build-only]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    CACHE,
    PHOTOFIND,
    camera_photo,
    encoder,
    model_spec,
    own_peak_rss_mb,
    peak_rss_mb,
    percentiles,
)

DIM = 512
CHUNK = 5000
CLUSTERS = 4000
THUMB_EVERY = 500  # one photo in this many has a thumbnail
QUERY = "a dog on the beach"


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _space(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean direction, cluster centres, modality gap) shared by every chunk."""
    rng = np.random.default_rng(seed)
    return _unit(rng.normal(size=DIM)), _unit(rng.normal(size=(CLUSTERS, DIM))), \
        _unit(rng.normal(size=DIM))


def _vectors(lo: int, n: int) -> np.ndarray:
    """Vectors of photos lo..lo+n (the same for a given lo, whatever N is)."""
    mean, centres, _ = _space()
    rng = np.random.default_rng(1000 + lo)
    which = rng.integers(0, CLUSTERS, n)
    data = 0.55 * mean + 0.6 * centres[which] + 0.55 * _unit(rng.normal(size=(n, DIM)))
    return _unit(data).astype(np.float32)


def _text_queries(n: int) -> np.ndarray:
    _, centres, gap = _space()
    rng = np.random.default_rng(7)
    q = centres[rng.integers(0, CLUSTERS, n)] + 1.5 * gap \
        + rng.normal(scale=0.5 / np.sqrt(DIM), size=(n, DIM))
    return _unit(q).astype(np.float32)


def _photos(root_id: int, root: str, lo: int, n: int) -> list[Any]:
    """Camera-like rows: a folder per day, dates rising with the id, 2-9 MB files."""
    from photofind.core.records import FileRecord

    rng = np.random.default_rng(lo)
    start = 1_262_304_000  # 2010-01-01
    out = []
    sizes = rng.lognormal(15.1, 0.35, n).astype(np.int64)
    shapes = [(4000, 3000), (3000, 4000), (6000, 4000), (4032, 3024), (1920, 1080)]
    for j in range(n):
        i = lo + j
        t = start + i * 480 + int(rng.integers(0, 400))  # about 65,000 a year
        day = time.strftime("%Y/%Y-%m-%d", time.gmtime(t))
        w, h = shapes[int(rng.integers(0, len(shapes)))]
        out.append(FileRecord(root_id, f"{root}/{day}/IMG_{i:07d}.jpg", int(sizes[j]),
                              t * 10**9, quick_hash=f"{rng.integers(0, 1 << 62):016x}{i:016x}",
                              width=w, height=h,
                              taken_at=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))))
    return out


def _settings(folder: Path, spec: str) -> Any:
    from photofind.core.config import Settings

    return Settings.resolve(str(folder), spec, "cpu")


def library(n: int, spec: str, threads: int = 2, ef_construction: int | None = None,
            catalog_only: bool = False) -> Path:
    """The cached N-photo library (built on first use; ``ef_construction`` below
    photofind's own builds the graph faster, at some recall, where time is short)."""
    from photofind.core import vectors
    from photofind.core.library import Library

    folder = CACHE / f"scale-{n}"
    if (folder / ".complete").is_file():
        return folder
    start = time.perf_counter()
    if not (folder / ".catalog-complete").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "Pictures").mkdir(parents=True)
        thumb = _thumbnail()
        with Library.open(_settings(folder, spec), writer=True) as lib:
            root = lib.catalog.add_root(str(folder / "Pictures"))
            for lo in range(0, n, CHUNK):
                size = min(CHUNK, n - lo)
                ids = lib.catalog.write_batch(lib.model, _photos(root.id, root.path, lo, size),
                                              list(_vectors(lo, size)))
                lib.thumbs.put_many((pid, thumb) for pid in ids[::THUMB_EVERY])
                print(f"\rscale-{n}: catalog {lo + size}/{n}", end="", file=sys.stderr)
        (folder / ".catalog-complete").touch()
    if catalog_only:
        return folder
    print(f" ({time.perf_counter() - start:.0f} s); building the index ...", end="",
          file=sys.stderr, flush=True)
    if ef_construction:
        vectors.EF_CONSTRUCTION = ef_construction
        (folder / "ef_construction").write_text(str(ef_construction))
    with Library.open(_settings(folder, spec), writer=True) as lib:
        lib.vectors.rebuild(threads=threads)
    print(f" ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    (folder / ".complete").touch()
    return folder


def _thumbnail() -> bytes:
    import io
    import random

    buf = io.BytesIO()
    camera_photo(random.Random(5), (256, 192)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--build-ef", type=int, default=None,
                        help="ef_construction for building a library's graph (default"
                             " photofind's own)")
    parser.add_argument("--catalog-only", action="store_true",
                        help="without a built graph: the catalog's figures (open, batches"
                             " with the index left out, the window's listing)")
    args = parser.parse_args()
    spec = model_spec()
    for n in args.sizes:
        folder = library(n, spec, args.threads, args.build_ef, args.catalog_only)
        if args.catalog_only and not (folder / ".complete").is_file():
            measure_catalog(n, folder, spec, args.threads)
        elif not args.build_only:
            measure(n, folder, spec, args.threads)


def measure(n: int, folder: Path, spec: str, threads: int) -> None:
    from photofind.core.library import Library

    # Reading text off: it is a pass of its own after the CLIP pass, about five times
    # as long (bench_index.py --ocr), and would be most of the time of the adds below.
    env = {"PHOTOFIND_THREADS": str(threads), "PHOTOFIND_RUNTIME": "onnx", "PHOTOFIND_OCR": "0"}
    os.environ.update(env)
    settings = _settings(folder, spec)
    print(f"\n== {n:,} photos ({folder}), reading text off ==")
    built_ef = folder / "ef_construction"
    if built_ef.is_file():
        print(f"(graph built with ef_construction={built_ef.read_text()}, not photofind's own)")
    sizes = {name: sum(p.stat().st_size for p in folder.glob(pattern)) for name, pattern in
             (("catalog", "catalog.sqlite3*"), ("index", "vectors.*.hnsw"),
              ("thumbnails", "thumbs.sqlite3*"))}
    print("disk: " + ", ".join(f"{k} {v / 1e6:,.0f} MB" for k, v in sizes.items()))
    _opens(settings, folder)
    cmd = [*PHOTOFIND, "search", QUERY, "--json", "--library", str(folder), "--model", spec,
           "--device", "cpu"]
    peak_rss_mb(cmd, env)  # the ONNX export, once
    runs = sorted(_cold(cmd, env) for _ in range(3))
    print(f"cold `photofind search` (ONNX Runtime): {runs[1][0]:.2f} s wall, {runs[1][1]:.2f} s"
          f" CPU, peak RSS {max(r[2] for r in runs):,.0f} MB (median of 3)")
    with Library.open(settings) as lib:
        _warm_queries(lib)
    _adds(settings, folder)
    _window(folder, spec, threads)


def measure_catalog(n: int, folder: Path, spec: str, threads: int) -> None:
    """The figures that need no HNSW graph (for a library whose graph is not built)."""
    os.environ.update({"PHOTOFIND_THREADS": str(threads), "PHOTOFIND_RUNTIME": "onnx"})
    settings = _settings(folder, spec)
    from photofind.core.catalog import connect_read_only

    db = connect_read_only(folder / "catalog.sqlite3")
    rows = db.execute("SELECT COUNT(*) FROM photos").fetchone()[0]
    db.close()
    print(f"\n== {rows:,} photos (of {n:,}), catalog only: no graph built, batches leave the"
          " index out ==")
    size = sum(p.stat().st_size for p in folder.glob("catalog.sqlite3*"))
    print(f"disk: catalog {size / 1e6:,.0f} MB")
    _opens(settings, folder, index=False)
    _adds(settings, folder, index=False)
    _window(folder, spec, threads)


class _NoIndex:
    """Stands in for the vector cache where no graph was built."""

    def index(self) -> None:
        return None

    def catch_up(self) -> None: ...
    def save(self) -> None: ...
    def save_if_due(self) -> None: ...
    def forget(self, ids: list[int]) -> None: ...


def _cold(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of a fresh process (a helper measures only it).
    The CPU time is the figure to read on a busy shared machine."""
    helper = ("import resource, subprocess, sys, time; t = time.perf_counter();"
              " subprocess.run(sys.argv[1:], capture_output=True, check=True);"
              " u = resource.getrusage(resource.RUSAGE_CHILDREN);"
              " print(time.perf_counter() - t, u.ru_utime + u.ru_stime, u.ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", helper, *cmd], capture_output=True, text=True,
                         env={**os.environ, **env}, check=True)
    wall, cpu, rss = (float(x) for x in out.stdout.split())
    return wall, cpu, rss


def _opens(settings: Any, folder: Path, index: bool = True) -> None:
    from photofind.core.library import Library

    times = {}
    for kind in ("after a crash", "clean"):
        if kind == "after a crash":
            (folder / "photofind.clean").unlink(missing_ok=True)
        start = time.perf_counter()
        with Library.open(settings, writer=True) as lib:
            lib.thumbs.get(1)
            times[kind] = time.perf_counter() - start
    start = time.perf_counter()
    with Library.open(settings) as lib:
        opened = time.perf_counter() - start
        if index:
            lib.vectors.index()
        loaded = time.perf_counter() - start - opened
    print(f"catalog open, writer: {times['clean']:.2f} s after a clean close,"
          f" {times['after a crash']:.2f} s after a crash (integrity checks);"
          f" reader: {opened:.3f} s, index load {loaded:.2f} s")


def _warm_queries(lib: Any, count: int = 60) -> None:
    from photofind.core.vectors import EF_IMAGE, EF_TEXT

    index = lib.vectors.index()
    queries = _text_queries(count)
    emb = encoder(lib.settings.model, "cpu")
    emb.encode_texts(["warm up"])
    knn, full, found = [], [], []
    for i, q in enumerate(queries):
        start = time.perf_counter()
        emb.encode_texts([f"a photo of thing {i}"])
        mid = time.perf_counter()
        ids, _ = index.query(q, 10, EF_TEXT)
        lib.catalog.photo_info(list(ids))
        end = time.perf_counter()
        knn.append((end - mid) * 1e3)
        full.append((end - start) * 1e3)
        found.append(set(ids.tolist()))
    exact = _exact_top10(lib, queries)
    recall = float(np.mean([len(f & e) / 10 for f, e in zip(found, exact, strict=True)]))
    rng = np.random.default_rng(3)
    similar = []
    for pid in rng.choice(sorted(index.ids()), 40, replace=False):
        start = time.perf_counter()
        vec = lib.catalog.embedding(int(pid), lib.model)
        ids, _ = index.query(vec, 11, EF_IMAGE)
        lib.catalog.photo_info([int(i) for i in ids if i != pid])
        similar.append((time.perf_counter() - start) * 1e3)
    p50, p95 = percentiles(knn)
    f50, f95 = percentiles(full)
    print(f"warm text query: k-NN + rows p50 {p50:.1f} ms, p95 {p95:.1f} ms; with the text"
          f" encoder p50 {f50:.1f} ms, p95 {f95:.1f} ms; recall@10 vs exact {recall:.3f}")
    print(f"`similar` (stored vector, k-NN, rows): p50 {percentiles(similar)[0]:.1f} ms")


def _exact_top10(lib: Any, queries: np.ndarray) -> list[set[int]]:
    """The true 10 nearest stored vectors of each query (a pass over the catalog)."""
    best_ids = np.zeros((len(queries), 0), np.int64)
    best = np.zeros((len(queries), 0), np.float32)
    for ids, vecs, _ in lib.catalog.embeddings_after(lib.model, 0):
        scores = np.concatenate([best, queries @ vecs.T], axis=1)
        all_ids = np.concatenate([best_ids, np.broadcast_to(ids, (len(queries), len(ids)))],
                                 axis=1)
        top = np.argpartition(-scores, 9, axis=1)[:, :10]
        best = np.take_along_axis(scores, top, 1)
        best_ids = np.take_along_axis(all_ids, top, 1)
    return [set(row.tolist()) for row in best_ids]


def _new_photos(count: int) -> list[Path]:
    import random

    folder = CACHE / "scale-new-photos"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"NEW_{i:04d}.jpg" for i in range(count)]
    for i, path in enumerate(paths):
        if not path.is_file():
            camera_photo(random.Random(i), (1600, 1200)).save(path, "JPEG", quality=90)
    return paths


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the decode workers)."""
    import resource

    own, kids = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                      resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _written_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def _adds(settings: Any, folder: Path, index: bool = True) -> None:
    """A watcher's batches: new files in a folder, that folder scanned and applied
    (the model loaded and the index in memory, as in a running watcher)."""
    from photofind.core import indexer
    from photofind.core.indexer import apply_changes
    from photofind.core.library import Library
    from photofind.core.scanner import scan_folders

    photos = _new_photos(100)
    indexer._label = lambda lib: None  # type: ignore[assignment]  # labels: their own pass
    with Library.open(settings, writer=True) as lib:
        if not index:
            lib.vectors = _NoIndex()  # type: ignore[assignment]
        lib.vectors.index()
        emb = lib.embedder()
        encode = emb.encode_images
        spent = [0.0]

        def timed(pixels: Any) -> Any:
            start = time.perf_counter()
            try:
                return encode(pixels)
            finally:
                spent[0] += time.perf_counter() - start
        emb.encode_images = timed  # type: ignore[method-assign]
        root = lib.catalog.roots()[0]
        for count in (1, 100, 1):
            batch = Path(root.path) / "incoming" / f"{time.strftime('%Y%m%d-%H%M%S')}-{count}"
            batch.mkdir(parents=True)
            for src in photos[:count]:
                shutil.copy(src, batch / src.name)
            spent[0] = 0.0
            before, cpu = _written_bytes(), _cpu_s()
            start = time.perf_counter()
            gen = apply_changes(lib, scan_folders(lib.catalog, {root: [str(batch)]}))
            try:
                while True:
                    next(gen)
            except StopIteration as done:
                added = done.value.added
            wall = time.perf_counter() - start
            print(f"add {count} new photo(s): {wall:.2f} s wall ({spent[0]:.2f} s of it in the"
                  f" image encoder), {_cpu_s() - cpu:.2f} s CPU,"
                  f" {(_written_bytes() - before) / 1e6:,.1f} MB written, {added} added")


def _window(folder: Path, spec: str, threads: int) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PHOTOFIND_THREADS": str(threads)}
    out = subprocess.run([sys.executable, __file__, "--window", str(folder), spec], env=env,
                         capture_output=True, text=True, check=True)
    shown, grid, end, rows, browse, query, rss = out.stdout.split()[-7:]
    print(f"cold window: shown {float(shown):.2f} s, all-photos grid {float(grid):.2f} s,"
          f" scrolled to the end (row {int(rows):,}) {float(end):.2f} s, peak RSS"
          f" {float(browse):,.0f} MB; then a text query answered in {float(query):.2f} s"
          f" (the index loaded), peak RSS {float(rss):,.0f} MB")


def window_child(folder: str, spec: str) -> None:
    """Offscreen: the window on the library, its indexing engine left off (this
    measures the browse view), the all-photos grid, then scrolled to the end; then
    one text query typed (it loads the index)."""
    from PySide6.QtCore import QModelIndex, QSettings
    from PySide6.QtWidgets import QApplication

    from photofind.gui.mainwindow import MainWindow

    started = time.perf_counter()
    app = QApplication([])
    window = MainWindow(_settings(Path(folder), spec),
                        QSettings(os.devnull, QSettings.Format.IniFormat))
    window.engine.start = lambda: None  # type: ignore[method-assign]
    window.show()
    app.processEvents()
    shown = time.perf_counter() - started
    window.start()
    while not (window.shown_serial == window.serial and window.model.rowCount()):
        app.processEvents()
        time.sleep(0.001)
    window.grid.viewport().repaint()
    grid = time.perf_counter() - started
    root = QModelIndex()
    while window.model.canFetchMore(root):
        window.model.fetchMore(root)
        window.grid.scrollToBottom()
        app.processEvents()
    window.grid.scrollToBottom()
    window.grid.viewport().repaint()
    end = time.perf_counter() - started - grid
    rows, browse = window.model.rowCount(), own_peak_rss_mb()
    asked, serial = time.perf_counter(), window.serial
    window.search.setText(QUERY)
    window.search.returnPressed.emit()
    while not (window.serial > serial and window.shown_serial == window.serial):
        app.processEvents()
        time.sleep(0.001)
    query = time.perf_counter() - asked
    print(f"{shown:.3f} {grid:.3f} {end:.3f} {rows} {browse:.0f} {query:.3f}"
          f" {own_peak_rss_mb():.0f}", flush=True)
    window.shutdown()
    os._exit(0)  # the figures are out; PySide's teardown at exit can abort


if __name__ == "__main__":
    if "--window" in sys.argv:
        i = sys.argv.index("--window")
        window_child(sys.argv[i + 1], sys.argv[i + 2])
    else:
        main()
