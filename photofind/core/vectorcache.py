"""The vector cache of one model: the HNSW file beside the catalog, kept in
step with the catalog's embeddings.

On load the newest generation is used only if its checksum matches the
catalog's manifest; otherwise the index is rebuilt from the stored vectors
(never re-embedded). Either way it then catches up with embeddings stored
after it was saved and drops ids the catalog no longer has. Saving writes a
new generation file, then commits its manifest (the one commit point), then
removes generations nobody needs. Only the writer saves: a reader (a search,
a read-only library) keeps what it rebuilt in memory, so it never needs the
writer's lock and never writes into the library folder.
"""

from __future__ import annotations

import logging
import os

from photofind.core.catalog import Catalog, Manifest
from photofind.core.libfiles import LibraryFiles
from photofind.core.vectors import VectorIndex

log = logging.getLogger(__name__)

# Save policy: a writer saves a new generation when the vectors added or dropped
# since the last save reach SAVE_FRACTION of the saved index (and at least
# SAVE_MIN of them; the crash tests set it low), at the end of a full pass and
# when it closes. Saves then come at sizes growing by 1 + SAVE_FRACTION, so
# indexing a library from empty writes at most (1 + 1/SAVE_FRACTION) = 2.33
# times the final file, plus the final save; what a start after a crash adds
# from the catalog is under SAVE_FRACTION / (1 + SAVE_FRACTION) = 43% of the
# library, and is logged.
# (the variable keeps the name it had when saves came every N photos)
SAVE_MIN = int(os.environ.get("PHOTOFIND_SAVE_EVERY") or 5000)
SAVE_FRACTION = 0.75


class VectorCache:
    def __init__(self, catalog: Catalog, files: LibraryFiles, model: str, *,
                 saves: bool) -> None:
        self.catalog = catalog
        self.files = files
        self.model = model
        self.saves = saves
        self._index: VectorIndex | None = None
        self.covered_seq = 0  # the highest embedding seq the index holds
        self.dirty = False
        self._shared = False  # _index is another cache's (share)
        self.saved_count = 0  # vectors in the generation last saved (or loaded)
        self.unsaved = 0  # vectors added or dropped since then

    def index(self) -> VectorIndex | None:
        """The HNSW index for this model, loaded, caught up and reconciled
        (None while the library has no embeddings for the model)."""
        if self._index is None:
            index = self._load()
            if index is None:
                return None
            self._index = index
            self._add_newer(index)
            if self.unsaved:
                log.info("the index file lacked %d vectors stored since it was saved;"
                         " they were added from the catalog", self.unsaved)
            # The index now holds every stored vector; it holds a stale one only if
            # it holds more. (Counting is one step; listing 100,000 ids in Python
            # crawls while another thread imports torch: sqlite hands back the GIL
            # on every row.)
            if len(index) != self.catalog.embedding_count(self.model):
                self._drop_stale(index)
            self.save_if_due()
        return self._index

    def _load(self) -> VectorIndex | None:
        manifest = self.catalog.manifest(self.model)
        if manifest is not None:
            path = self.files.index(manifest.generation)
            try:
                index = VectorIndex.load(path, manifest.dim, manifest.sha256)
                self.covered_seq = manifest.max_seq
                self.saved_count, self.unsaved = len(index), 0
                return index
            except (OSError, ValueError, RuntimeError) as exc:
                log.warning("index file %s is unusable (%s); rebuilding it from the catalog",
                            path.name, exc)
        dim = self.catalog.embedding_dim(self.model)
        if dim is None:
            return None
        self.covered_seq = 0
        self.dirty = True
        self.saved_count = self.unsaved = 0
        return VectorIndex(dim, capacity=self.catalog.embedding_count(self.model) + 1024)

    def rebuild(self, threads: int = 1) -> int:
        """Build the index anew from the stored vectors and save it."""
        dim = self.catalog.embedding_dim(self.model)
        if dim is None:
            return 0
        self._index = VectorIndex(dim, self.catalog.embedding_count(self.model) + 1024)
        self.covered_seq = self.unsaved = 0
        self._add_newer(self._index, threads)
        self.dirty = True
        self.save()
        return len(self._index)

    def share(self, index: VectorIndex | None) -> None:
        """Search ``index``, another cache's for this model that its writer keeps
        current, instead of loading a copy (the window's query thread reads the
        indexing thread's); None: load our own again on the next ``index()``."""
        if index is None and self._shared:
            self._index = None
        elif index is not None:
            self._index = index
        self._shared = index is not None

    def catch_up(self) -> None:
        """Add what the catalog stored since the index last saw it (after each batch)."""
        if self._index is None:
            self.index()
        else:
            self._add_newer(self._index)

    def _add_newer(self, index: VectorIndex, threads: int = 1) -> None:
        for ids, vecs, seq in self.catalog.embeddings_after(self.model, self.covered_seq):
            index.add(ids, vecs, threads)
            self.covered_seq = seq
            self.dirty = True
            self.unsaved += len(ids)

    def _drop_stale(self, index: VectorIndex) -> None:
        stale = index.ids() - self.catalog.embedding_ids(self.model)
        if stale:
            index.remove(stale)
            self.dirty = True
            self.unsaved += len(stale)

    def forget(self, ids: list[int]) -> None:
        if self._index is not None and ids:
            self._index.remove(ids)
            self.dirty = True
            self.unsaved += len(ids)

    def save_due(self) -> bool:
        """Whether the part of the index no saved generation holds has grown
        enough to be worth rewriting the whole file for (see SAVE_FRACTION)."""
        return self.dirty and self.unsaved >= max(SAVE_MIN, SAVE_FRACTION * self.saved_count)

    def save_if_due(self) -> None:
        """Save when ``save_due``: what is not saved yet stays in the catalog, and
        the next start adds it from there."""
        if self.save_due():
            self.save()

    def save(self) -> None:
        """Write a new generation, then commit its manifest (the commit point).
        Does nothing in a reader, or when nothing changed."""
        index = self._index
        if index is None or not self.dirty or not self.saves:
            return
        generation = self.catalog.max_generation() + 1
        digest = index.save(self.files.index(generation))
        self.catalog.commit_manifest(Manifest(self.model, generation, digest, index.dim,
                                              self.covered_seq, len(index)))
        self.dirty = False
        self.saved_count, self.unsaved = len(index), 0
        keep = self.catalog.generations_in_use() | {generation - 1}  # a reader may load it
        for gen, path in self.files.index_files():
            if gen not in keep or path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)
