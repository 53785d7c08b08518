"""Zero-shot classification: a vocabulary of concepts, their text vectors, labels.

A vocabulary is a text file of concepts in groups (``data/vocabulary.txt`` is
the built-in one; ``--labels-file`` and ``PHOTOFIND_VOCABULARY`` use the same
format). Each concept's phrase goes into every prompt template and the
template vectors are averaged into one (CLIP's prompt ensembling). A photo's
probabilities are a softmax over the vocabulary of its image vector's cosine
to each concept, times the model's logit scale; ``keep_labels`` then keeps
the labels that stand out (see its docstring for the rule).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from photofind.core.decodepool import DecodePool
from photofind.core.errors import PhotofindError
from photofind.core.imaging import Failed

if TYPE_CHECKING:
    from photofind.core.library import Library

# Prompt templates (CLIP's ensembling, as in its paper's ImageNet set, trimmed
# to six: every one costs a text encoding per concept once per model).
TEMPLATES = ("a photo of {}", "a close-up photo of {}", "a picture of {}", "{}",
             "a cropped photo of {}", "a bright photo of {}")
VOCABULARY_ENV = "PHOTOFIND_VOCABULARY"  # a file whose concepts join the built-in ones
# The label rule's two numbers (keep_labels).
MIN_PROBABILITY = 0.15
MAX_LABELS = 5

Matrix = npt.NDArray[np.float32]


class TextEncoder(Protocol):
    """The part of the model interface classification needs."""

    @property
    def logit_scale(self) -> float: ...

    def encode_texts(self, texts: list[str]) -> Matrix: ...


@dataclass(frozen=True)
class Concept:
    label: str  # what a user sees ("dog", "city skyline")
    group: str  # "animals", "scenes and places", ...
    phrase: str  # what goes into the templates ("a dog", "a city skyline")


@dataclass(frozen=True)
class Vocabulary:
    concepts: tuple[Concept, ...]

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.concepts]

    @property
    def digest(self) -> str:
        """Changes whenever a label, a phrase or a template does (labels are rebuilt)."""
        h = hashlib.sha256(repr(TEMPLATES).encode())
        for c in self.concepts:
            h.update(f"\0{c.label}\0{c.phrase}".encode())
        return h.hexdigest()[:16]

    def group_of(self, label: str) -> str:
        return next((c.group for c in self.concepts if c.label == label), "")

    def __add__(self, other: Vocabulary) -> Vocabulary:
        seen = set(self.labels)
        return Vocabulary(self.concepts + tuple(c for c in other.concepts
                                                if c.label not in seen))


def _with_article(label: str) -> str:
    return ("an " if label[:1].lower() in "aeiou" else "a ") + label


def parse_vocabulary(text: str, source: str = "vocabulary") -> Vocabulary:
    """Concepts from the vocabulary format: ``## group`` lines, ``label`` or
    ``label | phrase`` lines, ``#`` comments; a repeated label is an error."""
    group = "other"
    concepts: list[Concept] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("##"):
            group = line.lstrip("#").strip() or "other"
            continue
        if not line or line.startswith("#"):
            continue
        label, _, phrase = (part.strip() for part in line.partition("|"))
        if not label:
            raise PhotofindError(f"{source}, line {number}: a concept needs a label.")
        if label in seen:
            raise PhotofindError(f"{source}, line {number}: the label {label!r} appears twice.")
        seen.add(label)
        concepts.append(Concept(label, group, phrase or _with_article(label)))
    if not concepts:
        raise PhotofindError(f"{source} holds no labels.")
    return Vocabulary(tuple(concepts))


def read_vocabulary(path: str | Path) -> Vocabulary:
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PhotofindError(f"Cannot read the labels file {path}: "
                             f"{getattr(exc, 'strerror', None) or exc}.") from exc
    return parse_vocabulary(text, str(path))


