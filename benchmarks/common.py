"""Shared pieces of the benchmarks: a cached camera-like corpus, the random-weight
ViT-B-32 model folder, a 100,000-photo library, and peak-RSS measurement.

Everything generated lives under ~/.cache/photofind/bench (PHOTOFIND_BENCH_CACHE),
never in the repository.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

CACHE = Path(os.environ.get("PHOTOFIND_BENCH_CACHE")
             or Path.home() / ".cache" / "photofind" / "bench")
PHOTOFIND = [sys.executable, "-m", "photofind"]


def runtime_option(parser: Any) -> None:
    """--runtime auto|onnx|torch (default: PHOTOFIND_RUNTIME, else auto); the
    choice is put in PHOTOFIND_RUNTIME so the photofind processes run follow it."""
    parser.add_argument("--runtime", choices=("auto", "onnx", "torch"),
                        default=os.environ.get("PHOTOFIND_RUNTIME") or "auto")


def use_runtime(runtime: str) -> None:
    os.environ["PHOTOFIND_RUNTIME"] = runtime


def encoder(spec: str, device: str, int8_text: bool | None = None) -> Any:
    """photofind's encoder for the model on the runtime PHOTOFIND_RUNTIME names."""
    from photofind.core.config import Settings
    from photofind.core.model.loading import load_encoder

    return load_encoder(Settings.resolve(str(CACHE / "unused-library"), spec, device),
                        int8_text=int8_text)


def model_spec() -> str:
    """local-dir: spec of ViT-B-32 with random weights (the real compute)."""
    from photofind.testing.toyclip import random_model_dir

    CACHE.mkdir(parents=True, exist_ok=True)
    return f"local-dir:{random_model_dir('ViT-B-32', CACHE)}"


