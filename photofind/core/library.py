"""A library folder: its catalog, vector cache, thumbnails and writer lock.

``Library.open(settings, writer=True)`` takes ``photofind.lock`` (one writer
per library; a second one gets LibraryBusyError) and is what ``add``,
``remove`` and ``index`` use. Readers (``search``, ``similar``, ``status``)
take no lock and keep working while another process writes.

The HNSW file is a cache of the catalog's embeddings. On load it is used only
if its sha256 matches the manifest; otherwise it is rebuilt from the stored
vectors (never re-embedded). Either way it then catches up with embeddings
stored after it was saved and drops ids the catalog no longer has.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from photofind.core.catalog import Catalog, Manifest, Root, catalog_problem, salvage_roots
from photofind.core.config import Settings
from photofind.core.errors import LibraryBusyError, PhotofindError
from photofind.core.model.loading import ModelSlot, model_id
from photofind.core.thumbs import ThumbStore
from photofind.core.vectors import VectorIndex

if TYPE_CHECKING:
    from photofind.core.model.encoder import Encoder

log = logging.getLogger(__name__)


class WriterLock:
    """An exclusive, non-blocking lock on ``photofind.lock`` (released on exit,
    also when the process dies)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def try_acquire(self) -> bool:
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
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return True

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class Library:
    def __init__(self, settings: Settings, *, writer: bool) -> None:
        self.settings = settings
        self.dir = settings.library
        self.model = model_id(settings.model, settings.image_int8)  # what vectors are stored under
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PhotofindError(f"Cannot create the library folder {self.dir}: "
                                 f"{exc.strerror or exc}.") from exc
        self._lock = WriterLock(self.dir / "photofind.lock")
        self.writer = writer
        if writer and not self._lock.try_acquire():
            raise LibraryBusyError(
                f"The library {self.dir} is in use by another photofind (indexing or"
                " watching); wait for it to finish or stop it first.")
        catalog_path = self.dir / "catalog.sqlite3"
        salvaged: list[str] = []
        if writer and catalog_path.exists():
            problem = catalog_problem(catalog_path)
            if problem:
                salvaged = self._move_aside(catalog_path, problem)
        self.catalog = Catalog(catalog_path)
        for root in salvaged:
            self.catalog.add_root(root)
        self._thumbs: ThumbStore | None = None
        self._model_slot = ModelSlot(settings)
        self._vectors: VectorIndex | None = None
        self.covered_seq = 0
        self.vectors_dirty = False

    def _move_aside(self, path: Path, problem: str) -> list[str]:
        """Keep a damaged catalog (never delete it) and start a new one with the
        same folders, which the next index rescans."""
        roots = salvage_roots(path)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = path.with_name(f"catalog.damaged-{stamp}.sqlite3")
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(path) + suffix)
            if part.exists():
                os.replace(part, Path(str(aside) + suffix))
        for old in self.dir.glob("vectors.*.hnsw"):
            old.unlink()
        if roots:
            log.warning("the catalog was damaged (%s); it was moved to %s and its %d"
                        " folders will be rescanned", problem, aside.name, len(roots))
        else:
            log.warning("the catalog was damaged (%s); it was moved to %s and its folders"
                        " could not be read: add them again with `photofind index FOLDER`",
                        problem, aside.name)
        return roots

    @classmethod
    def open(cls, settings: Settings, *, writer: bool = False) -> Library:
        return cls(settings, writer=writer)

    def close(self) -> None:
        if self._thumbs:
            self._thumbs.close()
        self.catalog.close()
        self._lock.release()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def thumbs(self) -> ThumbStore:
        if self._thumbs is None:
            self._thumbs = ThumbStore(self.dir / "thumbs.sqlite3")
        return self._thumbs

    def close_thumbs(self) -> None:
        if self._thumbs is not None:
            self._thumbs.close()
            self._thumbs = None

    def missing_thumbnails(self) -> list[tuple[int, str, int]]:
        """(photo id, path, root id) of indexed photos that have no thumbnail."""
        have = {r[0] for r in self.thumbs.db.execute("SELECT photo_id FROM thumbs")}
        rows = self.catalog.db.execute(
            "SELECT id, path, root_id FROM photos WHERE status = 'ok'")
        return [(pid, path, root) for pid, path, root in rows if pid not in have]

    def make_thumbnails(self, photos: list[tuple[int, str]]) -> int:
        """Decode (in isolated workers) and store thumbnails; returns how many."""
        from photofind.core.decodepool import DecodePool
        from photofind.core.imaging import Decoded, Preprocess

        made = 0
        with DecodePool(Preprocess(64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))) as pool:
            for (photo_id, _), result in pool.run(photos, lambda item: item[1]):
                if isinstance(result, Decoded):
                    self.thumbs.put_many([(photo_id, result.thumbnail)])
                    made += 1
        return made

    def embedder(self) -> Encoder:
        """The model, loaded on first use (see core/model/loading.py)."""
        return self._model_slot.get()

    def load_model_soon(self) -> None:
        """Start loading the model in a thread; ``embedder()`` waits for it."""
        self._model_slot.load_soon()

    @property
    def model_loaded(self) -> bool:
        return self._model_slot.loaded

    def use_embedder(self, embedder: Encoder) -> None:
        """Share a model loaded elsewhere (the GUI loads it once for every thread)."""
        self._model_slot.use(embedder)

    # --- roots and status -------------------------------------------------
    def add_root(self, path: str) -> tuple[Root, str | None]:
        """Add a folder; returns the root and a note for the user, if any.

        A folder inside an existing root is already covered. A folder that
        contains existing roots absorbs them: their photos keep their ids and
        embeddings.
        """
        for root in self.catalog.roots():
            if _inside(path, root.path):
                note = None if path == root.path else f"{path} is already covered by {root.path}."
                return root, note
        new = self.catalog.add_root(path)
        absorbed = [r for r in self.catalog.roots() if r.id != new.id and _inside(r.path, path)]
        if absorbed:
            self.catalog.merge_roots([r.id for r in absorbed], new.id)
        return new, None

    def remove_root(self, root: Root) -> int:
        """Forget a folder and its photos (the files are not touched)."""
        ids = self.catalog.remove_root(root.id)
        self.thumbs.delete(ids)
        if self.vectors() is not None:
            self.forget_vectors(ids)
            self.save_vectors()
        return len(ids)

    def status(self) -> dict[str, Any]:
        from photofind.core.model.loading import planned
        from photofind.core.scanner import root_is_online

        counts = self.catalog.counts_by_root()
        roots = []
        for root in self.catalog.roots():
            ok, failed = counts.get(root.id, (0, 0))
            online = root_is_online(Path(root.path), ok + failed)
            roots.append({"path": root.path, "state": "online" if online else "offline",
                          "photos": ok})
        failures: dict[str, int] = {}
        for _, reason in self.catalog.failures():
            failures[reason] = failures.get(reason, 0) + 1
        try:
            runtime, device, engine = planned(self.settings)
        except PhotofindError as exc:
            runtime, device, engine = self.settings.runtime, self.settings.device, str(exc)
        return {"photos": sum(c[0] for c in counts.values()),
                "failed": sum(c[1] for c in counts.values()),
                "model": self.model, "device": device, "runtime": runtime, "engine": engine,
                "roots": roots, "failures": failures}

    # --- the vector cache ------------------------------------------------
    def vectors(self) -> VectorIndex | None:
        """The HNSW index for this model, loaded, caught up and reconciled
        (None while the library has no embeddings for the model)."""
        if self._vectors is None:
            index = self._load_vectors()
            if index is None:
                return None
            self._vectors = index
            self._add_newer(index)
            # The index now holds every stored vector; it holds a stale one only if
            # it holds more. (Counting is one step; listing 100,000 ids in Python
            # crawls while another thread imports torch: sqlite hands back the GIL
            # on every row.)
            if len(index) != self.catalog.embedding_count(self.model):
                self._drop_stale(index)
            if self.vectors_dirty:
                self._save_if_we_can()
        return self._vectors

    def _index_path(self, generation: int) -> Path:
        return self.dir / f"vectors.{generation}.hnsw"

    def _load_vectors(self) -> VectorIndex | None:
        manifest = self.catalog.manifest(self.model)
        if manifest is not None:
            path = self._index_path(manifest.generation)
            try:
                index = VectorIndex.load(path, manifest.dim, manifest.sha256)
                self.covered_seq = manifest.max_seq
                return index
            except (OSError, ValueError, RuntimeError) as exc:
                log.warning("index file %s is unusable (%s); rebuilding it from the catalog",
                            path.name, exc)
        dim = self.catalog.embedding_dim(self.model)
        if dim is None:
            return None
        self.covered_seq = 0
        self.vectors_dirty = True
        return VectorIndex(dim, capacity=self.catalog.embedding_count(self.model) + 1024)

    def rebuild_vectors(self) -> int:
        """Build the index anew from the stored vectors and save it."""
        dim = self.catalog.embedding_dim(self.model)
        if dim is None:
            return 0
        self._vectors = VectorIndex(dim, self.catalog.embedding_count(self.model) + 1024)
        self.covered_seq = 0
        self._add_newer(self._vectors)
        self.vectors_dirty = True
        self.save_vectors()
        return len(self._vectors)

    def catch_up(self) -> None:
        """Add what the catalog stored since the index last saw it (after each batch)."""
        if self._vectors is None:
            self.vectors()
        else:
            self._add_newer(self._vectors)

    def _add_newer(self, index: VectorIndex) -> None:
        for ids, vecs, seq in self.catalog.embeddings_after(self.model, self.covered_seq):
            index.add(ids, vecs)
            self.covered_seq = seq
            self.vectors_dirty = True

    def _drop_stale(self, index: VectorIndex) -> None:
        stale = index.ids() - self.catalog.embedding_ids(self.model)
        if stale:
            index.remove(stale)
            self.vectors_dirty = True

    def forget_vectors(self, ids: list[int]) -> None:
        if self._vectors is not None and ids:
            self._vectors.remove(ids)
            self.vectors_dirty = True

    def _save_if_we_can(self) -> None:
        """A reader that rebuilt the cache saves it only if no writer is running."""
        if self.writer:
            self.save_vectors()
            return
        if self._lock.try_acquire():
            try:
                self.save_vectors()
            finally:
                self._lock.release()

    def save_vectors(self) -> None:
        """Write a new generation, then commit its manifest (the commit point)."""
        index = self._vectors
        if index is None or not self.vectors_dirty:
            return
        generation = self.catalog.max_generation() + 1
        path = self._index_path(generation)
        digest = index.save(path)
        self.catalog.commit_manifest(Manifest(self.model, generation, digest, index.dim,
                                              self.covered_seq, len(index)))
        self.vectors_dirty = False
        self._remove_old_generations(generation)

    def _remove_old_generations(self, newest: int) -> None:
        keep = self.catalog.generations_in_use() | {newest - 1}  # a reader may be loading it
        for path in self.dir.glob("vectors.*.hnsw*"):
            parts = path.name.split(".")
            try:
                gen = int(parts[1])
            except (IndexError, ValueError):
                continue
            if gen not in keep or path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
