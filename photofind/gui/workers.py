"""Every thread the GUI uses, and nothing else creates one.

- ``SharedModel``: the one loaded model. The query thread loads it; the
  indexing thread waits for it; a model switch replaces it for both.
- ``SharedIndex``: the writer's in-memory vector index, which the query
  thread searches instead of loading a copy of its own.
- ``Engine``: one thread that owns the writing library: it waits for the
  model, then runs the core ``Watcher`` (reconcile, index, follow the
  folders) with progress, pause, resume and stop; folder changes, moving
  confirmed duplicates to the trash and keeping their hashes run on it
  through ``Watcher.submit``. When indexing goes quiet it labels the smart
  albums, giving way to new work.
- ``Queries``: one thread with its own read-only library that loads the model
  once and answers searches, "similar" queries, the newest-first listing,
  smart and saved albums, the Folders dialog's status and the Problems list.
  Exact copies of one file come back as one hit.
- ``DuplicateFinder``: one thread that looks for the duplicates of every tier
  with its own read-only library (a first look at a large library hashes
  many thumbnails: searches go on meanwhile); a request while it looks makes
  it look once more when done.
  A newer query replaces one still waiting, so typing never queues stale work.
- ``ThumbLoader``: a small pool reading thumbnails from thumbs.sqlite3, last
  request first (the tiles painted last are the ones on screen), requests of
  an older result set dropped.
- ``Previews``: one thread handing large previews and chip pictures to a
  decode worker *process* (``previewdecode``): a damaged or hostile file
  cannot take the window down.
- ``Locator``: one thread computing "Where?" heatmaps, cancelled when the
  viewer moves on.
- ``ModelDownloader``: one thread watching a first model download, which runs
  in a child process so that Cancel (or closing the window) stops it at once.

Workers hand plain data or ``QImage`` to the GUI thread through signals; only
the GUI thread makes ``QPixmap`` or touches widgets.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
import multiprocessing
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from photofind.core.config import Settings
from photofind.core.errors import PhotofindError
from photofind.core.watcher import WatchConfig
from photofind.gui import albumsource
from photofind.gui.data import Hit, Listing, Query

if TYPE_CHECKING:  # the lazy imports stay lazy: torch and friends load on a worker
    from photofind.core.catalog import PhotoInfo
    from photofind.core.duplicates import Found
    from photofind.core.indexer import Progress
    from photofind.core.library import Library
    from photofind.core.model.download import ModelDownload
    from photofind.core.model.encoder import Encoder
    from photofind.core.vectors import VectorIndex
    from photofind.core.watcher import Watcher
    from photofind.gui.previewdecode import Scaled

log = logging.getLogger(__name__)

SEARCH_LIMIT = 2000  # results a query fetches; the grid shows them in pages
PREVIEW_TIMEOUT = 30.0  # seconds a preview may take to decode


class SharedModel:
    """The loaded model, owned here and used by every thread.

    ``publish`` is called once the model loaded (or with None: it could not
    be), and again when a model switch finished; ``wait`` blocks until then.
    ``generation`` grows with every switch, so a thread knows to reopen its
    library for the new model.
    """

    def __init__(self, settings: Settings) -> None:
        self._cond = threading.Condition()
        self._settings = settings
        self._model: Encoder | None = None
        self._settled = False
        self.generation = 0

    def publish(self, settings: Settings, model: Encoder | None, *, switch: bool = False
                ) -> None:
        with self._cond:
            self._settings, self._model, self._settled = settings, model, True
            if switch:
                self.generation += 1
            self._cond.notify_all()

    def wait(self, stop: threading.Event) -> Encoder | None:
        """The model once it is settled (None: it could not load, or stopping)."""
        with self._cond:
            while not self._settled and not stop.is_set():
                self._cond.wait(0.2)
            return self._model

    def current(self) -> tuple[Settings, Encoder | None, int]:
        with self._cond:
            return self._settings, self._model, self.generation


class SharedIndex:
    """The writer's in-memory vector index for its model, once it is loaded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shared: tuple[str, VectorIndex] | None = None

    def publish(self, model: str, index: VectorIndex | None) -> None:
        with self._lock:
            self._shared = (model, index) if index is not None else None

    def get(self, model: str) -> VectorIndex | None:
        with self._lock:
            if self._shared is not None and self._shared[0] == model:
                return self._shared[1]
            return None