def camera_photo(rng: random.Random, size: tuple[int, int] = (4000, 3000)) -> Image.Image:
    """Smooth light gradients, mid-frequency texture, a few shapes and sensor noise:
    decodes like a real 12-megapixel photo (flat colours would be unrealistically fast)."""
    w, h = size
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    base = Image.fromarray(nrng.integers(0, 255, (3, 4, 3), np.uint8)).resize(
        (w, h), Image.Resampling.BICUBIC)
    texture = Image.fromarray(nrng.integers(0, 255, (h // 24, w // 24, 3), np.uint8)).resize(
        (w, h), Image.Resampling.BILINEAR)
    img = Image.blend(base, texture, 0.25)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(3, 8)):
        x, y = rng.randrange(w), rng.randrange(h)
        r = rng.randrange(h // 20, h // 4)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x - r, y - r, x + r, y + r),
                                                                 fill=colour)
    noise = nrng.integers(0, 17, (h, w, 1), np.uint8)  # sensor noise, about +-8 levels
    arr = np.asarray(img, np.uint8)
    return Image.fromarray(np.where(arr > 238, 238, arr) + noise - np.minimum(arr, 8))


def corpus(jpegs: int = 200, heics: int = 4, pngs: int = 4) -> Path:
    """The benchmark corpus (made once, then cached): 12 MP JPEGs, phone HEICs
    with their embedded thumbnail, and screenshot-like PNGs."""

    folder = CACHE / f"corpus-{jpegs}-{heics}-{pngs}"
    done = folder / ".complete"
    if done.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    kinds = ["jpg"] * jpegs + ["heic"] * heics + ["png"] * pngs
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool() as pool:
        jobs = [(str(folder), i, kind) for i, kind in enumerate(kinds)]
        for n, _ in enumerate(pool.imap_unordered(_make_one, jobs), 1):
            print(f"\rmaking the corpus: {n}/{len(kinds)}", end="", file=sys.stderr)
    print(f" ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    done.touch()
    return folder


def _make_one(job: tuple[str, int, str]) -> None:
    from photofind.core.imaging import register_heif

    folder, i, kind = job
    rng = random.Random(2026 + i)
    if kind == "jpg":
        camera_photo(rng).save(Path(folder) / f"IMG_{i:04d}.jpg", "JPEG", quality=92)
    elif kind == "heic":  # phones embed a small thumbnail in every HEIC
        register_heif()
        camera_photo(rng).save(Path(folder) / f"IMG_{i:04d}.heic", "HEIF", quality=80,
                               thumbnails=[320])
    else:
        camera_photo(rng, (1920, 1080)).save(Path(folder) / f"Screen_{i:04d}.png", "PNG")


def peak_rss_mb(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``cmd`` in a fresh helper process; returns (wall s, peak RSS MB, stdout)."""
    helper = ("import resource, subprocess, sys, time; t = time.perf_counter();"
              " p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
              " w = time.perf_counter() - t; sys.stderr.write(p.stderr[-2000:]);"
              " print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode);"
              " print(p.stdout, end='')")
    out = subprocess.run([sys.executable, "-c", helper, *cmd], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, check=True)
    first, _, rest = out.stdout.partition("\n")
    wall, rss_kb, rc = first.split()
    if rc != "0":
        raise SystemExit(f"{' '.join(cmd)} failed ({rc}): {out.stderr}")
    return float(wall), int(rss_kb) / 1024, rest


def own_peak_rss_mb() -> float:
    """This process's peak RSS since it started: VmHWM where there is one
    (ru_maxrss starts from the RSS of the process that started this one)."""
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.is_file() else []:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(times_ms: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    ordered = sorted(times_ms)
    return (float(np.percentile(ordered, 50)), float(np.percentile(ordered, 95)))


def clustered_vectors(n: int, dim: int, seed: int = 0, clusters: int = 2000
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors shaped like CLIP image embeddings: a shared mean direction,
    cluster centres (scenes, people, places) and per-photo noise. Returns
    (vectors, centres, gap): ``gap`` is the modality offset text queries carry."""
    rng = np.random.default_rng(seed)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    mean = unit(rng.normal(size=dim))
    centres = unit(rng.normal(size=(clusters, dim)))
    which = rng.integers(0, clusters, n)
    data = 0.55 * mean + 0.6 * centres[which] + 0.55 * unit(rng.normal(size=(n, dim)))
    gap = unit(rng.normal(size=dim))
    return unit(data).astype(np.float32), centres.astype(np.float32), gap.astype(np.float32)


def text_like(centres: np.ndarray, gap: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    """Queries near a cluster but shifted by the modality gap (top cosine about 0.3)."""
    rng = np.random.default_rng(seed)
    dim = centres.shape[1]
    q = centres[rng.integers(0, len(centres), n)] + 1.5 * gap \
        + rng.normal(scale=0.5 / np.sqrt(dim), size=(n, dim))
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def big_library(spec: str, n: int = 100_000, dim: int = 512) -> Path:
    """A library of ``n`` photos with clustered vectors under ``spec``, its index
    saved (made once, then cached). The photo files themselves do not exist."""
    from photofind.core.config import Settings
    from photofind.core.library import Library
    from photofind.core.records import FileRecord

    folder = CACHE / f"library-{n}-{dim}"
    done = folder / ".complete"
    if done.is_file():
        return folder
    start = time.perf_counter()
    vectors, _, _ = clustered_vectors(n, dim)
    with Library.open(Settings.resolve(str(folder), spec, "cpu"), writer=True) as lib:
        root = lib.catalog.add_root("/bench/Pictures")
        for lo in range(0, n, 5000):
            photos = [FileRecord(root.id, f"/bench/Pictures/{i // 1000:03d}/IMG_{i:06d}.jpg",
                                 3_000_000 + i, 1_600_000_000_000_000_000 + i * 10**9,
                                 quick_hash=f"{i:032x}", width=4000, height=3000,
                                 taken_at=f"20{10 + i % 15}-06-01T12:00:00")
                      for i in range(lo, min(lo + 5000, n))]
            lib.catalog.write_batch(spec, photos, list(vectors[lo:lo + 5000]))
            print(f"\rmaking the library: {lo + len(photos)}/{n}", end="", file=sys.stderr)
        print("\nbuilding the index ...", end="", file=sys.stderr)
        lib.vectors.rebuild()
    print(f" ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    done.touch()
    return folder
