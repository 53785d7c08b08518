"""Indexing stays light: smart-album labels are derived data, off the index path.

`photofind index` stores photos and vectors and nothing more; labels catch up
when albums are asked for (the CLI) or once the watcher goes quiet (the
window's engine, `photofind watch`), giving way to new work; the vocabulary's
text vectors are encoded once per model weights, not once per library.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from photofind.core import conceptcache
from photofind.core.albums import cached_concept_vectors, label_when_idle, labels_behind
from photofind.core.classify import TextEncoder, labels_vocabulary
from photofind.core.config import Settings
from photofind.core.library import Library
from photofind.core.watcher import WatchConfig, Watcher
from photofind.testing.samples import make_sample_library
from tests.conftest import Cli

FAST = WatchConfig(debounce=0.3, settle=1.0, offline_check=1.0, reconcile_every=3600,
                   poll_interval=0.5)


def _count(library: Path, sql: str) -> int:
    db = sqlite3.connect(library / "catalog.sqlite3")
    try:
        return int(db.execute(sql).fetchone()[0] or 0)
    finally:
        db.close()


def _labelled_up_to(library: Path) -> int:
    return _count(library, "SELECT MAX(max_seq) FROM label_state")


def _embedded_up_to(library: Path) -> int:
    return _count(library, "SELECT MAX(seq) FROM embeddings")


def test_index_stores_no_labels_and_albums_catch_up(tmp_path: Path, cli: Cli) -> None:
    make_sample_library(tmp_path / "Pictures", per_class=1, large=0)
    cli.index(str(tmp_path / "Pictures"))
    assert _embedded_up_to(cli.library) > 0
    assert _count(cli.library, "SELECT COUNT(*) FROM photo_labels") == 0
    assert _count(cli.library, "SELECT COUNT(*) FROM concept_vectors") == 0
    albums = cli.json("albums")  # the writer labels what is behind, then lists
    assert albums and sum(a["count"] for a in albums) > 0
    assert _labelled_up_to(cli.library) == _embedded_up_to(cli.library)


@pytest.fixture
def concept_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "concept-cache"
    monkeypatch.setenv(conceptcache.CACHE_ENV, str(folder))
    return folder


@contextlib.contextmanager
def _watching(lib: Library, on_idle: Callable[[Callable[[], bool]], bool]
              ) -> Iterator[Watcher]:
    watcher = Watcher(lib, FAST, on_idle=on_idle)
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        yield watcher
    finally:
        watcher.stop()
        thread.join(60)
        assert not thread.is_alive()


def _wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)


def test_labels_follow_when_the_watcher_is_idle_and_give_way_to_new_files(
        tmp_path: Path, toy_model: str, concept_cache: Path) -> None:
    root = tmp_path / "Pictures"
    make_sample_library(root / "start", per_class=1, large=0)
    settings = Settings.resolve(str(tmp_path / "library"), toy_model, "cpu")
    calls: list[tuple[int, bool]] = []

    def on_idle(busy: Callable[[], bool]) -> bool:
        if not calls:
            # The first quiet spell: new photos arrive just as labelling starts.
            extra = make_sample_library(tmp_path / "camera", per_class=1, seed=5, large=0)
            for photo in extra:
                shutil.copy(photo.path, root / f"new-{photo.path.name}")
            _wait_for(busy, timeout=20)  # the watcher saw them
        calls.append(label_when_idle(lib, busy))
        return calls[-1][1]

    with Library.open(settings, writer=True) as lib:
        lib.add_root(str(root))
        with _watching(lib, on_idle):
            _wait_for(lambda: len(calls) >= 2 and calls[-1][1]
                      and _count(settings.library, "SELECT COUNT(*) FROM photos") == 40)
            # The first call gave way at once: nothing labelled, not done.
            assert calls[0] == (0, False)
            assert not labels_behind(lib)
        assert _labelled_up_to(settings.library) == _embedded_up_to(settings.library)
        assert _count(settings.library, "SELECT COUNT(*) FROM embeddings") == 40


class _Counting:
    """A text encoder that counts its calls (and can refuse them)."""

    def __init__(self, inner: TextEncoder | None) -> None:
        self.inner, self.calls = inner, 0

    @property
    def logit_scale(self) -> float:
        assert self.inner is not None
        return self.inner.logit_scale

    def encode_texts(self, texts: list[str]) -> npt.NDArray[np.float32]:
        self.calls += 1
        if self.inner is None:
            raise AssertionError("the text tower ran again")
        return self.inner.encode_texts(texts)


def test_concept_vectors_are_encoded_once_per_model_not_per_library(
        tmp_path: Path, toy_model: str, concept_cache: Path) -> None:
    vocab = labels_vocabulary("red circle, blue square, green star")

    def vectors(library: str, spec: str, encoder: _Counting
                ) -> tuple[npt.NDArray[np.float32], float]:
        with Library.open(Settings.resolve(str(tmp_path / library), spec, "cpu"),
                          writer=True) as lib:
            return cached_concept_vectors(lib.catalog, lib.model, vocab, lambda: encoder,
                                          spec=spec)

    with Library.open(Settings.resolve(str(tmp_path / "toy"), toy_model, "cpu")) as lib:
        toy = lib.embedder()
    counting = _Counting(toy)
    vecs, scale = vectors("one", toy_model, counting)
    assert counting.calls > 0
    again = vectors("two", toy_model, _Counting(None))  # a new library: no text tower
    assert np.array_equal(again[0], vecs) and again[1] == scale
    # The same weights in another folder, or retrained in place, are another model.
    other = tmp_path / "retrained"
    shutil.copytree(toy_model.removeprefix("local-dir:"), other)
    counting = _Counting(toy)
    vectors("three", f"local-dir:{other}", counting)
    assert counting.calls > 0
    vectors("four", f"local-dir:{other}", _Counting(None))
    (other / "open_clip_config.json").touch()
    counting = _Counting(toy)
    vectors("five", f"local-dir:{other}", counting)
    assert counting.calls > 0
    # A damaged cache file is a miss, never an error.
    for path in concept_cache.glob("*.npz"):
        path.write_bytes(b"not an npz")
    counting = _Counting(toy)
    fresh = vectors("six", toy_model, counting)
    assert counting.calls > 0 and np.allclose(fresh[0], vecs, atol=1e-6)
