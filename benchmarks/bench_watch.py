"""Watch latency and idle cost, native observer against polling, in one run.

For each observer: the median and worst time from a photo landing in a root
to it being searchable (in the catalog with its embedding), over 20 files
copied one by one; then the CPU the watching process uses over 60 s idle,
watching 10,000 files; then how long ``stop()`` takes to end the watcher's
thread. Last, ``photofind watch`` as a process: how long it takes to exit
after SIGTERM. Uses the toy model (trained once and cached).

    python benchmarks/bench_watch.py [--files 20] [--idle 60]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from photofind.core.config import Settings
from photofind.core.library import Library
from photofind.core.watcher import WatchConfig, Watcher
from photofind.testing.samples import make_sample_library
from photofind.testing.toyclip import toy_model_dir


def indexed(library: Path, path: Path) -> bool:
    db = sqlite3.connect(library / "catalog.sqlite3")
    try:
        return db.execute("SELECT 1 FROM photos p JOIN embeddings e ON e.photo_id = p.id"
                          " WHERE p.path = ?", (str(path),)).fetchone() is not None
    finally:
        db.close()


def measure(polling: bool, files: int, idle: float, work: Path
            ) -> tuple[list[float], float, float]:
    model = f"local-dir:{toy_model_dir()}"
    root = work / ("polled" if polling else "native")
    make_sample_library(root / "start", per_class=1, large=0)
    for i in range(100):  # 10,000 files to watch (not photos: only watching costs)
        folder = root / "archive" / f"{i:03d}"
        folder.mkdir(parents=True)
        for j in range(100):
            (folder / f"{j:03d}.dat").write_bytes(b"x")
    sources = make_sample_library(work / f"src-{polling}", per_class=1, seed=5, large=0,
                                  formats=(("jpg", "JPEG"),))
    settings = Settings.resolve(str(work / f"lib-{polling}"), model, "cpu")
    lib = Library.open(settings, writer=True)
    lib.add_root(str(root))
    watcher = Watcher(lib, WatchConfig(force_polling=polling))
    thread = threading.Thread(target=watcher.run)
    thread.start()
    while not indexed(settings.library, next((root / "start").glob("*.jpg"))):
        time.sleep(0.1)
    latencies = []
    for i in range(files):
        target = root / f"landed-{i}.jpg"
        start = time.monotonic()
        shutil.copy(sources[i % len(sources)].path, target)
        while not indexed(settings.library, target):
            time.sleep(0.05)
        latencies.append(time.monotonic() - start)
    time.sleep(3)
    cpu0, wall0 = time.process_time(), time.monotonic()
    time.sleep(idle)
    cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    stopping = time.monotonic()
    watcher.stop()
    thread.join()
    stopped = time.monotonic() - stopping
    lib.close()
    return latencies, cpu, stopped


def cli_sigterm(work: Path) -> float:
    """Seconds from SIGTERM to the exit of a ``photofind watch`` that is caught up."""
    root = work / "cli-root"
    make_sample_library(root, per_class=1, large=0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOFIND_")}
    env.update(PHOTOFIND_LIBRARY=str(work / "cli-lib"),
               PHOTOFIND_MODEL=f"local-dir:{toy_model_dir()}", PHOTOFIND_DEVICE="cpu")
    photofind = [sys.executable, "-m", "photofind"]
    repo = Path(__file__).resolve().parents[1]
    subprocess.run([*photofind, "add", str(root)], env=env, cwd=repo, check=True,
                   capture_output=True)
    proc = subprocess.Popen([*photofind, "watch", "--json"], env=env, cwd=repo, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    added = 0
    while added < 20:  # the reconcile at start
        added += json.loads(proc.stdout.readline())["added"]
    time.sleep(2)
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--idle", type=float, default=60)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for polling in (False, True):
            latencies, cpu, stopped = measure(polling, args.files, args.idle, Path(tmp))
            rows.append(("polling" if polling else "native", statistics.median(latencies),
                         max(latencies), cpu, stopped))
        sigterm = cli_sigterm(Path(tmp))
    print(f"{'observer':<9} {'median s':>9} {'worst s':>8} {'idle CPU':>9} {'stop s':>7}"
          f"   ({args.files} files one by one; 10,000 files watched for {args.idle:.0f} s)")
    for name, median, worst, cpu, stopped in rows:
        print(f"{name:<9} {median:9.2f} {worst:8.2f} {cpu:9.2%} {stopped:7.2f}")
    print(f"photofind watch: SIGTERM to exit {sigterm:.2f} s")
    print(f"summary: native median {rows[0][1]:.2f} s (target < 3), polling median "
          f"{rows[1][1]:.2f} s (target < 10), native idle CPU {rows[0][3]:.2%} (target < 1%),"
          f" stop {max(r[4] for r in rows):.2f} s (target < 2), SIGTERM to exit"
          f" {sigterm:.2f} s (target < 3)")


if __name__ == "__main__":
    main()
