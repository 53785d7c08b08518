"""The text-reading stage: after the CLIP pass, read the words in photos.

``read_text(lib)`` reads every readable photo that has no text from the
current engine yet (new photos, an existing library catching up, all of them
after an engine or model change), one at a time, each committed in its own
transaction, and yields progress after each: closing the generator stops it
after the photo in flight, and the next run resumes. It runs nothing when the
library has reading turned off (``textindex.reading_enabled``) or the engine
is not installed.

Which photos: all of them. The engine's own text detector is the gate: a
photo in which it finds no text costs the detection pass only, and the
recogniser runs on the boxes it found.

The engine runs in one ``spawn``-ed reader process at the lowest CPU priority
(nice 10: a CLIP pass or a query that runs alongside goes first), with its ONNX
Runtime threads pinned (``PHOTOFIND_OCR_THREADS``, default one per physical
core). The photo is decoded there too, at 1280 px long side (JPEG draft
mode), so a file that crashes or hangs the decoder or the engine costs that
photo's text only: it is stored as unreadable with the reason (a timeout or a
crash is tried once more, by a new reader) and not retried until the engine
changes. Once its engine is loaded, the reader's address space is capped like
a decode worker's (at least 2 GiB): a picture that would need more fails as
that photo's problem. The reader ends itself when photofind is gone.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import time
from collections.abc import Generator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from photofind.core import ocr, textindex
from photofind.core.decodepool import limit_address_space, memory_cap
from photofind.core.indexer import Progress
from photofind.core.library import Library
from photofind.core.textindex import ReadText

log = logging.getLogger(__name__)

# Photos per committed batch: one, so that a stop waits for one photo at most.
BATCH = int(os.environ.get("PHOTOFIND_TEXT_BATCH") or 1)
TIMEOUT = 120.0  # seconds one photo may take (decode + read)
THREADS_ENV = "PHOTOFIND_OCR_THREADS"
# Below the CLIP pass and queries (nice 0), never starved by them; PHOTOFIND_OCR_NICE
# sets another (the tests use 0 on a machine that other work keeps busy).
READER_NICE = int(os.environ.get("PHOTOFIND_OCR_NICE") or 10)
READER_MIN_CAP = 2 << 30  # bytes of address space the reader may always have


class StopReading(Exception):
    """Thrown into a run to end its reading early (it resumes on the next run)."""


@dataclass(frozen=True)
class ReadingProgress(Progress):
    """Progress of the text-reading stage (shown as "reading text")."""


def read_text(lib: Library, threads: int | None = None, scope: textindex.Scope = textindex.WHOLE
              ) -> Generator[ReadingProgress, None, int]:
    """Read the text of every photo in ``scope`` that needs it; returns how many
    were read."""
    catalog = lib.catalog
    if not ocr.installed() or not textindex.reading_enabled(catalog):
        return 0
    try:
        engine = ocr.engine_id()
    except ocr.EngineMissing as exc:  # costs the text, never the photos indexed
        log.warning("the text in photos is not read: %s.", exc)
        return 0
    total = textindex.unread_count(catalog, engine, scope)
    if not total:
        return 0
    done, last, start = 0, 0, time.perf_counter()
    with ReaderProcess(threads or _threads()) as reader:
        while todo := textindex.unread(catalog, engine, BATCH, last, scope):
            try:
                read = [reader.read(pid, path, engine, retry) for pid, path, retry in todo]
            except ocr.EngineMissing as exc:
                log.warning("the text in photos is not read: %s.", exc)
                return done
            textindex.store(catalog, read)
            # the pass goes on after what it read, except a photo due one more try
            again = [r.photo_id for r in read if r.problem in textindex.RETRY]
            last = min(again) - 1 if again else todo[-1][0]
            done += len(todo)
            yield ReadingProgress.since(start, done, max(total, done))
    return done


def _threads() -> int:
    from photofind.core.model.runtime import physical_cores

    text = os.environ.get(THREADS_ENV, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else physical_cores()


class ReaderProcess:
    """The reader process: one photo at a time; replaced when it dies or hangs."""

    def __init__(self, threads: int, timeout: float = TIMEOUT) -> None:
        self.threads = threads
        self.timeout = timeout
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: Any = None
        self._conn: Connection | None = None

    def __enter__(self) -> ReaderProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> Connection:
        if self._conn is None:
            parent, child = self._ctx.Pipe()
            self._proc = self._ctx.Process(target=_reader_main,
                                           args=(child, self.threads, os.getpid()),
                                           daemon=True, name="photofind-reader")
            self._proc.start()
            child.close()
            self._conn = parent
            # Loading the engine is not the first photo's time: wait for it apart.
            try:
                ready = parent.poll(self.timeout * 5) and parent.recv() == "ready"
            except (EOFError, OSError):
                ready = False
            if not ready:
                self.close()
                raise ocr.EngineMissing("the text reader could not start (see the log)")
        return self._conn

    def read(self, photo_id: int, path: str, engine: str, retry: bool = False) -> ReadText:
        """The text of one photo; a timeout or a crash is tried once more (by
        a new reader; ``retry``: this is that try, and its failure is final)."""
        conn = self._start()
        try:
            conn.send(path)
            if conn.poll(self.timeout):
                kind, value = conn.recv()
            else:
                kind, value = "failed", "timeout"
                self.close()
        except (EOFError, OSError):
            kind, value = "failed", "crashed reader"
            self.close()
        if kind == "failed":
            log.info("could not read the text of %s: %s", path, value)
            problem = f"{value} (twice)" if retry and value in textindex.RETRY else str(value)
            return ReadText(photo_id, engine, (), None, problem)
        lines = tuple(value)
        confidence = sum(line.confidence for line in lines) / len(lines) if lines else None
        return ReadText(photo_id, engine, lines, confidence, None)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
            self._proc = None


def _reader_main(conn: Connection, threads: int, parent: int) -> None:
    """The reader process: paths in, lines (or ("failed", reason)) out."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(READER_NICE)
    _die_with(parent)
    reader = ocr.Reader(threads)
    limit_address_space(reader_cap())  # a picture that needs more fails, alone
    conn.send("ready")
    while True:
        while not conn.poll(0.5):
            if os.getppid() != parent:
                return
        try:
            path = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", reader.read(upright_pixels(path))))
        except Exception as exc:  # a bad file costs its own text only
            from photofind.core.imaging import failure_reason

            conn.send(("failed", failure_reason(exc)))


def reader_cap() -> int:
    """The reader's address-space cap: a decode worker's share of memory, at
    least READER_MIN_CAP (the engine, loaded, and its threads' reservations)."""
    return max(READER_MIN_CAP, memory_cap(1))


def upright_pixels(path: str, long_side: int = ocr.LONG_SIDE) -> Any:
    """The photo as displayed (EXIF orientation applied), at most ``long_side``."""
    import numpy as np
    from PIL import Image

    from photofind.core.imaging import open_photo

    opened = open_photo(path, draft_size=long_side, min_side=long_side * 3 // 4)
    img = opened.image
    if max(img.size) > long_side:
        img = img.copy()
        img.thumbnail((long_side, long_side), Image.Resampling.BILINEAR)
    return np.asarray(img)


def _die_with(parent: int) -> None:
    """On Linux the kernel ends this process with its parent."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(0)
    except (OSError, AttributeError):
        pass
