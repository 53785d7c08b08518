"""The vector index: hnswlib (cosine) behind a readers-writer lock.

Labels are photo ids. hnswlib is not safe between ``add_items``,
``knn_query``, ``resize_index`` and ``mark_deleted``, so every call goes
through :class:`RWLock`. Saving writes a new generation file atomically
(temp, fsync, rename) and returns its checksum (xxh3-128); the catalog's manifest commit
is what makes that generation current (see vectorcache.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from pathlib import Path

import hnswlib
import numpy as np
import numpy.typing as npt
import xxhash

M = 24  # 16 lost recall on tightly clustered libraries (tests/integration/test_recall.py)
EF_CONSTRUCTION = 200
DIGEST_PREFIX = "xxh3-128:"
# Text-to-image queries need about twice the ef of image-to-image ones for the
# same recall (measured on 100k x 512 vectors; tests/integration/test_recall.py
# holds both): text vectors sit apart from the images.
EF_IMAGE = 128
EF_TEXT = 256
# Up to this many photos one matrix product is as fast as the graph and exact
# (10,000 x 512 floats: 20 MB, a few milliseconds).
EXACT_MAX = 10_000
# A filtered walk keeps only the allowed share of what it visits: below this
# share it takes twice the ef for the same recall (100,000 photos, text-like
# queries, filters keeping 10% and 15%: recall@10 0.988 and 0.983 at ef 256,
# 0.995 and 0.998 at 512).
NARROW_FILTER = 0.25


class RWLock:
    """Many readers or one writer; writers are not starved by new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class VectorIndex:
    """An HNSW index of unit vectors keyed by photo id."""

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        self.dim = dim
        self._lock = RWLock()
        self._index = hnswlib.Index(space="cosine", dim=dim)
        self._index.init_index(max_elements=max(capacity, 16), ef_construction=EF_CONSTRUCTION,
                               M=M, random_seed=42)
        self._live: set[int] = set()
        self._exact: tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]] | None = None

    @classmethod
    def load(cls, path: Path, dim: int, expected_digest: str) -> VectorIndex:
        """Load a generation file; raises ValueError unless its checksum matches."""
        if file_digest(path, expected_digest) != expected_digest:
            raise ValueError(f"{path.name}: checksum mismatch")
        self = cls.__new__(cls)
        self.dim = dim
        self._lock = RWLock()
        self._index = hnswlib.Index(space="cosine", dim=dim)
        self._index.load_index(str(path), allow_replace_deleted=False)
        # hnswlib lists deleted labels too: the caller reconciles with the
        # catalog (remove() tolerates labels that are already deleted).
        self._live = {int(x) for x in self._index.get_ids_list()}
        self._exact = None
        return self

    def __len__(self) -> int:
        return len(self._live)

    def ids(self) -> set[int]:
        with self._lock.read():
            return set(self._live)

    def add(self, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32],
            threads: int = 1) -> None:
        """Add or replace vectors (a replaced or re-added id takes the new vector);
        ``threads`` > 1 for a bulk rebuild."""
        if not len(ids):
            return
        with self._lock.write():
            # add_items on a deleted label un-deletes it and takes the new vector.
            needed = self._index.get_current_count() + len(ids)
            if needed > self._index.get_max_elements():
                self._index.resize_index(max(needed, int(self._index.get_max_elements() * 1.5)))
            self._index.add_items(np.asarray(vectors, dtype=np.float32),
                                  np.asarray(ids, dtype=np.int64), num_threads=threads)
            self._live.update(int(i) for i in ids)
            self._exact = None

    def remove(self, ids: list[int] | set[int]) -> None:
        with self._lock.write():
            for label in ids:
                if label in self._live:
                    self._exact = None
                    self._live.discard(int(label))
                    with contextlib.suppress(RuntimeError):  # already deleted in a loaded file
                        self._index.mark_deleted(int(label))

    def query(self, vector: npt.NDArray[np.float32], k: int, ef: int = EF_IMAGE
              ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Nearest photo ids and cosine similarities, best first; k clamped to the live count.

        Small libraries are searched exactly; larger ones through the graph with ``ef``.
        """
        with self._lock.read():
            k = min(k, len(self._live))
            if k <= 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            if len(self._live) <= EXACT_MAX:
                return self._exact_query(np.asarray(vector, np.float32), k)
            self._index.set_ef(max(ef, 2 * k))
            labels, dist = self._index.knn_query(np.asarray(vector, np.float32)[None, :], k=k,
                                                 num_threads=1)
        return labels[0].astype(np.int64), (1.0 - dist[0]).astype(np.float32)

    def query_filtered(self, vector: npt.NDArray[np.float32], k: int, allowed: AbstractSet[int],
                       ef: int = EF_IMAGE
                       ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]] | None:
        """Like :meth:`query`, among the photo ids in ``allowed`` only.

        The graph is walked with the filter (hnswlib checks each candidate it
        would keep), so the answer costs a search, not a scan. None when the
        graph cannot find ``k`` allowed photos (most of them are not in this
        index): the caller then searches the allowed photos exactly.
        """
        with self._lock.read():
            k = min(k, len(self._live), len(allowed))
            if k <= 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            if len(self._live) <= EXACT_MAX:
                return self._exact_query(np.asarray(vector, np.float32), k, allowed)
            narrow = len(allowed) < NARROW_FILTER * len(self._live)
            self._index.set_ef(max(2 * ef if narrow else ef, 2 * k))
            try:
                labels, dist = self._index.knn_query(np.asarray(vector, np.float32)[None, :],
                                                     k=k, num_threads=1,
                                                     filter=allowed.__contains__)
            except RuntimeError:  # fewer than k allowed photos were reachable
                return None
        return labels[0].astype(np.int64), (1.0 - dist[0]).astype(np.float32)

    def _exact_query(self, vector: npt.NDArray[np.float32], k: int,
                     allowed: AbstractSet[int] | None = None
                     ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """One matrix product over the stored (unit) vectors, of the ``allowed``
        ids when given; call under the read lock."""
        exact = self._exact
        if exact is None:  # rebuilt after a change; writers are excluded meanwhile
            ids = np.fromiter(sorted(self._live), np.int64, len(self._live))
            exact = self._exact = (ids, np.asarray(self._index.get_items(ids), np.float32))
        ids, matrix = exact
        if allowed is not None:
            keep = np.isin(ids, np.fromiter(allowed, np.int64, len(allowed)))
            ids, matrix = ids[keep], matrix[keep]
            k = min(k, len(ids))
            if k <= 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
        return best(ids, matrix @ (vector / max(float(np.linalg.norm(vector)), 1e-12)), k)

    def save(self, path: Path) -> str:
        """Write atomically to ``path`` (temp, fsync, rename); returns its digest."""
        tmp = path.with_name(path.name + ".tmp")
        with self._lock.read():
            self._index.save_index(str(tmp))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        digest = file_digest(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
        return digest


def best(ids: npt.NDArray[np.int64], scores: npt.NDArray[np.float32], k: int
         ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The ``k`` best-scoring ids, best first (ties by id), and their scores."""
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.lexsort((ids[top], -scores[top]))]
    return ids[top], scores[top].astype(np.float32)


def file_digest(path: Path, like: str = DIGEST_PREFIX) -> str:
    """The checksum of an index file, ``xxh3-128:<hex>``. At 100,000 photos (226 MB)
    it takes 0.043 s where sha256 took 0.162 s; it guards against torn and stale
    files, not against someone who can write the library. ``like``: an older
    manifest's bare hex digest, for which the file's sha256 is computed."""
    if not like.startswith(DIGEST_PREFIX):
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    # Read into one buffer, not mapped: a mapped file on a failing or network drive
    # kills the process (SIGBUS) where a read raises OSError and the index is
    # rebuilt; the map would save 0.02 s at 100,000 photos.
    digest = xxhash.xxh3_128()
    buf = bytearray(1 << 23)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            digest.update(view[:n])
    return DIGEST_PREFIX + digest.hexdigest()


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` survive a power cut (POSIX; elsewhere a no-op)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