def labels_vocabulary(labels: str) -> Vocabulary:
    """``"dog, beach, red car"`` as a vocabulary (the CLI's --labels)."""
    return parse_vocabulary("\n".join(part for part in labels.split(",")), "--labels")


def builtin_vocabulary() -> Vocabulary:
    text = resources.files("photofind.core").joinpath("data/vocabulary.txt").read_text("utf-8")
    return parse_vocabulary(text, "the built-in vocabulary")


def library_vocabulary() -> Vocabulary:
    """The smart albums' vocabulary: the built-in one, plus the concepts of the
    file named by PHOTOFIND_VOCABULARY when it is set."""
    vocab = builtin_vocabulary()
    extra = os.environ.get(VOCABULARY_ENV)
    return vocab + read_vocabulary(extra) if extra else vocab


class Interrupted(Exception):
    """A long step gave way to other work (its caller tries again later)."""


def concept_vectors(encoder: TextEncoder, vocab: Vocabulary,
                    interrupted: Callable[[], bool] | None = None) -> Matrix:
    """One unit text vector per concept: the mean of its template vectors.
    Raises Interrupted when ``interrupted()`` turns true between batches."""
    texts = [t.format(c.phrase) for c in vocab.concepts for t in TEMPLATES]
    rows: list[Matrix] = []
    for start in range(0, len(texts), 128):
        if interrupted is not None and interrupted():
            raise Interrupted
        rows.append(encoder.encode_texts(texts[start:start + 128]))
    per_template = np.concatenate(rows).reshape(len(vocab.concepts), len(TEMPLATES), -1)
    mean = per_template.mean(axis=1)
    out: Matrix = (mean / np.linalg.norm(mean, axis=1, keepdims=True)).astype(np.float32)
    return out


def probabilities(image_vectors: Matrix, text_vectors: Matrix, logit_scale: float) -> Matrix:
    """Softmax over the vocabulary of ``logit_scale`` x cosine, one row per image."""
    logits = logit_scale * (np.atleast_2d(image_vectors) @ text_vectors.T)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    out: Matrix = (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)
    return out


def top_labels(probs: npt.NDArray[np.float32], labels: Sequence[str], k: int
               ) -> list[tuple[str, float]]:
    """The ``k`` most probable labels of one row, best first."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [(labels[i], float(probs[i])) for i in order]


def keep_labels(probs: npt.NDArray[np.float32], labels: Sequence[str]
                ) -> list[tuple[str, float]]:
    """The labels a photo clearly matches: those that hold at least
    MIN_PROBABILITY of the softmax (at most MAX_LABELS, best first).

    Why this rule: the softmax already compares every concept with all the
    others, so a label's share of it says how much it stands out. With a few
    hundred concepts the even share is under 0.5%; 15% is thirty times that
    and more than the next concepts of a photo that shows nothing in
    particular, whose mass spreads over many labels (it gets none, which is
    right: an album should not fill with guesses). A photo that shows two
    things (a dog on a beach) shares the mass between them and keeps both; at
    most six labels can pass, five are kept.
    """
    return [(label, p) for label, p in top_labels(probs, labels, MAX_LABELS)
            if p >= MIN_PROBABILITY]


def file_vectors(lib: Library, paths: Sequence[str]) -> list[Matrix | str]:
    """Each image's vector (a library photo's stored one, else decoded in a
    worker process and encoded), or why it could not be read."""
    out: list[Matrix | str] = []
    todo: list[int] = []
    for i, path in enumerate(paths):
        row = lib.catalog.photo_by_path(path)
        stored = lib.catalog.embedding(row.id, lib.model) if row else None
        out.append(stored if stored is not None else "")
        if stored is None:
            todo.append(i)
    if todo:
        encoder = lib.embedder()
        with DecodePool(encoder.preprocess, workers=min(len(todo), 2)) as pool:
            for i, decoded in pool.run(todo, lambda i: paths[i]):
                out[i] = (decoded.reason if isinstance(decoded, Failed)
                          else encoder.encode_images(decoded.pixels[None])[0])
    return out
