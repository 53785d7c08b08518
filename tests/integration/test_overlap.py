"""Indexing does not wait for the model: photos are decoded while it loads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from photofind.core.attempts import AttemptLog
from photofind.core.config import Settings
from photofind.core.indexer import run_index
from photofind.core.library import Library
from photofind.core.model import loading
from photofind.testing.samples import make_sample_library


def test_photos_are_decoded_while_the_model_loads(toy_model: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    photos = make_sample_library(tmp_path / "Pictures", per_class=1, large=0)
    decoded = threading.Semaphore(0)
    finish = AttemptLog.finish

    def counted(self: AttemptLog, path: str) -> None:
        finish(self, path)
        decoded.release()
    monkeypatch.setattr(AttemptLog, "finish", counted)
    load = loading.load_encoder
    seen_before_model: list[int] = []

    def slow_model(settings: Settings):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 60
        count = 0
        while count < 8 and decoded.acquire(timeout=max(0.0, deadline - time.monotonic())):
            count += 1
        seen_before_model.append(count)
        return load(settings)
    monkeypatch.setattr(loading, "load_encoder", slow_model)
    with Library.open(Settings.resolve(str(tmp_path / "library"), toy_model, "cpu"),
                      writer=True) as lib:
        lib.add_root(str(tmp_path / "Pictures"))
        run = run_index(lib)
        try:
            while True:
                next(run)
        except StopIteration as done:
            report = done.value
    assert seen_before_model and seen_before_model[0] == 8  # decoding went on meanwhile
    assert report.added == len(photos) and report.failed == 0


def test_a_run_closed_early_stops_its_decoding_before_the_workers_go(
        toy_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quitting mid-run (the window's Quit, Ctrl+C) closes the run: the thread
    feeding the decode workers must be gone before the workers' pipes close,
    or it races them (a pipe closed twice, another pipe's descriptor closed)."""
    from photofind.core.decodepool import DecodePool

    make_sample_library(tmp_path / "Pictures", per_class=10, large=0)  # more than the queue
    feeders_at_close: list[int] = []
    close = DecodePool.close

    def watched_close(self: DecodePool) -> None:
        feeders_at_close.append(sum(t.name == "photofind-decode-feeder" and t.is_alive()
                                    for t in threading.enumerate()))
        close(self)
    monkeypatch.setattr(DecodePool, "close", watched_close)
    with Library.open(Settings.resolve(str(tmp_path / "library"), toy_model, "cpu"),
                      writer=True) as lib:
        lib.add_root(str(tmp_path / "Pictures"))
        run = run_index(lib)
        while next(run).done == 0:
            pass
        run.close()
        assert 0 < lib.catalog.embedding_count(toy_model) < 200
    assert feeders_at_close == [0]