class Engine(QObject):
    """The writer thread: index and watch the library's folders."""

    progress = Signal(object)  # core.indexer.Progress, or None when a run ends
    changed = Signal(object)  # IndexReport counts: photos were added, removed ...
    roots_changed = Signal()
    problem = Signal(str)  # one sentence for the user
    model_switched = Signal(str)  # the model the library now answers with
    labelled = Signal()  # the smart albums caught up with photos indexed before
    trashed = Signal(object)  # core.trash.Trashed: what went to the trash, what stayed
    reading_text = Signal(bool)  # whether the library reads the text in photos

    def __init__(self, settings: Settings, models: SharedModel, index: SharedIndex,
                 watch: WatchConfig | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.models = models
        self.index = index
        self.watch = watch
        self._stop = threading.Event()
        self._calls: queue.Queue[Callable[[Library], None]] = queue.Queue()
        self._watcher: Watcher | None = None
        self._handover = threading.Lock()  # calls queued here until the watcher takes them
        self._thread = threading.Thread(target=self._run, name="photofind-engine", daemon=True)
        self.paused = False
        self.switching_to: str | None = None  # a model the library is being re-embedded for

    def start(self) -> None:
        self._thread.start()

    def add_folder(self, path: str) -> None:
        def call(lib: Library) -> None:
            _, note = lib.add_root(path)
            if note:
                self.problem.emit(note)
        self._submit(call)

    def remove_folder(self, path: str) -> None:
        def call(lib: Library) -> None:
            for root in lib.catalog.roots():
                if root.path == path:
                    lib.remove_root(root)
        self._submit(call)

    def trash(self, photo_ids: list[int]) -> None:
        """Move these photos to the system trash (the user confirmed) and forget them."""
        from photofind.core.trash import move_to_trash

        self._submit(lambda lib: self.trashed.emit(move_to_trash(lib, photo_ids)))

    def keep_hashes(self, found: Found) -> None:
        """Store the hashes the query thread computed for the duplicates (a cache)."""
        from photofind.core.duplicates import store_hashes

        self._submit(lambda lib: store_hashes(lib.catalog, found), roots=False)

    def switch_model(self, spec: str) -> None:
        """Re-embed the library for another model in the background; searches keep
        using the current one until ``model_switched`` says every photo is done."""
        self.switching_to = spec
        with self._handover:
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()  # ends this session; the next one runs with the new model

    def set_reading(self, enabled: bool) -> None:
        """Turn reading the text in photos on or off for the library (stored in it);
        the rescan that follows a call reads what is behind."""
        from photofind.core.textindex import set_reading

        def call(lib: Library) -> None:
            set_reading(lib.catalog, enabled)
            self.reading_text.emit(enabled)
        self._submit(call)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        watcher = self._watcher
        if watcher is not None:
            (watcher.pause if paused else watcher.resume)()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the batch in flight (it is committed) and wait for the thread."""
        self._stop.set()
        watcher = self._watcher
        if watcher is not None:
            watcher.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _submit(self, call: Callable[[Library], object], roots: bool = True) -> None:
        def done(lib: Library) -> None:
            try:
                call(lib)
            finally:
                if roots:
                    self.roots_changed.emit()
        with self._handover:
            watcher = self._watcher
            if watcher is not None:
                watcher.submit(functools.partial(done, watcher.lib))
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
        finally:
            self.index.publish("", None)

    def _session(self) -> None:
        """One library and one model, watched until stop() or a model switch."""
        from photofind.core.library import Library
        from photofind.core.textindex import reading_enabled
        from photofind.core.watcher import Watcher

        target = self.switching_to
        settings = dataclasses.replace(self.settings, model=target) if target else self.settings
        with Library.open(settings, writer=True) as lib:
            self.reading_text.emit(reading_enabled(lib.catalog))
            model: Encoder | None
            if target:
                model = self._load(lib)
                if model is None:
                    return  # the next session goes on with the current model
            else:
                model = self.models.wait(self._stop)
                if model is None or self._stop.is_set():
                    self._serve_calls(lib)  # no model: folders can change, nothing is embedded
                    return
                self.index.publish(lib.model, lib.vectors.index())
            lib.use_embedder(model)

            def progressed(progress: Progress | None) -> None:
                # The index exists once the first photo is stored (during a switch it
                # is the new model's: the query thread takes it only once it answers
                # with that model).
                self.index.publish(lib.model, lib.vectors.index())
                self.progress.emit(progress)
                if progress is None and target and self.switching_to == target \
                        and not _missing_vectors(lib, target):
                    self.settings, self.switching_to = settings, None
                    self.models.publish(settings, model, switch=True)
                    self.model_switched.emit(settings.model)
            watcher = Watcher(lib, self.watch, on_report=lambda r: self.changed.emit(r.counts()),
                              on_progress=progressed,
                              on_idle=functools.partial(self._label_when_idle, lib))
            if self.paused:
                watcher.pause()
            with self._handover:
                while not self._calls.empty():
                    watcher.submit(functools.partial(self._calls.get(), lib))
                self._watcher = watcher
            try:
                if not self._stop.is_set() and self.switching_to == target:
                    watcher.run()
            finally:
                self.index.publish("", None)  # the library closes: its index goes with it

    def _label_when_idle(self, lib: Library, busy: Callable[[], bool]) -> bool:
        """The smart albums catch up once indexing went quiet (see core/albums.py)."""
        from photofind.core.albums import label_when_idle

        labelled, done = label_when_idle(lib, busy)
        if labelled:
            self.labelled.emit()
        return done

    def _load(self, lib: Library) -> Encoder | None:
        try:
            return lib.embedder()
        except PhotofindError as exc:
            self.switching_to = None
            self.problem.emit(f"Staying with the current model: {exc}")
            return None

    def _serve_calls(self, lib: Library) -> None:
        while not self._stop.is_set() and not self.switching_to \
                and self.models.current()[1] is None:  # a first download may bring it
            try:
                call = self._calls.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                call(lib)
            except PhotofindError as exc:
                self.problem.emit(str(exc))


def _missing_vectors(lib: Library, model: str) -> bool:
    """Photos on connected drives that have no vector from ``model`` yet."""
    return lib.catalog.any_ok_photo_without_embedding(model)


Job = Callable[["Library"], None]


class Queries(QObject):
    """The query thread: the model, searches and library facts, one at a time."""

    model_downloading = Signal(object)  # core.model.sources.Download: a first download began
    model_ready = Signal(str)  # where it runs: "ONNX Runtime on CPU", "torch on CUDA"
    model_failed = Signal(str)  # why, in one sentence
    results = Signal(int, object, str)  # query serial, list[Hit], error ("" if none)
    status = Signal(object)  # doctor.status_report()
    failures = Signal(object)  # [(path, reason)]
    albums = Signal(object, object)  # smart albums [(label, count)], saved [SavedSearch]
    problem = Signal(str)  # one sentence for the user (a bad album name ...)
    facets = Signal(object, object, object)  # roots, {folder: photos}, {"YYYY-MM": photos}
    text_read = Signal(str, str, object)  # path, the text read in it, [Box] of the query's words

    def __init__(self, settings: Settings, models: SharedModel, index: SharedIndex) -> None:
        super().__init__()
        self.settings = settings
        self.models = models
        self.index = index
        self._jobs: queue.Queue[tuple[str, Job] | None] = queue.Queue()
        self._latest_query = 0
        self._serial_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="photofind-queries", daemon=True)
        self._generation = 0
        self._pages: Library | None = None  # what the all-photos listing reads its pages from
        self.model_loaded = False

    def start(self) -> None:
        self._thread.start()
        self.load_model()

    def load_model(self) -> None:
        """Load the model (again, after its first download finished or was resumed)."""
        self._jobs.put(("model", self._load_model))

    def model_unavailable(self, message: str) -> None:
        """There is no model for now (a first download was cancelled or failed): the
        indexing thread goes on without one, and ``model_failed`` says why."""
        self.models.publish(self.settings, None)
        self.model_failed.emit(message)

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

        def job(lib: Library) -> None:
            with self._serial_lock:
                if serial != self._latest_query:
                    return  # a newer query came in meanwhile
            path = None
            hits: Sequence[Hit] = []
            error = ""
            try:
                if image is not None:
                    fd, path = tempfile.mkstemp(prefix="photofind-query-", suffix=".png")
                    os.close(fd)
                    image.save(path, "PNG")  # type: ignore[call-overload]  # the stub wants bytes
                    query_now = dataclasses.replace(query, image_path=path)
                else:
                    query_now = query
                hits = self._answer(lib, query_now)
            except PhotofindError as exc:
                error = str(exc)
            finally:
                if path is not None:
                    os.unlink(path)  # gone before the answer is shown
            self.results.emit(serial, hits, error)
        self._jobs.put(("query", job))

    def ask_status(self) -> None:
        from photofind.core.doctor import status_report

        self._jobs.put(("status", lambda lib: self.status.emit(status_report(lib))))

    def ask_facets(self) -> None:
        """The sidebar's folders and dates, with their photo counts."""
        from photofind.core.filters import folder_counts, month_counts

        self._jobs.put(("facets", lambda lib: self.facets.emit(
            [r.path for r in lib.catalog.roots()], folder_counts(lib.catalog.db),
            month_counts(lib.catalog.db))))

    def ask_text(self, path: str, query: str) -> None:
        """The text read in a library photo and where the query's words are in it."""
        from photofind.core.textsearch import photo_text

        self._jobs.put(("text", lambda lib: self.text_read.emit(
            path, *photo_text(lib.catalog, path, query))))

    def ask_failures(self) -> None:
        self._jobs.put(("failures", lambda lib: self.failures.emit(lib.catalog.failures())))

    def ask_albums(self) -> None:
        """The sidebar's albums: smart ones with counts, and the saved searches."""
        from photofind.core.savedsearches import saved_searches

        self._jobs.put(("albums", lambda lib: self.albums.emit(
            albumsource.label_counts(lib), saved_searches(lib.catalog))))

    def save_album(self, name: str, query: Query, cutoff: int) -> None:
        from photofind.core.savedsearches import save_search

        self._album_change(lambda lib: save_search(lib.catalog, name, query.text,
                                                   query.image_path, cutoff))

    def rename_album(self, album_id: int, name: str) -> None:
        from photofind.core.savedsearches import rename_search

        self._album_change(lambda lib: rename_search(lib.catalog, album_id, name))

    def remove_album(self, album_id: int) -> None:
        from photofind.core.savedsearches import remove_search

        self._album_change(lambda lib: remove_search(lib.catalog, album_id))

    def _album_change(self, change: Callable[[Library], object]) -> None:
        def job(lib: Library) -> None:
            try:
                change(lib)
            except PhotofindError as exc:
                self.problem.emit(str(exc))
        self._jobs.put(("album", job))
        self.ask_albums()

    def _answer(self, lib: Library, query: Query) -> Sequence[Hit]:
        from photofind.core.search import Searcher, Term, parse_query

        if query.album:
            ranked = albumsource.album(lib, query.album, SEARCH_LIMIT, query.flt or None)
            return self._with_labels(lib, ranked)
        if not query.text.strip() and not query.image_path:
            if not query.flt:
                return self._listing(lib)
            return self._with_labels(lib, [(info, None) for info
                                           in Searcher(lib).browse(query.flt)])
        terms = parse_query(query.text) if query.text.strip() else []
        if query.image_path:
            terms.insert(0, Term(1.0, "image", query.image_path))
        self._follow_writer(lib)
        if lib.vectors.index() is None:
            raise PhotofindError("No photos are indexed yet: add a folder, and they appear"
                                 " here as indexing goes on.")
        return self._with_labels(lib, Searcher(lib).ranked(terms, SEARCH_LIMIT, query.flt))

    def _follow_writer(self, lib: Library) -> None:
        """Search the writer's index when there is one, else catch up our own."""
        shared = self.index.get(lib.model)
        lib.vectors.share(shared)
        if shared is None:
            lib.vectors.catch_up()  # what the engine wrote since the last query

    def _listing(self, lib: Library) -> Listing:
        """Every photo newest first, its rows read a page at a time by the window
        on a connection of its own (a page is a few hundred rows by key)."""
        from photofind.core.duplicates import library_copies
        from photofind.core.library import Library

        copies = library_copies(lib.catalog)  # exact copies: one tile, the others in it
        hidden = {other.id for others in copies.values() for other in others}
        ids = [pid for pid in lib.catalog.newest_first_ids() if pid not in hidden]
        if self._pages is None or self._pages.settings != lib.settings:
            if self._pages is not None:
                self._pages.close()
            self._pages = Library.open(lib.settings)  # one for every listing of this library
        pages = self._pages

        def load(page: list[int]) -> dict[int, Hit]:
            infos = pages.catalog.photo_info(page)
            labels = albumsource.labels_of(pages, list(infos))
            return {pid: Hit(info, None, tuple(labels.get(pid, ())), copies.get(pid, ()))
                    for pid, info in infos.items()}
        return Listing(ids, load)

    @staticmethod
    def _with_labels(lib: Library, ranked: list[tuple[PhotoInfo, float]]
                     | list[tuple[PhotoInfo, None]]) -> list[Hit]:
        """Hits with their labels; exact copies of one file as one hit."""
        from photofind.core.duplicates import collapse_exact

        collapsed = collapse_exact(lib.catalog, ranked)
        labels = albumsource.labels_of(lib, [info.id for info, _, _ in collapsed])
        return [Hit(info, score, tuple(labels.get(info.id, ())), copies)
                for info, score, copies in collapsed]

    def _load_model(self, lib: Library) -> None:
        from photofind.core.model.download import ModelDownload
        from photofind.core.model.sources import weights_download

        try:
            download = weights_download(self.settings.model)
            if download is not None:  # first run: the weights come from the hub
                self.model_downloading.emit(download)
            if isinstance(download, ModelDownload):
                return  # the window runs it (ModelDownloader), then calls load_model()
            embedder = lib.embedder()
            embedder.text_vector("a photo")  # the text tower loads now, not on the first query
        except PhotofindError as exc:
            self.models.publish(self.settings, None)
            self.model_failed.emit(str(exc))
            return
        except Exception:
            log.exception("loading the model failed")
            self.models.publish(self.settings, None)
            self.model_failed.emit(f"The model {self.settings.model} could not be loaded;"
                                   " see the log for details.")
            return
        self.model_loaded = True
        self.models.publish(self.settings, embedder)
        self.model_ready.emit(embedder.description)

    def _run(self) -> None:
        from photofind.core.library import Library

        lib = Library.open(self.settings)
        try:
            while True:
                item = self._jobs.get()
                if item is None:
                    return
                settings, embedder, generation = self.models.current()
                if generation != self._generation and embedder is not None:
                    self._generation, self.settings = generation, settings
                    lib.close()  # a model switch finished: answer with the new model
                    lib = Library.open(settings)
                    lib.use_embedder(embedder)
                    self.model_loaded = True  # (a first run may have had none before)
                    self.model_ready.emit(embedder.description)
                try:
                    item[1](lib)
                except Exception:
                    log.exception("the query thread failed on %s", item[0])
        finally:
            lib.close()
            if self._pages is not None:
                self._pages.close()


class DuplicateFinder(QObject):
    """The duplicates of every tier, found on their own thread."""

    found = Signal(object)  # core.duplicates.Found (hashes computed come along, for the writer)

    def __init__(self, models: SharedModel, index: SharedIndex) -> None:
        super().__init__()
        self.models = models
        self.index = index
        self._cond = threading.Condition()
        self._wanted = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="photofind-duplicates",
                                        daemon=True)
        self._thread.start()

    def request(self) -> None:
        with self._cond:
            self._wanted = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(30)

    def _run(self) -> None:
        from photofind.core.duplicates import find_duplicates
        from photofind.core.library import Library

        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._wanted or self._stopping)
                if self._stopping:
                    return
                self._wanted = False
            settings, _, _ = self.models.current()
            try:
                with Library.open(settings) as lib:
                    lib.vectors.share(self.index.get(lib.model))  # the writer's, if loaded
                    found = find_duplicates(lib)
            except PhotofindError as exc:
                log.warning("looking for duplicates failed: %s", exc)
                continue
            except Exception:
                log.exception("looking for duplicates failed")
                continue
            self.found.emit(found)


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
                    self._cond.wait_for(lambda: self._wanted or self._stopping)
                    if self._stopping:
                        return
                    photo_id, generation = self._wanted.pop(), self._generation
                if store is None:
                    store = ThumbStore.of_library(self.library)
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
    """Pictures for the viewer and the search chip, decoded one at a time in a
    worker process (the newest request of each kind wins)."""

    ready = Signal(str, int, QImage, str)  # path, size asked, image, error ("" if none)

    def __init__(self) -> None:
        super().__init__()
        self._jobs: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._thread = threading.Thread(target=self._run, name="photofind-preview", daemon=True)
        self._thread.start()

    def request(self, path: str, size: int) -> None:
        self._jobs.put((path, size))

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(5)

    def _run(self) -> None:
        try:
            while True:
                job = self._jobs.get()
                pending = [job]
                while job is not None and not self._jobs.empty():
                    job = self._jobs.get()
                    pending.append(job)
                if None in pending:
                    return
                newest: dict[int, tuple[str, int]] = {}  # one per size: a chip and a preview
                for item in pending:
                    if item is not None:
                        newest[item[1]] = item
                for path, size in newest.values():
                    image, error = self._decode(path, size)
                    self.ready.emit(path, size, image, error)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)

    def _decode(self, path: str, size: int) -> tuple[QImage, str]:
        from photofind.core.decodepool import memory_cap
        from photofind.core.imaging import failure_reason
        from photofind.gui.previewdecode import decode_scaled, limit_memory

        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"),
                initializer=limit_memory, initargs=(memory_cap(1),))
        future = self._pool.submit(decode_scaled, path, size)
        try:
            scaled: Scaled = future.result(PREVIEW_TIMEOUT)
        except BrokenProcessPool:  # the file crashed the decoder; the next one gets a new one
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            return QImage(), "the decoder crashed on this file"
        except concurrent.futures.TimeoutError:
            self._kill_pool()
            return QImage(), "it took too long to decode"
        except MemoryError:
            return QImage(), "too large"
        except Exception as exc:
            return QImage(), failure_reason(exc)
        image = QImage(scaled.rgb, scaled.width, scaled.height, 3 * scaled.width,
                       QImage.Format.Format_RGB888).copy()
        return image, ""

    def _kill_pool(self) -> None:
        """A decode that hangs: the executor cannot cancel a running call, so its
        process is killed (the next request starts a new one)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            pool.shutdown(wait=True, cancel_futures=True)


class Locator(QObject):
    """"Where?": the heatmap of a text over one photo, on its own thread.

    ``request`` replaces whatever was asked before; a run in progress is told
    to stop at its next patch batch (``cancel``), and its late answer is never
    emitted.
    """

    located = Signal(int, object, str)  # request serial, albumsource.Location, error

    def __init__(self, settings: Settings, models: SharedModel) -> None:
        super().__init__()
        self.settings = settings
        self.models = models
        self._cond = threading.Condition()
        self._wanted: tuple[int, str, str] | None = None
        self._serial = 0
        self._stopping = False
        self.running: int | None = None  # the serial being computed now
        self.cancelled_runs = 0  # runs stopped part-way because the user moved on
        self._thread = threading.Thread(target=self._run, name="photofind-locate", daemon=True)
        self._thread.start()

    def request(self, path: str, text: str) -> int:
        with self._cond:
            self._serial += 1
            self._wanted = (self._serial, path, text)
            self._cond.notify_all()
            return self._serial

    def cancel(self) -> None:
        with self._cond:
            self._serial += 1
            self._wanted = None

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._serial += 1
            self._cond.notify_all()
        self._thread.join(10)

    def _moved_on(self, serial: int) -> bool:
        with self._cond:
            return serial != self._serial or self._stopping

    def _run(self) -> None:
        from photofind.core.library import Library

        lib: Library | None = None
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._wanted is not None or self._stopping)
                    if self._stopping:
                        return
                    assert self._wanted is not None
                    (serial, path, text), self._wanted = self._wanted, None
                    self.running = serial
                settings, embedder, _ = self.models.current()
                if lib is None or lib.settings.model != settings.model:
                    if lib is not None:
                        lib.close()
                    lib = Library.open(settings)
                if embedder is not None:
                    lib.use_embedder(embedder)
                try:
                    location = albumsource.locate(lib, path, text,
                                                  functools.partial(self._moved_on, serial))
                    error = ""
                except albumsource.Cancelled:
                    location, error = None, ""
                except PhotofindError as exc:
                    location, error = None, str(exc)
                with self._cond:
                    self.running = None
                    current = serial == self._serial and not self._stopping
                    if not current:
                        self.cancelled_runs += 1
                if current:
                    self.located.emit(serial, location, error)
        finally:
            if lib is not None:
                lib.close()


class ModelDownloader(QObject):
    """A first model download (``core.model.download.ModelDownload``, a child
    process) watched from its own thread. ``cancel`` kills the process, so it
    returns at once even when the network stalls; what arrived stays on disk and
    the next download goes on from it."""

    finished = Signal()  # the files are in the Hugging Face cache: load the model
    failed = Signal(str)  # one sentence: what to do instead
    cancelled = Signal(object, object)  # bytes kept, total bytes (None: unknown)

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, download: ModelDownload) -> None:
        self.cancel()
        self._cancel.clear()
        self._thread = threading.Thread(target=self._run, args=(download,),
                                        name="photofind-download", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop the download (if one runs) and wait for its thread to end."""
        self._cancel.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self, download: ModelDownload) -> None:
        try:
            download.start()
            while not download.wait(0.1):
                if self._cancel.is_set():
                    download.cancel()
                    self.cancelled.emit(download.done(), download.total)
                    return
        except Exception:
            log.exception("the model download could not run")
            download.cancel()
            self.failed.emit(download.failure)
            return
        if download.error:
            log.warning("the model download failed: %s", download.error)
            self.failed.emit(download.failure)
        else:
            self.finished.emit()
