"""Every thread the GUI uses, and nothing else creates one.

- ``Engine``: one thread that owns the writing library: it loads nothing
  itself, waits for the model, then runs the core ``Watcher`` (reconcile,
  index, follow the folders) with progress, pause, resume and stop; folder
  changes run on it through ``Watcher.submit``.
- ``Queries``: one thread with its own read-only library that loads the model
  once and answers searches, "similar" queries, the newest-first listing, the
  Folders dialog's status and the Problems list. A newer query replaces one
  still waiting, so typing never queues stale work.
- ``ThumbLoader``: a small pool reading thumbnails from thumbs.sqlite3, last
  request first (the tiles painted last are the ones on screen), requests of
  an older result set dropped.
- ``Previews``: one thread decoding large previews.

Workers hand plain data or ``QImage`` to the GUI thread through signals; only
the GUI thread makes ``QPixmap`` or touches widgets.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import queue
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from photofind.core.catalog import PhotoInfo
from photofind.core.config import Settings
from photofind.core.errors import PhotofindError
from photofind.core.watcher import WatchConfig

log = logging.getLogger(__name__)

SEARCH_LIMIT = 2000  # results a query fetches; the grid shows them in pages


@dataclass(frozen=True)
class Hit:
    info: PhotoInfo
    score: float | None  # None in the newest-first listing


@dataclass(frozen=True)
class Query:
    """What the search box asks for: text (CLI syntax) and/or one image."""

    text: str = ""
    image_path: str | None = None  # a file, in the library or not
    label: str = ""  # how the chip names the image


class Engine(QObject):
    """The writer thread: index and watch the library's folders."""

    progress = Signal(object)  # core.indexer.Progress, or None when a run ends
    changed = Signal(object)  # IndexReport counts: photos were added, removed ...
    roots_changed = Signal()
    problem = Signal(str)  # one sentence for the user
    model_switched = Signal(object, object)  # new Settings, its loaded model

    def __init__(self, settings: Settings, watch: WatchConfig | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.watch = watch
        self._model: Any = None
        self._model_state = threading.Event()  # set once the model loaded or failed
        self._stop = threading.Event()
        self._calls: queue.Queue[Callable[[Any], None]] = queue.Queue()
        self._watcher: Any = None
        self._handover = threading.Lock()  # calls queued here until the watcher takes them
        self._thread = threading.Thread(target=self._run, name="photofind-engine", daemon=True)
        self.paused = False
        self.switching_to: str | None = None  # a model the library is being re-embedded for

    def start(self) -> None:
        self._thread.start()

    def use_model(self, embedder: Any) -> None:
        """The model loaded (or None: it could not be); indexing may begin."""
        self._model = embedder
        self._model_state.set()

    def add_folder(self, path: str) -> None:
        def call(lib: Any) -> None:
            _, note = lib.add_root(path)
            if note:
                self.problem.emit(note)
        self._submit(call)

    def remove_folder(self, path: str) -> None:
        def call(lib: Any) -> None:
            for root in lib.catalog.roots():
                if root.path == path:
                    lib.remove_root(root)
        self._submit(call)

    def switch_model(self, spec: str) -> None:
        """Re-embed the library for another model in the background; searches keep
        using the current one until ``model_switched`` says every photo is done."""
        self.switching_to = spec
        with self._handover:
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()  # ends this session; the next one runs with the new model

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if self._watcher is not None:
            (self._watcher.pause if paused else self._watcher.resume)()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the batch in flight (it is committed) and wait for the thread."""
        self._stop.set()
        self._model_state.set()
        if self._watcher is not None:
            self._watcher.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _submit(self, call: Callable[[Any], None]) -> None:
        def done(lib: Any) -> None:
            try:
                call(lib)
            finally:
                self.roots_changed.emit()
        with self._handover:
            watcher = self._watcher
            if watcher is not None:
                watcher.submit(lambda: done(watcher.lib))
            else:
                self._calls.put(done)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._session()
        except PhotofindError as exc:
            self.problem.emit(str(exc))
        except Exception:
            log.exception("the indexing thread failed")
            self.problem.emit("Indexing stopped after an internal error; see the log.")

    def _session(self) -> None:
        """One library and one model, watched until stop() or a model switch."""
        from photofind.core.library import Library
        from photofind.core.watcher import Watcher

        target = self.switching_to
        settings = dataclasses.replace(self.settings, model=target) if target else self.settings
        with Library.open(settings, writer=True) as lib:
            if target:
                model = self._load(lib, target)
                if model is None:
                    return  # the next session goes on with the current model
            else:
                self._model_state.wait()
                model = self._model
                if model is None or self._stop.is_set():
                    self._serve_calls(lib)  # no model: folders can change, nothing is embedded
                    return
            lib.use_embedder(model)

            def progressed(progress: Any) -> None:
                self.progress.emit(progress)
                if progress is None and target and self.switching_to == target \
                        and not _missing_vectors(lib, target):
                    self.settings, self._model, self.switching_to = settings, model, None
                    self.model_switched.emit(settings, model)
            watcher = Watcher(lib, self.watch, on_report=lambda r: self.changed.emit(r.counts()),
                              on_progress=progressed)
            if self.paused:
                watcher.pause()
            with self._handover:
                while not self._calls.empty():
                    watcher.submit(functools.partial(self._calls.get(), lib))
                self._watcher = watcher
            if not self._stop.is_set() and self.switching_to == target:
                watcher.run()

    def _load(self, lib: Any, spec: str) -> Any:
        try:
            return lib.embedder()
        except PhotofindError as exc:
            self.switching_to = None
            self.problem.emit(f"Staying with the current model: {exc}")
            return None

    def _serve_calls(self, lib: Any) -> None:
        while not self._stop.is_set() and not self.switching_to:
            try:
                call = self._calls.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                call(lib)
            except PhotofindError as exc:
                self.problem.emit(str(exc))


def _missing_vectors(lib: Any, model: str) -> bool:
    """Photos on connected drives that have no vector from ``model`` yet."""
    online = {r.id for r in lib.catalog.roots() if r.state == "online"}
    return any(row.root_id in online for row in lib.catalog.ok_photos_without_embedding(model))


class Queries(QObject):
    """The query thread: the model, searches and library facts, one at a time."""

    model_downloading = Signal(object)  # core.model.sources.Download: a first download began
    model_ready = Signal(str)  # where it runs: "ONNX Runtime on CPU", "torch on CUDA"
    model_failed = Signal(str)  # why, in one sentence
    results = Signal(int, object, str)  # query serial, list[Hit], error ("" if none)
    status = Signal(object)  # Library.status()
    failures = Signal(object)  # [(path, reason)]

    def __init__(self, settings: Settings, engine: Engine) -> None:
        super().__init__()
        self.settings = settings
        self.engine = engine
        self._jobs: queue.Queue[tuple[str, Callable[[Any], None]] | None] = queue.Queue()
        self._latest_query = 0
        self._serial_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="photofind-queries", daemon=True)
        self._next: tuple[Settings, Any] | None = None  # a model to switch to
        self.model_loaded = False

    def start(self) -> None:
        self._thread.start()
        self._jobs.put(("model", self._load_model))

    def stop(self) -> None:
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join(10)

    def ask(self, serial: int, query: Query, image: QImage | None = None) -> None:
        """Answer ``query`` (an empty one lists the library newest first).

        ``image``: a pasted or dropped picture that is not a file; it is kept in
        a temporary file only while it is read, and nothing enters the library.
        """
        with self._serial_lock:
            self._latest_query = serial

        def job(lib: Any) -> None:
            with self._serial_lock:
                if serial != self._latest_query:
                    return  # a newer query came in meanwhile
            path = None
            try:
                if image is not None:
                    fd, path = tempfile.mkstemp(prefix="photofind-query-", suffix=".png")
                    os.close(fd)
                    image.save(path, "PNG")  # type: ignore[call-overload]  # the stub wants bytes
                    query_now = dataclasses.replace(query, image_path=path)
                else:
                    query_now = query
                self.results.emit(serial, self._answer(lib, query_now), "")
            except PhotofindError as exc:
                self.results.emit(serial, [], str(exc))
            finally:
                if path is not None:
                    os.unlink(path)
        self._jobs.put(("query", job))

    def ask_status(self) -> None:
        self._jobs.put(("status", lambda lib: self.status.emit(lib.status())))

    def ask_failures(self) -> None:
        self._jobs.put(("failures", lambda lib: self.failures.emit(lib.catalog.failures())))

    def _answer(self, lib: Any, query: Query) -> list[Hit]:
        from photofind.core.search import Searcher, Term, parse_query

        if not query.text.strip() and not query.image_path:
            return [Hit(info, None) for info in lib.catalog.newest_first()]
        terms = parse_query(query.text) if query.text.strip() else []
        if query.image_path:
            terms.insert(0, Term(1.0, "image", query.image_path))
        lib.catch_up()  # what the engine wrote since the last query
        if lib.vectors() is None:
            raise PhotofindError("No photos are indexed yet: add a folder, and they appear"
                                 " here as indexing goes on.")
        return [Hit(info, score) for info, score in Searcher(lib).ranked(terms, SEARCH_LIMIT)]

    def _load_model(self, lib: Any) -> None:
        from photofind.core.model.sources import weights_download

        try:
            download = weights_download(self.settings.model)
            if download is not None:  # first run: the weights come from the hub
                self.model_downloading.emit(download)
            embedder = lib.embedder()
            embedder.text_vector("a photo")  # the text tower loads now, not on the first query
        except PhotofindError as exc:
            self.engine.use_model(None)
            self.model_failed.emit(str(exc))
            return
        except Exception:
            log.exception("loading the model failed")
            self.engine.use_model(None)
            self.model_failed.emit(f"The model {self.settings.model} could not be loaded;"
                                   " see the log for details.")
            return
        self.model_loaded = True
        self.engine.use_model(embedder)
        self.model_ready.emit(embedder.description)

    def switch(self, settings: Settings, embedder: Any) -> None:
        """Answer from now on with another model (the engine re-embedded for it)."""
        def job(_: Any) -> None:
            self._next = (settings, embedder)
        self._jobs.put(("switch", job))

    def _run(self) -> None:
        from photofind.core.library import Library

        lib = Library.open(self.settings)
        try:
            while True:
                item = self._jobs.get()
                if item is None:
                    return
                try:
                    item[1](lib)
                except Exception:
                    log.exception("the query thread failed on %s", item[0])
                if self._next is not None:
                    (self.settings, embedder), self._next = self._next, None
                    lib.close()
                    lib = Library.open(self.settings)
                    lib.use_embedder(embedder)
                    self.model_loaded = True
                    self.model_ready.emit(embedder.description)
        finally:
            lib.close()


class ThumbLoader(QObject):
    """Thumbnails from thumbs.sqlite3 as QImages, newest request first."""

    loaded = Signal(int, QImage)  # photo id, image (null when there is none)

    def __init__(self, library: Path, threads: int = 2) -> None:
        super().__init__()
        self.library = library
        self._wanted: list[int] = []
        self._generation = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._threads = [threading.Thread(target=self._run, name=f"photofind-thumbs-{i}",
                                          daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def request(self, photo_id: int) -> None:
        """Once per photo and result set (the pixmap cache remembers what it asked)."""
        with self._cond:
            self._wanted.append(photo_id)  # last in, first out
            self._cond.notify()

    def drop_pending(self) -> None:
        """A new result set: what the old one asked for is no longer needed."""
        with self._cond:
            self._wanted.clear()
            self._generation += 1

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(5)

    def _run(self) -> None:
        from photofind.core.thumbs import ThumbStore

        store: ThumbStore | None = None
        try:
            while True:
                with self._cond:
                    while not self._wanted and not self._stopping:
                        self._cond.wait()
                    if self._stopping:
                        return
                    photo_id, generation = self._wanted.pop(), self._generation
                if store is None:
                    store = ThumbStore(self.library / "thumbs.sqlite3")
                data = store.get(photo_id)
                image = QImage.fromData(data) if data else QImage()
                with self._cond:
                    current = generation == self._generation
                if current:
                    self.loaded.emit(photo_id, image)
        finally:
            if store is not None:
                store.close()


class Previews(QObject):
    """Large previews, decoded one at a time (the newest request wins)."""

    ready = Signal(str, QImage, str)  # path, image, error

    def __init__(self) -> None:
        super().__init__()
        self._jobs: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="photofind-preview", daemon=True)
        self._thread.start()

    def request(self, path: str, size: int) -> None:
        self._jobs.put((path, size))

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(5)

    def _run(self) -> None:
        from photofind.core.imaging import failure_reason, open_photo

        while True:
            job = self._jobs.get()
            while job is not None and not self._jobs.empty():
                job = self._jobs.get()  # only the newest request matters
            if job is None:
                return
            path, size = job
            try:
                opened = open_photo(path, draft_size=size)
                img = opened.image
                img.thumbnail((size, size))
                data = img.tobytes()
                image = QImage(data, img.width, img.height, 3 * img.width,
                               QImage.Format.Format_RGB888).copy()
                self.ready.emit(path, image, "")
            except Exception as exc:
                self.ready.emit(path, QImage(), failure_reason(exc))
