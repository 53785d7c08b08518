"""Decode worker processes that a bad file cannot take down with it.

Each worker is a ``spawn``-ed process that imports only Pillow, pillow-heif,
xxhash and (for RAW and 16-bit files) rawpy and numpy, runs under an address-space cap, and
decodes one file at a time (and hashes its whole content, which confirms
moves and replacements later).
A worker never outlives photofind: a watchdog thread in it ends it when its
parent is gone, and it ends itself when one file takes far past the time
limit (a SIGALRM the kernel delivers even to a decoder stuck in C).
A worker that crashes (segfault, abort), hangs past the per-file timeout or
runs out of memory is replaced; its file comes back as ``Failed`` with the
reason, and the run goes on. A feeder thread keeps the workers busy while
the caller embeds, handing results through a bounded queue (memory stays flat
however large the library).

Test hook: ``PHOTOFIND_DECODE_HOOK=module:function`` names a function the
workers call with each path before decoding it (tests use it to crash, hang
or kill the whole app on chosen files).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import math
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Generic, TypeVar

from photofind.core.imaging import (
    Decoded,
    Failed,
    Preprocess,
    content_hash,
    decode_file,
    failure_reason,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0  # seconds per file; PHOTOFIND_DECODE_TIMEOUT overrides
TIMEOUT_ENV = "PHOTOFIND_DECODE_TIMEOUT"
HOOK_ENV = "PHOTOFIND_DECODE_HOOK"


def available_memory() -> int:
    """Bytes of memory available now (Linux), else a conservative 4 GiB."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def memory_cap(workers: int) -> int:
    """Per-worker address-space cap: a fair share of available memory, 1-4 GiB."""
    share = available_memory() // (workers + 2)
    return max(1 << 30, min(4 << 30, share))


def limit_address_space(cap: int) -> None:
    """This process's address space at most ``cap`` bytes: past it an allocation
    fails (a MemoryError) instead of taking the machine's memory. A no-op where
    the platform has no such limit."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, ValueError, OSError):  # not on this platform
        pass


def _orphan_watchdog(parent: int, every: float = 0.5) -> None:
    """End this worker once photofind (its parent) is gone, whatever it is doing."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(3)

    threading.Thread(target=watch, name="photofind-orphan-watchdog", daemon=True).start()


def _own_time_limit(timeout: float) -> Callable[[bool], None]:
    """arm(True) before a file, arm(False) after: a file that takes twice the
    pool's limit (the pool missed it) kills the worker by SIGALRM's default
    action, which needs no Python code to run. A no-op where there is no alarm."""
    import signal

    seconds = max(1, math.ceil(2 * timeout) + 1)
    alarm = getattr(signal, "alarm", None)

    def arm(on: bool) -> None:
        if alarm is not None:
            alarm(seconds if on else 0)

    if alarm is not None:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    return arm


def _worker_main(conn: Connection, pre: Preprocess, cap: int, notes: str | None,
                 parent: int, timeout: float) -> None:
    from PIL import Image

    if os.getppid() != parent:  # photofind died while this worker started
        return
    # LibRaw's demosaic (rawfiles.py) runs OpenMP threads: one per worker, as there
    # is a worker per core (read when rawpy first loads).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _orphan_watchdog(parent)
    arm = _own_time_limit(timeout)

    # Pictures larger than this fail as "too large" before any pixel is allocated
    # (Pillow raises its decompression-bomb warning, which imaging.py makes an error).
    Image.MAX_IMAGE_PIXELS = cap // 8
    limit_address_space(cap)
    hook = _load_hook()
    last: str | None = None
    while True:
        try:
            path = conn.recv()
        except (EOFError, OSError):  # photofind died, not because of our last file
            _clear_note(notes, last)
            return
        if path is None:
            return
        arm(True)
        try:
            if hook:
                hook(path)
            result: Decoded | Failed = decode_file(path, pre)
            if isinstance(result, Decoded):
                result = dataclasses.replace(result, content_hash=content_hash(path))
        except MemoryError:
            result = Failed("too large")
        except OSError as exc:  # gone or unreadable between decode and hash
            result = Failed(failure_reason(exc))
        arm(False)
        last = path
        try:
            conn.send(result)
        except OSError:  # photofind died while we were decoding, but we survived
            _clear_note(notes, last)
            return


def _clear_note(catalog: str | None, path: str | None) -> None:
    """Tell the next start that this file did not take photofind down: it was
    decoded to the end (the app was killed by something else)."""
    if not catalog or path is None:
        return
    import sqlite3

    try:
        db = sqlite3.connect(catalog, timeout=30.0)
        with db:
            db.execute("DELETE FROM attempts WHERE path = ?", (path,))
        db.close()
    except sqlite3.Error:
        pass


def _load_hook() -> Callable[[str], None] | None:
    spec = os.environ.get(HOOK_ENV)
    if not spec:
        return None
    module, _, name = spec.partition(":")
    hook: Callable[[str], None] = getattr(importlib.import_module(module), name)
    return hook


class _Worker(Generic[T]):
    def __init__(self, ctx: Any, pre: Preprocess, cap: int, notes: str | None,
                 timeout: float) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main,
                                args=(child, pre, cap, notes, os.getpid(), timeout),
                                daemon=True, name="photofind-decoder")
        self.proc.start()
        child.close()
        self.item: T | None = None
        self.deadline = 0.0

    def give(self, item: T, path: str, timeout: float) -> None:
        self.conn.send(path)
        self.item = item
        self.deadline = time.monotonic() + timeout

    def stop(self, kill: bool = False) -> None:
        if not kill:
            try:
                self.conn.send(None)
            except OSError:
                kill = True
        if kill:
            self.proc.kill()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


