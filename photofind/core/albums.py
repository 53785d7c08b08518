"""Smart albums: every photo's labels, kept in the catalog per model.

Labels are derived data, computed from the stored image vectors (nothing is
re-embedded, nothing is written into a user's files), so they stay off the
indexing path: ``update_labels`` catches them up when albums are asked for
(the CLI, as the library's writer) and once indexing went quiet
(``label_when_idle``: the window's engine, ``photofind watch``). It labels
embeddings stored since it last ran (``label_state.max_seq``), drops labels
of photos that lost their embedding, and starts over when the vocabulary
changes. A model has its own labels, as it has its own vectors; a deleted
photo takes its labels with it (ON DELETE CASCADE). The vocabulary's text
vectors are kept in the catalog per model and in the user's cache per model
weights (conceptcache.py), so the text tower encodes them once per model,
not once per library.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from photofind.core import conceptcache
from photofind.core.catalog import Catalog, PhotoInfo
from photofind.core.classify import (
    Interrupted,
    Matrix,
    TextEncoder,
    Vocabulary,
    concept_vectors,
    keep_labels,
    library_vocabulary,
    probabilities,
)
from photofind.core.errors import PhotofindError
from photofind.core.filters import Filter, matching_ids

log = logging.getLogger(__name__)

# Embeddings labelled per step (between steps, an idle labeller gives way).
LABEL_CHUNK = 2000

if TYPE_CHECKING:
    from photofind.core.library import Library


@dataclass(frozen=True)
class Album:
    label: str
    group: str
    count: int


def cached_concept_vectors(catalog: Catalog, model: str, vocab: Vocabulary,
                           encoder: Callable[[], TextEncoder], *, spec: str,
                           store: bool = True,
                           interrupted: Callable[[], bool] | None = None
                           ) -> tuple[Matrix, float]:
    """(text vectors, logit scale) for the vocabulary under ``model``: from the
    catalog, else from the user's cache (``spec``: the model spec, whose
    weights key it), else encoded (``encoder()`` loads the model) and cached
    there. Only the writer (``store``) puts them into the catalog, in place of
    an older vocabulary's (one set per model: the library's). Raises
    classify.Interrupted when ``interrupted()`` turns true while encoding."""
    digest = vocab.digest
    row = catalog.db.execute(
        "SELECT logit_scale, dim, vecs FROM concept_vectors WHERE model = ? AND digest = ?",
        (model, digest)).fetchone()
    if row is not None:
        vecs = np.frombuffer(row[2], dtype=np.float32).reshape(-1, int(row[1]))
        if len(vecs) == len(vocab.concepts):
            return vecs, float(row[0])
    found = conceptcache.load(spec, digest, len(vocab.concepts))
    if found is None:
        model_ = encoder()
        found = concept_vectors(model_, vocab, interrupted), float(model_.logit_scale)
        conceptcache.save(spec, digest, *found)
    vecs, scale = found
    if store:
        with catalog.transaction() as db:
            db.execute("DELETE FROM concept_vectors WHERE model = ?", (model,))
            db.execute("INSERT INTO concept_vectors(model, digest, logit_scale, dim, vecs)"
                       " VALUES (?,?,?,?,?)", (model, digest, scale, vecs.shape[1],
                                               vecs.astype(np.float32).tobytes()))
    return vecs, scale


def labels_behind(lib: Library, vocab: Vocabulary | None = None) -> bool:
    """Whether some stored vectors of the current model are not labelled yet."""
    vocab = vocab or library_vocabulary()
    state = lib.catalog.db.execute("SELECT digest, max_seq FROM label_state WHERE model = ?",
                                   (lib.model,)).fetchone()
    since = state[1] if state and state[0] == vocab.digest else 0
    newer = lib.catalog.db.execute(
        "SELECT 1 FROM embeddings WHERE model = ? AND seq > ? LIMIT 1",
        (lib.model, since)).fetchone()
    return newer is not None or (state is not None and state[0] != vocab.digest)


def update_labels(lib: Library, vocab: Vocabulary | None = None,
                  interrupted: Callable[[], bool] | None = None) -> int:
    """Label what was embedded since the last call; returns how many photos.
    ``interrupted()`` is asked between steps: when it turns true the call
    returns, keeping what it labelled (the next call goes on from there)."""
    vocab = vocab or library_vocabulary()
    db, model = lib.catalog.db, lib.model
    state = db.execute("SELECT digest, max_seq FROM label_state WHERE model = ?",
                       (model,)).fetchone()
    since = state[1] if state and state[0] == vocab.digest else 0
    if since == 0 and state is not None:  # another vocabulary: start over
        with lib.catalog.transaction() as tx:
            tx.execute("DELETE FROM photo_labels WHERE model = ?", (model,))
            tx.execute("DELETE FROM label_state WHERE model = ?", (model,))
    labelled = 0
    text: tuple[Matrix, float] | None = None
    names = vocab.labels
    for ids, vecs, seq in lib.catalog.embeddings_after(model, since, LABEL_CHUNK):
        if interrupted is not None and interrupted():
            return labelled
        if text is None:
            try:
                text = cached_concept_vectors(lib.catalog, model, vocab, lib.embedder,
                                              spec=lib.settings.model, interrupted=interrupted)
            except Interrupted:
                return labelled
        probs = probabilities(vecs, text[0], text[1])
        rows = [(int(pid), model, label, round(p, 5))
                for pid, row in zip(ids.tolist(), probs, strict=True)
                for label, p in keep_labels(row, names)]
        with lib.catalog.transaction() as tx:
            tx.executemany("DELETE FROM photo_labels WHERE model = ? AND photo_id = ?",
                           [(model, int(pid)) for pid in ids.tolist()])
            tx.executemany("INSERT INTO photo_labels(photo_id, model, label, probability)"
                           " VALUES (?,?,?,?)", rows)
            tx.execute("INSERT OR REPLACE INTO label_state(model, digest, max_seq)"
                       " VALUES (?,?,?)", (model, vocab.digest, seq))
        labelled += len(ids)
    _drop_unembedded(lib.catalog, model)
    return labelled


def label_when_idle(lib: Library, busy: Callable[[], bool]) -> tuple[int, bool]:
    """The writer's low-priority step once indexing went quiet (the window's
    engine and ``photofind watch`` run it): label what is behind, giving way as
    soon as ``busy()`` says new work came in. Returns (photos labelled, whether
    the labels are caught up). A model that cannot load or a bad vocabulary
    costs the labels (logged), never the indexing."""
    try:
        if not labels_behind(lib):
            return 0, True
        labelled = update_labels(lib, interrupted=busy)
        return labelled, not labels_behind(lib)
    except PhotofindError as exc:
        log.warning("the smart albums are not up to date: %s", exc)
        return 0, True


def _drop_unembedded(catalog: Catalog, model: str) -> None:
    """A photo that became unreadable (its embedding went) leaves its albums."""
    with catalog.transaction() as tx:
        tx.execute("DELETE FROM photo_labels WHERE model = ? AND photo_id NOT IN"
                   " (SELECT photo_id FROM embeddings WHERE model = ?)", (model, model))


def smart_albums(lib: Library, vocab: Vocabulary | None = None) -> list[Album]:
    """The labels that have photos, most photos first."""
    vocab = vocab or library_vocabulary()
    rows = lib.catalog.db.execute(
        "SELECT l.label, COUNT(*) AS n FROM photo_labels l JOIN photos p ON p.id = l.photo_id"
        " WHERE l.model = ? AND p.status = 'ok' GROUP BY l.label ORDER BY n DESC, l.label",
        (lib.model,))
    return [Album(label, vocab.group_of(label), int(n)) for label, n in rows]


def album_photos(lib: Library, label: str, limit: int | None = None,
                 flt: Filter | None = None) -> list[tuple[PhotoInfo, float]]:
    """The photos of one smart album, most probable first; with a filter, the
    ``limit`` best of those it keeps (filtered before the cut)."""
    rows = lib.catalog.db.execute(
        "SELECT photo_id, probability FROM photo_labels WHERE model = ? AND label = ?"
        " ORDER BY probability DESC, photo_id LIMIT ?",
        (lib.model, label, -1 if flt else limit or -1)).fetchall()
    if flt:
        kept = matching_ids(lib.catalog.db, flt)
        rows = [r for r in rows if r[0] in kept][:limit or None]
    info = lib.catalog.photo_info([r[0] for r in rows])
    return [(info[pid], float(p)) for pid, p in rows if pid in info]


def photo_labels(lib: Library, photo_ids: Sequence[int]) -> dict[int, list[tuple[str, float]]]:
    """Each photo's labels, best first (photos without labels are left out)."""
    out: dict[int, list[tuple[str, float]]] = {}
    ids = list(photo_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = lib.catalog.db.execute(
            f"SELECT photo_id, label, probability FROM photo_labels WHERE model = ? AND"
            f" photo_id IN ({','.join('?' * len(chunk))}) ORDER BY probability DESC",
            (lib.model, *chunk))
        for pid, label, p in rows:
            out.setdefault(int(pid), []).append((label, float(p)))
    return out
