"""A library folder and its writer lock.

``Library.open(settings, writer=True)`` locks the folder (one writer per
library; a second one gets LibraryBusyError) and is what ``add``, ``remove``,
``index`` and ``watch`` use; it first checks the catalog and moves a damaged
one aside (never one that merely could not be opened). The check reads the
whole file, so it is skipped when the last writer closed cleanly and nothing
wrote to the file since (``photofind doctor`` checks it on demand). Readers (``search``,
``similar``, ``status``, ``failed``) take no lock, never write into the
folder, and keep working while another process writes; on read-only media
they open the databases read-only.

The files' names live in libfiles.py, the vector cache in vectorcache.py,
thumbnails in thumbs.py.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from photofind.core import roots
from photofind.core.catalog import Catalog, Root, database_problem, salvage_roots
from photofind.core.config import Settings
from photofind.core.errors import LibraryBusyError, PhotofindError
from photofind.core.libfiles import LibraryFiles, fingerprint, move_aside
from photofind.core.model.loading import ModelSlot, model_id
from photofind.core.thumbs import ThumbStore
from photofind.core.vectorcache import VectorCache

if TYPE_CHECKING:
    from photofind.core.model.encoder import Encoder

log = logging.getLogger(__name__)


class WriterLock:
    """An exclusive, non-blocking lock on a library folder, released on close
    and when the process dies.

    On POSIX the folder itself is locked (flock), so deleting ``photofind.lock``
    by hand cannot let a second writer in; the file only tells people which
    process writes. Where folders cannot be locked (Windows, some network file
    systems) the open lock file is locked instead (Windows cannot delete an
    open file).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = LibraryFiles(folder).lock
        self._fd: int | None = None
        self._fh: IO[str] | None = None

    def try_acquire(self) -> bool:
        if os.name != "nt":
            import fcntl

            fd = os.open(self.folder, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return False
            else:
                self._fd = fd
        if self._fd is None and not self._lock_file():
            return False
        self._write_pid()
        return True

    def _lock_file(self) -> bool:
        fh = open(self.path, "a+")  # noqa: SIM115 - held open while the lock is held
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self._fh = fh
        return True

    def _write_pid(self) -> None:
        try:
            if self._fh is not None:
                self._fh.seek(0)
                self._fh.truncate()
                self._fh.write(f"{os.getpid()}\n")
                self._fh.flush()
            else:
                self.path.write_text(f"{os.getpid()}\n")
        except OSError:
            pass  # the pid is for people; the lock is held

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Library:
    def __init__(self, settings: Settings, *, writer: bool) -> None:
        self.settings = settings
        self.dir = settings.library
        self.model = model_id(settings.model, settings.image_int8)  # what vectors are stored under
        self.files = LibraryFiles(self.dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PhotofindError(f"Cannot create the library folder {self.dir}: "
                                 f"{exc.strerror or exc}.") from exc
        self.read_only = not self.files.writable()
        self.writer = writer
        self._lock = WriterLock(self.dir)
        # Databases known sound this session: checked, or untouched since a writer
        # closed them cleanly (a clean close records them; see _clean_marks).
        self._sound: set[str] = set()
        self._marks: dict[str, list[list[int]]] = {}
        if writer:
            self._take_lock()
            self._marks = self._clean_marks()
        salvaged = self._salvage() if writer else []
        self.catalog = self._open_catalog()
        for root in salvaged:
            self.catalog.add_root(root)
        self.vectors = VectorCache(self.catalog, self.files, self.model, saves=writer)
        self._thumbs: ThumbStore | None = None
        self._model_slot = ModelSlot(settings)

    def _take_lock(self) -> None:
        if self.read_only:
            raise PhotofindError(
                f"The library {self.dir} is read-only, so it cannot be changed here:"
                " search, similar, status and failed work on it, adding and indexing do not.")
        if not self._lock.try_acquire():
            raise LibraryBusyError(
                f"The library {self.dir} is in use by another photofind (indexing or"
                " watching); wait for it to finish or stop it first.")

    def _salvage(self) -> list[str]:
        """Keep a damaged catalog (never delete it) and start a new one with the
        same folders, which the next index rescans."""
        path = self.files.catalog
        try:
            problem = database_problem(path) if self._needs_check(path) else None
        except PhotofindError:
            self._lock.release()
            raise
        self._sound.add(path.name)
        if not problem:
            return []
        roots = salvage_roots(path)
        aside = move_aside(path)
        for _, old in self.files.index_files():
            old.unlink()
        if roots:
            log.warning("the catalog was damaged (%s); it was moved to %s and its %d"
                        " folders will be rescanned", problem, aside.name, len(roots))
        else:
            log.warning("the catalog was damaged (%s); it was moved to %s and its folders"
                        " could not be read: add them again with `photofind index FOLDER`",
                        problem, aside.name)
        return roots

    def _clean_marks(self) -> dict[str, list[list[int]]]:
        """What the last writer recorded when it closed cleanly, removed now: a
        session that dies leaves none, so the next writer checks the databases."""
        try:
            marks = json.loads(self.files.clean.read_text())
            self.files.clean.unlink()
        except (OSError, ValueError):
            return {}
        return marks if isinstance(marks, dict) else {}

    def _needs_check(self, path: Path) -> bool:
        """A database is checked (quick_check, which reads all of it) unless the
        last writer closed it cleanly and nothing has written to it since."""
        return path.exists() and self._marks.get(path.name) != fingerprint(path)

    def _write_clean_marks(self) -> None:
        marks = {name: fingerprint(self.dir / name) for name in sorted(self._sound)}
        tmp = self.files.clean.with_name(self.files.clean.name + ".tmp")
        try:
            tmp.write_text(json.dumps(marks))
            os.replace(tmp, self.files.clean)
        except OSError:  # the next writer checks the databases, that is all
            tmp.unlink(missing_ok=True)

    def _open_catalog(self) -> Catalog:
        path = self.files.catalog
        try:
            return Catalog(path, read_only=self.read_only)
        except sqlite3.DatabaseError as exc:
            self._lock.release()
            if self.read_only and not path.exists():
                raise PhotofindError(f"The library {self.dir} has no catalog, and it is"
                                     " read-only: there is nothing to search.") from exc
            raise PhotofindError(
                f"The catalog {path} cannot be read ({exc}); `photofind index` moves a"
                " damaged one aside and starts a new one.") from exc
        except PhotofindError:
            self._lock.release()
            raise

    @classmethod
    def open(cls, settings: Settings, *, writer: bool = False) -> Library:
        return cls(settings, writer=writer)

    def close(self) -> None:
        if self._thumbs:
            self._thumbs.close()
        self.catalog.close()
        if self.writer:
            self._write_clean_marks()
        self._lock.release()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def thumbs(self) -> ThumbStore:
        """The thumbnail store; a writer moves a damaged one aside and starts anew."""
        if self._thumbs is None:
            path = self.files.thumbs
            if self.writer and self._needs_check(path):
                problem = database_problem(path)
                if problem:
                    aside = move_aside(path)
                    log.warning("the thumbnail store was damaged (%s); it was moved to %s and"
                                " a new one is started", problem, aside.name)
            self._thumbs = ThumbStore(path, read_only=self.read_only)
            if self.writer:
                self._sound.add(path.name)
        return self._thumbs

    def embedder(self) -> Encoder:
        """The model, loaded on first use (see core/model/loading.py)."""
        return self._model_slot.get()

    def load_model_soon(self, texts: Sequence[str] = (), images: bool = False) -> None:
        """Start loading the model in a thread (and encoding ``texts`` there, a
        query's words; with ``images``, loading the image tower there too);
        ``embedder()`` waits for it."""
        self._model_slot.load_soon(texts, images)

    @property
    def model_loaded(self) -> bool:
        return self._model_slot.loaded

    def use_embedder(self, embedder: Encoder) -> None:
        """Share a model loaded elsewhere (the GUI loads it once for every thread)."""
        self._model_slot.use(embedder)

    # --- roots -------------------------------------------------
    def add_root(self, path: str) -> tuple[Root, str | None]:
        """Add a folder (resolved, see roots.py); returns the root and a note for
        the user, if any: a folder equal to or inside a root is already covered;
        a folder that contains roots absorbs them, their photos keeping their ids
        and embeddings."""
        real = roots.resolved(path)
        covering, absorbed = roots.place(real, self.catalog.roots())
        note = roots.note_for(path, real, covering, absorbed)
        if covering is not None:
            return covering, note
        new = self.catalog.add_root(real)
        if absorbed:
            self.catalog.merge_roots([r.id for r in absorbed], new.id)
        return new, note

    def remove_root(self, root: Root) -> int:
        """Forget a folder and its photos (the files are not touched)."""
        ids = self.catalog.remove_root(root.id)
        self.thumbs.delete(ids)
        if self.vectors.index() is not None:
            self.vectors.forget(ids)
            self.vectors.save()
        return len(ids)

