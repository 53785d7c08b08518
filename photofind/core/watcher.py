"""The live library: keep the catalog in line with the folders on disk.

``Watcher.run()`` reconciles every root (the same scan as ``index``), then
watches them until ``stop()``. watchdog's events are hints, never the truth:
an event only marks its folder dirty; after a short quiet spell the dirty
folders are rescanned by the scanner, so a burst of thousands of events costs
one rescan per folder. A new or changed file is indexed only once it is
complete: its size and mtime held still across two looks ``settle`` seconds
apart, and it opens for reading. A root that vanishes goes offline (nothing
removed, its observer stopped) and is brought back by a periodic check.
Network and FUSE roots get the polling observer; running out of inotify
watches falls back to polling with one warning. A full reconcile runs
periodically too, catching whatever events were lost. ``pause()`` holds a
run between batches; ``submit()`` runs a call (adding a folder, say) on the
watcher's thread, which owns the library, and reconciles after it. Once an
index run is done and nothing is waiting, ``on_idle`` does low-priority work
(the smart albums' labels), giving way as soon as new work comes in.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from photofind.core.catalog import Root
from photofind.core.errors import PhotofindError
from photofind.core.indexer import IndexReport, Progress, apply_changes
from photofind.core.library import Library
from photofind.core.reading import ReadingProgress, StopReading
from photofind.core.records import FileRecord
from photofind.core.scanner import ChangeSet, root_online, scan, scan_folders

log = logging.getLogger(__name__)

NETWORK_FS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "afs", "9p", "ceph",
                        "glusterfs", "davfs", "ncpfs"})
TEMP_SUFFIXES = (".part", ".crdownload", ".download", ".partial", ".tmp", ".temp", ".!qb")
IGNORED_EVENTS = frozenset({"opened", "closed_no_write"})


@dataclass
class WatchConfig:
    debounce: float = 1.0  # quiet seconds before dirty folders are rescanned
    settle: float = 2.0  # a file must hold still this long before it is indexed
    offline_check: float = 30.0  # how often offline roots are looked for
    reconcile_every: float = 1800.0  # full rescan, for events the observers lost
    poll_interval: float = 5.0  # the polling observer's period
    force_polling: bool = False  # poll every root (benchmarks, odd filesystems)


def filesystem_type(path: str) -> str:
    """The type of the filesystem holding path (Linux /proc/mounts), or ''."""
    best, kind = "", ""
    try:
        with open("/proc/mounts") as fh:
            for line in fh:
                parts = line.split()
                mount = parts[1].replace("\\040", " ")
                if (path == mount or path.startswith(mount.rstrip("/") + "/")) \
                        and len(mount) >= len(best):
                    best, kind = mount, parts[2]
    except OSError:
        pass
    return kind


def needs_polling(path: str) -> bool:
    kind = filesystem_type(path)
    return kind in NETWORK_FS or kind.startswith("fuse.")


def ignorable(name: str) -> bool:
    return name.startswith((".", "~$")) or name.lower().endswith(TEMP_SUFFIXES)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher, root: Root) -> None:
        self.watcher, self.root = watcher, root

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in IGNORED_EVENTS:
            return
        paths = [os.fsdecode(event.src_path)]
        if getattr(event, "dest_path", ""):
            paths.append(os.fsdecode(event.dest_path))
        for path in paths:
            if not ignorable(os.path.basename(path)) or len(paths) > 1:
                self.watcher.mark(self.root, os.path.dirname(path))


class Watcher:
    """Drives the live library from one thread (the library's writer)."""

    def __init__(self, lib: Library, config: WatchConfig | None = None,
                 on_report: Callable[[IndexReport], None] | None = None,
                 on_progress: Callable[[Progress | None], None] | None = None,
                 on_idle: Callable[[Callable[[], bool]], bool] | None = None) -> None:
        self.lib = lib
        self.config = config or WatchConfig()
        self.on_report = on_report
        self.on_progress = on_progress  # each batch; None when a run ends
        # Low-priority work once the folders are quiet: on_idle(busy) returns
        # True when done; it checks busy() and returns early when new work came.
        self.on_idle = on_idle
        self._idle_pending = True  # set again after every index run
        self._calls: list[Callable[[], None]] = []
        self.rescans = 0  # folder rescans done (tests count them)
        self._lock = threading.Lock()
        self._dirty: dict[int, set[str]] = {}
        self._last_event = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._observers: dict[int, BaseObserver] = {}
        # path -> (size, mtime_ns, first seen, when to look again), monotonic times
        self._unsettled: dict[str, tuple[int, int, float, float]] = {}

    # --- control (any thread) ---------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()
        self._wake.set()

    def submit(self, call: Callable[[], None]) -> None:
        """Run ``call`` on the watcher's thread (which owns the library) soon: a
        run in progress stops after its batch, the call runs, and a reconcile
        picks up what the run left (the library's roots may have changed)."""
        with self._lock:
            self._calls.append(call)
        self._wake.set()

    def mark(self, root: Root, folder: str) -> None:
        """An event happened in folder (called from observer threads)."""
        if _inside(folder, str(self.lib.dir)):
            return  # our own catalog writes
        if not _inside(folder, root.path):
            folder = root.path
        with self._lock:
            self._dirty.setdefault(root.id, set()).add(folder)
            self._last_event = time.monotonic()
        self._wake.set()

    # --- the loop -----------------------------------------------------------
    def run(self) -> None:
        """Reconcile, then watch until stop(); always leaves everything saved."""
        try:
            self._reconcile(self.lib.catalog.roots())
            next_reconcile = time.monotonic() + self.config.reconcile_every
            next_check = time.monotonic() + self.config.offline_check
            while not self._stop.is_set():
                self._wake.wait(0.25)
                self._wake.clear()
                if self._stop.is_set():
                    continue
                try:
                    if self._run_calls():
                        self._reconcile(self.lib.catalog.roots())
                    if self._paused.is_set():
                        continue
                    now = time.monotonic()
                    if self._due(now):
                        self._rescan_dirty()
                    if now >= next_check:
                        self._check_roots()
                        next_check = now + self.config.offline_check
                    if now >= next_reconcile:
                        next_reconcile = now + self.config.reconcile_every
                        self._reconcile(self.lib.catalog.roots())
                    self._idle_step()
                except Exception as exc:  # answered with a reconcile, never a crash
                    if isinstance(exc, PhotofindError):
                        log.warning("%s", exc)
                    else:
                        log.exception("the watcher hit an error; reconciling")
                    next_reconcile = time.monotonic() + self.config.offline_check
        finally:
            for observer in self._observers.values():
                observer.stop()
            for observer in self._observers.values():
                observer.join(2)
            self._observers.clear()
            self.lib.vectors.save()

    def _idle_step(self) -> None:
        """Once the folders went quiet, the low-priority work (``on_idle``) runs;
        it gives way when ``_has_work`` turns true and is asked again later."""
        if self.on_idle is None or not self._idle_pending or self._has_work():
            return
        self._idle_pending = not self.on_idle(self._has_work)

    def _has_work(self) -> bool:
        """New work came in: stop, pause, a call, file events, files settling."""
        with self._lock:
            waiting = bool(self._calls or self._dirty)
        return (waiting or bool(self._unsettled) or self._stop.is_set()
                or self._paused.is_set())

    def _due(self, now: float) -> bool:
        with self._lock:
            quiet = now - self._last_event >= self.config.debounce
            dirty = bool(self._dirty)
        waiting = any(now >= due for *_, due in self._unsettled.values())
        return (dirty and quiet) or waiting

    def _run_calls(self) -> bool:
        with self._lock:
            calls, self._calls = self._calls, []
        for call in calls:
            try:
                call()
            except PhotofindError as exc:
                log.warning("%s", exc)
        return bool(calls)

    def _interrupted(self) -> bool:
        """Wait here while paused; True when the run should stop after this batch."""
        while self._paused.is_set() and not self._stop.is_set() and not self._calls:
            self._wake.wait(0.25)
            self._wake.clear()
        return self._stop.is_set() or bool(self._calls)

    def _events_beat_reading(self, progress: Progress) -> bool:
        """Files that changed go before reading text (it resumes after them)."""
        with self._lock:
            return isinstance(progress, ReadingProgress) and bool(self._dirty)

    def _apply(self, changes: ChangeSet) -> None:
        self._idle_pending = True
        run = apply_changes(self.lib, changes)
        try:
            while True:
                progress = next(run)
                if self.on_progress:
                    self.on_progress(progress)
                if self._interrupted():
                    run.close()  # stops after the batch just written; the
                    return  # reconcile that follows the calls finds the rest
                if self._events_beat_reading(progress):
                    run.throw(StopReading())  # the run ends here, with its report
        except StopIteration as done:
            report: IndexReport = done.value
        finally:
            if self.on_progress:
                self.on_progress(None)
        if self.on_report and any(report.counts()[k] for k in
                                  ("added", "updated", "moved", "removed", "failed")):
            self.on_report(report)

    def _reconcile(self, roots: list[Root]) -> None:
        # Watch first, then scan: a file landing during the scan raises an event.
        for root in roots:
            if root_online(self.lib.catalog, root):
                self._watch(root)
        changes = scan(self.lib.catalog, roots, self.lib.dir)
        self._hold_unsettled(changes)
        self._apply(changes)
        for root in changes.offline:
            self._unwatch(root)

    def _rescan_dirty(self) -> None:
        with self._lock:
            dirty, self._dirty = self._dirty, {}
        for path in list(self._unsettled):  # files waiting to settle get another look
            root = self._root_of(path)
            if root is not None:
                dirty.setdefault(root.id, set()).add(os.path.dirname(path))
        roots = {r.id: r for r in self.lib.catalog.roots()}
        folders: dict[Root, list[str]] = {}
        for root_id, dirs in dirty.items():
            root = roots.get(root_id)
            if root is None:
                continue
            if not root_online(self.lib.catalog, root):
                self._go_offline(root)
                continue
            folders[root] = _outermost(dirs)
        if not folders:
            return
        self.rescans += 1
        changes = scan_folders(self.lib.catalog, folders, self.lib.dir)
        self._hold_unsettled(changes)
        self._apply(changes)

    def _hold_unsettled(self, changes: ChangeSet) -> None:
        """Leave out new or changed files that may still be being written (and
        say which roots and folders are offline)."""
        for path in [r.path for r in changes.offline] + sorted(changes.absent):
            log.warning("%s is offline; its photos are kept", path)
        now = time.monotonic()
        changes.new = [f for f in changes.new if self._settled(f, now)]
        changes.changed = [(row, f) for row, f in changes.changed if self._settled(f, now)]
        for path in [p for p in self._unsettled if not os.path.exists(p)]:
            del self._unsettled[path]

    def _settled(self, found: FileRecord, now: float) -> bool:
        """Untouched for `settle` seconds (by its mtime, or by two looks that
        far apart) and readable: then the file is complete."""
        if found.problem:
            return True  # never opened: nothing to wait for (listed as failed now)
        key = (found.size, found.mtime_ns)
        seen = self._unsettled.get(found.path)
        still_for = now - seen[2] if seen is not None and seen[:2] == key else 0.0
        old = time.time() - found.mtime_ns / 1e9 >= self.config.settle
        # (A file that never opens is handed on after a while: the decoder
        # records why, e.g. permission denied.)
        if (old or still_for >= self.config.settle) and (
                _readable(found.path) or still_for >= 10 * self.config.settle):
            self._unsettled.pop(found.path, None)
            return True
        if not still_for:
            # Look again when the file will have been still for `settle` seconds,
            # going by its mtime (a finished copy needs no second full wait).
            age = max(0.0, time.time() - found.mtime_ns / 1e9)
            due = now + max(0.1, self.config.settle - age + 0.05)
            self._unsettled[found.path] = (*key, now, due)
        return False

    # --- roots and observers ----------------------------------------------
    def _check_roots(self) -> None:
        """Take vanished roots offline, bring back returned ones, restart dead
        observers."""
        back = []
        for root in self.lib.catalog.roots():
            observer = self._observers.get(root.id)
            online = root_online(self.lib.catalog, root)
            if observer is not None and not online:
                self._go_offline(root)
            elif observer is not None and not observer.is_alive():
                log.warning("the watcher of %s stopped; restarting it", root.path)
                self._unwatch(root)
                back.append(root)
            elif observer is None and online:
                back.append(root)
        if back:
            self._reconcile(back)

    def _go_offline(self, root: Root) -> None:
        log.warning("%s is offline; its photos are kept", root.path)
        self.lib.catalog.set_root_state(root.id, "offline")
        self._unwatch(root)

    def _watch(self, root: Root) -> None:
        if root.id in self._observers:
            return
        polling = self.config.force_polling or needs_polling(root.path)
        observer = self._start_observer(root, polling)
        if observer is None and not polling:
            log.warning("out of inotify watches for %s: watching it by polling instead"
                        " (raise the sysctl fs.inotify.max_user_watches to fix)", root.path)
            observer = self._start_observer(root, True)
        if observer is not None:
            self._observers[root.id] = observer

    def _start_observer(self, root: Root, polling: bool) -> BaseObserver | None:
        observer: BaseObserver = (PollingObserver(timeout=self.config.poll_interval)
                                  if polling else Observer())
        try:
            observer.schedule(_Handler(self, root), root.path, recursive=True)
            observer.start()
        except OSError as exc:
            log.debug("observer for %s failed: %s", root.path, exc)
            with contextlib.suppress(Exception):
                observer.stop()
            return None
        return observer

    def _unwatch(self, root: Root) -> None:
        observer = self._observers.pop(root.id, None)
        if observer is not None:
            observer.stop()
            observer.join(2)

    def _root_of(self, path: str) -> Root | None:
        for root in self.lib.catalog.roots():
            if _inside(path, root.path):
                return root
        return None


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _outermost(folders: set[str]) -> list[str]:
    """Drop folders that sit inside another one of the set."""
    keep: list[str] = []
    for folder in sorted(folders, key=len):
        if not any(_inside(folder, k) for k in keep):
            keep.append(folder)
    return keep


def _readable(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError:
        return False
    return True
