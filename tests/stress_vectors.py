"""Stress the vector index: readers query while a writer adds, deletes,
resizes and saves. Exit 0 when every answer was valid, 1 when one was not.

    python -m tests.stress_vectors --seconds 60 [--no-lock]

``--no-lock`` swaps the readers-writer lock for a no-op (the test hook that
shows the stress test can fail); it may also crash outright.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from photofind.core.vectors import VectorIndex

DIM = 32


class NoLock:
    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        yield

    write = read


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--no-lock", action="store_true")
    args = parser.parse_args()

    index = VectorIndex(DIM, capacity=16)
    if args.no_lock:
        index._lock = NoLock()  # type: ignore[assignment]
    rng = np.random.default_rng(0)
    next_id = 0
    removed_at: dict[int, float] = {}
    problems: list[str] = []
    stop = threading.Event()
    counts = {"queries": 0, "adds": 0, "removes": 0, "saves": 0}

    def writer() -> None:
        nonlocal next_id
        with tempfile.TemporaryDirectory() as tmp:
            step = 0
            while not stop.is_set():
                step += 1
                vecs = rng.normal(size=(20, DIM)).astype(np.float32)
                ids = np.arange(next_id, next_id + 20, dtype=np.int64)
                try:
                    index.add(ids, vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
                    next_id += 20
                    counts["adds"] += 20
                    live = sorted(index.ids())
                    gone = set(rng.choice(live, size=min(10, len(live)), replace=False).tolist())
                    index.remove(gone)
                    now = time.monotonic()
                    removed_at.update(dict.fromkeys(gone, now))
                    counts["removes"] += len(gone)
                    if step % 25 == 0:
                        index.save(Path(tmp) / f"vectors.{step}.hnsw")
                        counts["saves"] += 1
                except Exception as exc:
                    problems.append(f"writer: {type(exc).__name__}: {exc}")
                    stop.set()

    def reader(seed: int) -> None:
        local = np.random.default_rng(seed)
        while not stop.is_set():
            q = local.normal(size=DIM).astype(np.float32)
            started = time.monotonic()
            try:
                ids, scores = index.query(q / np.linalg.norm(q), 10)
            except Exception as exc:
                problems.append(f"reader: {type(exc).__name__}: {exc}")
                stop.set()
                return
            counts["queries"] += 1
            labels = ids.tolist()
            bad = [i for i in labels if not 0 <= i < next_id + 20
                   or removed_at.get(i, started + 1) < started]
            if bad or len(set(labels)) != len(labels) or \
                    np.any(np.diff(scores) > 1e-5) or np.any(np.abs(scores) > 1.01):
                problems.append(f"reader: invalid answer {labels} {scores.tolist()}")
                stop.set()
                return

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=reader, args=(s,)) for s in range(args.readers)]
    for t in threads:
        t.start()
    stop.wait(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    print(counts, f"{len(index)} live", problems[:3])
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
