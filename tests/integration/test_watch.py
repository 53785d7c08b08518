"""The live library, with real folders, real observers and the toy model:
every change on disk shows in the catalog within a deadline."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from photofind.core.config import Settings
from photofind.core.indexer import IndexReport
from photofind.core.library import Library
from photofind.core.watcher import WatchConfig, Watcher
from photofind.testing.samples import make_sample_library

FAST = WatchConfig(debounce=0.3, settle=1.0, offline_check=1.0, reconcile_every=3600,
                   poll_interval=0.5)


def wait_for(check: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not reflected in the catalog in time")
        time.sleep(0.1)


@dataclass
class Live:
    root: Path
    library: Path
    watcher: Watcher
    reports: list[IndexReport] = field(default_factory=list)

    def rows(self) -> dict[str, tuple[int, str]]:
        db = sqlite3.connect(self.library / "catalog.sqlite3")
        try:
            return {p: (i, s) for i, p, s in db.execute("SELECT id, path, status FROM photos")}
        finally:
            db.close()

    def vector(self, photo_id: int) -> bytes:
        db = sqlite3.connect(self.library / "catalog.sqlite3")
        try:
            return db.execute("SELECT vec FROM embeddings WHERE photo_id = ?",
                              (photo_id,)).fetchone()[0]
        finally:
            db.close()

    def ok(self) -> set[str]:
        return {p for p, (_, s) in self.rows().items() if s == "ok"}

    def embedded(self) -> int:
        return sum(r.embedded for r in self.reports)


@contextlib.contextmanager
def watching(tmp_path: Path, toy_model: str, root: Path,
             config: WatchConfig = FAST) -> Iterator[Live]:
    """A Watcher running in a thread on a library in tmp_path; stopped (promptly) on exit."""
    settings = Settings.resolve(str(tmp_path / "library"), toy_model, "cpu")
    lib = Library.open(settings, writer=True)
    lib.add_root(str(root))
    live = Live(root, settings.library, None)  # type: ignore[arg-type]
    live.watcher = Watcher(lib, config, on_report=live.reports.append)
    thread = threading.Thread(target=live.watcher.run)
    thread.start()
    try:
        yield live
    finally:  # how promptly it stops is a figure of benchmarks/bench_watch.py
        live.watcher.stop()
        thread.join(60)
        assert not thread.is_alive()
        lib.close()


@pytest.fixture
def live(tmp_path: Path, toy_model: str) -> Iterator[Live]:
    root = tmp_path / "Pictures"
    make_sample_library(root / "start", per_class=1, large=0)
    with watching(tmp_path, toy_model, root) as live:
        wait_for(lambda: len(live.ok()) == 20 and live.embedded() == 20)  # start reconcile
        yield live


def test_copies_edits_deletions_and_renames_follow_the_disk(live: Live, tmp_path: Path
                                                            ) -> None:
    batch = make_sample_library(tmp_path / "camera", per_class=1, seed=11, large=0)
    for photo in batch:
        shutil.copy(photo.path, live.root / f"new-{photo.path.name}")
    wait_for(lambda: len(live.ok()) == 40)

    target = str(live.root / f"new-{batch[0].path.name}")
    photo_id = live.rows()[target][0]
    before = live.vector(photo_id)
    shutil.copy(batch[5].path, target)  # edited in place: another picture
    wait_for(lambda: live.vector(live.rows()[target][0]) != before)
    assert live.rows()[target][0] == photo_id

    doomed = sorted(p for p in live.ok() if "new-" in p)[1:6]
    for path in doomed:
        os.unlink(path)
    wait_for(lambda: not set(doomed) & set(live.rows()))

    embedded = live.embedded()
    old = sorted(live.ok())[0]
    old_id = live.rows()[old][0]
    os.rename(old, live.root / "renamed.jpg")
    wait_for(lambda: str(live.root / "renamed.jpg") in live.rows())
    assert live.rows()[str(live.root / "renamed.jpg")][0] == old_id
    assert live.embedded() == embedded


def test_folders_renamed_moved_out_and_moved_in(live: Live, tmp_path: Path) -> None:
    start = live.root / "start"
    ids = {Path(p).name: i for p, (i, _) in live.rows().items()}
    embedded = live.embedded()
    os.rename(start, live.root / "trip-2024")  # 20 photos in nested folders
    wait_for(lambda: all(p.startswith(str(live.root / "trip-2024")) for p in live.rows())
             and len(live.ok()) == 20)
    assert {Path(p).name: i for p, (i, _) in live.rows().items()} == ids
    assert live.embedded() == embedded

    shutil.move(str(live.root / "trip-2024" / "misc"), str(tmp_path / "outside"))
    gone = {str(live.root / "trip-2024" / "misc" / p.name) for p in (tmp_path / "outside")
            .rglob("*") if p.is_file()}
    assert gone
    wait_for(lambda: not gone & set(live.rows()))

    shutil.move(str(tmp_path / "outside"), str(live.root / "back-again"))
    wait_for(lambda: len(live.ok()) == 20)


def test_a_file_written_slowly_is_indexed_once_when_complete(live: Live, tmp_path: Path
                                                            ) -> None:
    import random

    from photofind.testing.samples import save_picture
    from photofind.testing.shapes import draw_picture

    big = tmp_path / "big.jpg"
    save_picture(draw_picture("red", "star", (4000, 3000), random.Random(1)), big, "JPEG")
    data = big.read_bytes()
    target = live.root / "slow.jpg"
    with open(target, "wb") as fh:
        for start in range(0, len(data), len(data) // 12 + 1):
            fh.write(data[start:start + len(data) // 12 + 1])
            fh.flush()
            time.sleep(0.4)  # longer than the debounce: the watcher looks meanwhile
            assert str(target) not in live.rows()
    wait_for(lambda: str(target) in live.ok() and live.embedded() == 21)
    time.sleep(FAST.settle + FAST.debounce)  # nothing more comes
    assert sum(r.failed for r in live.reports) == 0
    assert sum(r.added for r in live.reports) == 21  # the 20 at start, then this one once


def test_a_root_that_vanishes_goes_offline_and_comes_back(live: Live, tmp_path: Path
                                                         ) -> None:
    db_rows = live.rows()
    os.rename(live.root, tmp_path / "unplugged")
    wait_for(lambda: sqlite3.connect(live.library / "catalog.sqlite3").execute(
        "SELECT state FROM roots").fetchone() == ("offline",))
    assert live.rows() == db_rows  # nothing removed
    embedded = live.embedded()
    os.rename(tmp_path / "unplugged", live.root)
    wait_for(lambda: sqlite3.connect(live.library / "catalog.sqlite3").execute(
        "SELECT state FROM roots").fetchone() == ("online",))
    assert live.embedded() == embedded  # back without re-embedding
    shutil.copy(next(iter(db_rows)), live.root / "after-return.jpg")
    wait_for(lambda: str(live.root / "after-return.jpg") in live.ok()  # watched again
             and live.embedded() == embedded + 1)


def test_a_burst_of_500_files_costs_few_rescans(live: Live, tmp_path: Path) -> None:
    sample = make_sample_library(tmp_path / "src", per_class=1, seed=3, large=0,
                                 formats=(("jpg", "JPEG"),))
    rescans = live.watcher.rescans
    burst = live.root / "burst"
    burst.mkdir()
    for i in range(500):
        shutil.copy(sample[i % 20].path, burst / f"b{i:03d}.jpg")
    wait_for(lambda: len(live.ok()) == 520, timeout=120)
    assert live.watcher.rescans - rescans < 25


def test_temporary_hidden_and_library_files_are_ignored(tmp_path: Path, toy_model: str
                                                       ) -> None:
    root = tmp_path / "Pictures"
    make_sample_library(root, per_class=1, large=0)
    photo = next(root.glob("*.jpg"))
    for name in ("download.jpg.part", ".hidden.jpg", "~$lock.jpg", "x.crdownload"):
        shutil.copy(photo, root / name)
    (root / ".thumbnails").mkdir()
    shutil.copy(photo, root / ".thumbnails" / "t.jpg")
    # The library lives inside the root it watches: its own writes are not photos.
    with watching(root / "photofind-library", toy_model, root) as live:
        wait_for(lambda: len(live.ok()) == 20)
        time.sleep(1.5)  # a few debounce periods for stray events to land
        assert len(live.rows()) == 20


def test_changes_made_while_not_watching_are_picked_up_at_start(tmp_path: Path,
                                                                toy_model: str) -> None:
    root = tmp_path / "Pictures"
    photos = make_sample_library(root, per_class=1, large=0)
    with watching(tmp_path, toy_model, root) as live:
        wait_for(lambda: len(live.ok()) == 20)
    photos[0].path.unlink()
    shutil.copy(photos[1].path, root / "while-away.jpg")
    with watching(tmp_path, toy_model, root) as live:
        wait_for(lambda: str(root / "while-away.jpg") in live.ok()
                 and str(photos[0].path) not in live.rows())


def test_photofind_watch_cli_reports_batches_and_stops_cleanly(tmp_path: Path,
                                                               toy_model: str) -> None:
    import json
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    root = tmp_path / "Pictures"
    photos = make_sample_library(root, per_class=1, large=0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOFIND_")}
    env["PHOTOFIND_OCR"] = "0"  # reading text is tested on its own
    env.update(PHOTOFIND_LIBRARY=str(tmp_path / "library"), PHOTOFIND_MODEL=toy_model,
               PHOTOFIND_DEVICE="cpu", PYTHONUNBUFFERED="1")
    subprocess.run([sys.executable, "-m", "photofind", "add", str(root)], env=env, cwd=REPO,
                   check=True, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "photofind", "watch", "--json"], env=env,
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        added = 0
        while added < 20:  # the reconcile at start (just-made files wait to settle)
            batch = json.loads(proc.stdout.readline())
            assert batch["added"] == batch["embedded"] and batch["failed"] == 0
            added += batch["added"]
        assert added == 20
        # While it watches, another photofind may search but not write.
        busy = subprocess.run([sys.executable, "-m", "photofind", "index"], env=env, cwd=REPO,
                              capture_output=True, text=True)
        assert busy.returncode == 1 and "in use" in busy.stderr
        shutil.copy(photos[0].path, root / "fresh.jpg")
        second = json.loads(proc.stdout.readline())
        assert second == {"added": 1, "updated": 0, "moved": 0, "removed": 0, "failed": 0,
                          "embedded": 1}
        proc.send_signal(signal.SIGTERM)  # how promptly it exits: benchmarks/bench_watch.py
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    status = subprocess.run([sys.executable, "-m", "photofind", "status", "--json"], env=env,
                            cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(status.stdout)["photos"] == 21


def test_network_roots_are_polled_and_a_full_inotify_falls_back_to_polling(
        tmp_path: Path, toy_model: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from watchdog.observers.polling import PollingObserver

    from photofind.core import watcher as watcher_module

    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/vda / ext4 rw 0 0\n"
                      "//nas/photos /mnt/nas cifs rw 0 0\n"
                      "me@host:/pics /mnt/my\\040pics fuse.sshfs rw 0 0\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: real_open(
        mounts if p == "/proc/mounts" else p, *a, **k))
    assert watcher_module.filesystem_type("/mnt/nas/2024/x.jpg") == "cifs"
    assert watcher_module.needs_polling("/mnt/my pics/a") and watcher_module.needs_polling(
        "/mnt/nas")
    assert not watcher_module.needs_polling("/home/me/Pictures")
    monkeypatch.undo()

    class FullInotify(watcher_module.Observer):  # type: ignore[misc, valid-type]
        def start(self) -> None:
            raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(watcher_module, "Observer", FullInotify)
    root = tmp_path / "Pictures"
    photos = make_sample_library(root, per_class=1, large=0)
    with watching(tmp_path, toy_model, root) as live:
        wait_for(lambda: len(live.ok()) == 20)
        observers = list(live.watcher._observers.values())
        assert len(observers) == 1 and isinstance(observers[0], PollingObserver)
        assert "fs.inotify.max_user_watches" in caplog.text
        shutil.copy(photos[0].path, root / "polled.jpg")
        wait_for(lambda: str(root / "polled.jpg") in live.ok())


def test_the_periodic_reconcile_catches_changes_no_event_reported(tmp_path: Path,
                                                                  toy_model: str) -> None:
    # A polling observer that never gets round to polling: the folder is watched, yet
    # no event arrives, as when a share or an overflowing queue drops them.
    deaf = WatchConfig(debounce=0.3, settle=1.0, offline_check=3600, reconcile_every=2.0,
                       force_polling=True, poll_interval=3600)
    root = tmp_path / "Pictures"
    photos = make_sample_library(root, per_class=1, large=0)
    extra = make_sample_library(tmp_path / "camera", per_class=1, seed=5, large=0)
    with watching(tmp_path, toy_model, root, deaf) as live:
        wait_for(lambda: len(live.ok()) == 20 and live.embedded() == 20)
        rescans = live.watcher.rescans
        shutil.copy2(extra[0].path, root / "copied-quietly.jpg")  # an old mtime: settled
        photos[1].path.unlink()
        wait_for(lambda: str(root / "copied-quietly.jpg") in live.ok()
                 and str(photos[1].path) not in live.rows() and live.embedded() == 21)
        assert live.watcher.rescans == rescans  # no event-driven rescan did it