class DecodePool:
    """A fixed number of isolated decode workers, restarted as they die."""

    def __init__(self, pre: Preprocess, workers: int | None = None,
                 timeout: float | None = None, notes: Path | None = None) -> None:
        """``notes``: the catalog whose attempt notes (attempts.py) a worker
        clears when photofind dies while it decodes a file it then finishes."""
        self.pre = pre
        self.notes = str(notes) if notes else None
        self.size = max(1, workers or os.cpu_count() or 1)
        self.timeout = timeout or float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
        self.cap = memory_cap(self.size)
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: list[_Worker[Any]] = []

    def _new_worker(self) -> _Worker[Any]:
        return _Worker(self._ctx, self.pre, self.cap, self.notes, self.timeout)

    def close(self) -> None:
        for worker in self._workers:
            worker.stop(kill=worker.item is not None)
        self._workers = []

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, items: Iterable[T], path_of: Callable[[T], str], *,
            started: Callable[[T], None] | None = None,
            finished: Callable[[T], None] | None = None,
            max_in_flight: int | None = None
            ) -> Generator[tuple[T, Decoded | Failed], None, None]:
        """Decode items in the background; yields (item, result) as they finish.

        ``started`` and ``finished`` are called from the feeder thread just
        before a file goes to a worker and just after its result comes back.
        Closing the iterator stops the feeder and abandons unfinished files.
        """
        # Bounded (memory stays flat), yet deep enough to keep decoding while the
        # model loads: 128 decoded photos are about 20 MB at 224 px.
        results: queue.Queue[Any] = queue.Queue(maxsize=max(self.size * 8, 128))
        stop = threading.Event()
        done = object()

        def feed() -> None:
            try:
                for pair in self._decode(items, path_of, started, finished,
                                         max_in_flight or self.size, stop):
                    while not stop.is_set():
                        try:
                            results.put(pair, timeout=0.1)
                            break
                        except queue.Full:
                            continue
            except BaseException as exc:  # handed to the consumer, never lost
                results.put(exc)
            finally:
                results.put(done)

        feeder = threading.Thread(target=feed, name="photofind-decode-feeder", daemon=True)
        feeder.start()
        try:
            while True:
                got = results.get()
                if got is done:
                    return
                if isinstance(got, BaseException):
                    raise got
                yield got
        finally:
            stop.set()
            while feeder.is_alive():
                with contextlib.suppress(queue.Empty):
                    results.get(timeout=0.1)
            feeder.join()

    def _decode(self, items: Iterable[T], path_of: Callable[[T], str],
                started: Callable[[T], None] | None, finished: Callable[[T], None] | None,
                in_flight: int, stop: threading.Event
                ) -> Iterator[tuple[T, Decoded | Failed]]:
        while len(self._workers) < min(self.size, in_flight):
            self._workers.append(self._new_worker())
        workers = self._workers[:in_flight]
        try:
            yield from self._loop(workers, items, path_of, started, finished, stop)
        finally:  # abandoned files: their workers' late answers must not be misread
            for worker in workers:
                if worker.item is not None:
                    worker.stop(kill=True)
                    self._workers.remove(worker)

    def _loop(self, workers: list[_Worker[Any]], items: Iterable[T],
              path_of: Callable[[T], str], started: Callable[[T], None] | None,
              finished: Callable[[T], None] | None, stop: threading.Event
              ) -> Iterator[tuple[T, Decoded | Failed]]:
        pending = iter(items)
        exhausted = False
        while not stop.is_set():
            for worker in workers:
                if worker.item is None and not exhausted:
                    item = next(pending, None)
                    if item is None:
                        exhausted = True
                        break
                    if started:
                        started(item)
                    worker.give(item, path_of(item), self.timeout)
            busy = [w for w in workers if w.item is not None]
            if not busy:
                return
            soonest = min(w.deadline for w in busy) - time.monotonic()
            wait([w.conn for w in busy] + [w.proc.sentinel for w in busy],
                 timeout=max(0.0, min(soonest, 1.0)))
            for worker in busy:
                outcome = self._collect(worker)
                if outcome is None:
                    continue
                item, result = outcome
                if isinstance(result, Failed) and result.reason in ("crashed decoder",
                                                                    "timeout"):
                    index = self._workers.index(worker)
                    self._workers[index] = self._new_worker()
                    workers[workers.index(worker)] = self._workers[index]
                if finished:
                    finished(item)
                yield item, result

    def _collect(self, worker: _Worker[T]) -> tuple[T, Decoded | Failed] | None:
        """The worker's result if it has one, or its failure if it died or hung."""
        item = worker.item
        assert item is not None
        if worker.conn.poll():  # a result, or the end of the pipe of a dead worker
            try:
                result: Decoded | Failed = worker.conn.recv()
            except (EOFError, OSError):
                dead = True
            else:
                worker.item = None
                return item, result
        else:
            dead = not worker.proc.is_alive()
        if dead or time.monotonic() > worker.deadline:
            worker.stop(kill=True)
            worker.item = None
            return item, Failed("crashed decoder" if dead else "timeout")
        return None
