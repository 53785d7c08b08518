"""Smart albums: every photo's labels, kept in the catalog per model.

Labels are derived data, computed from the stored image vectors (nothing is
re-embedded, nothing is written into a user's files). ``update_labels``
catches them up after every index run or watch batch: it labels embeddings
stored since it last ran (``label_state.max_seq``), drops labels of photos
that lost their embedding, and starts over when the vocabulary changes. A
model has its own labels, as it has its own vectors; a deleted photo takes
its labels with it (ON DELETE CASCADE). The vocabulary's text vectors are
cached in the catalog per model, so the text tower runs once per model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from photofind.core.catalog import Catalog, PhotoInfo
from photofind.core.classify import (
    Matrix,
    TextEncoder,
    Vocabulary,
    concept_vectors,
    keep_labels,
    library_vocabulary,
    probabilities,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from photofind.core.library import Library


@dataclass(frozen=True)
class Album:
    label: str
    group: str
    count: int


def cached_concept_vectors(catalog: Catalog, model: str, vocab: Vocabulary,
                           encoder: Callable[[], TextEncoder], *, store: bool = True
                           ) -> tuple[Matrix, float]:
    """(text vectors, logit scale) for the vocabulary under ``model``, from the
    catalog, or encoded (``encoder()`` loads the model) and, by the writer
    (``store``), stored there in place of an older vocabulary's (one set per
    model: the library's)."""
    digest = vocab.digest
    row = catalog.db.execute(
        "SELECT logit_scale, dim, vecs FROM concept_vectors WHERE model = ? AND digest = ?",
        (model, digest)).fetchone()
    if row is not None:
        vecs = np.frombuffer(row[2], dtype=np.float32).reshape(-1, int(row[1]))
        if len(vecs) == len(vocab.concepts):
            return vecs, float(row[0])
    model_ = encoder()
    vecs = concept_vectors(model_, vocab)
    scale = float(model_.logit_scale)
    if not store:
        return vecs, scale
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


def update_labels(lib: Library, vocab: Vocabulary | None = None) -> int:
    """Label what was embedded since the last call; returns how many photos."""
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
    for ids, vecs, seq in lib.catalog.embeddings_after(model, since):
        if text is None:
            text = cached_concept_vectors(lib.catalog, model, vocab, lib.embedder)
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


def album_photos(lib: Library, label: str, limit: int | None = None
                 ) -> list[tuple[PhotoInfo, float]]:
    """The photos of one smart album, most probable first."""
    rows = lib.catalog.db.execute(
        "SELECT photo_id, probability FROM photo_labels WHERE model = ? AND label = ?"
        " ORDER BY probability DESC, photo_id LIMIT ?", (lib.model, label, limit or -1)
    ).fetchall()
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


def label_counts_summary(lib: Library) -> dict[str, int]:
    """How many photos have no label, one, or several (for reports)."""
    rows = lib.catalog.db.execute(
        "SELECT COALESCE(n, 0) FROM embeddings e LEFT JOIN (SELECT photo_id, COUNT(*) AS n"
        " FROM photo_labels WHERE model = ? GROUP BY photo_id) l ON l.photo_id = e.photo_id"
        " WHERE e.model = ?", (lib.model, lib.model))
    counts = [int(r[0]) for r in rows]
    return {"none": counts.count(0), "one": counts.count(1),
            "several": sum(1 for n in counts if n > 1)}

