"""A decoder that crashes, hangs, balloons or takes the whole app down costs
one file, never the library: the file is recorded with its reason, the run
goes on, and a file that kills photofind twice is quarantined."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from photofind.testing.hostile import HOOK
from photofind.testing.samples import make_sample_library
from tests.conftest import Cli


def decoder_processes() -> set[int]:
    """Live decode workers (spawned multiprocessing children) on this machine."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"multiprocessing.spawn" in cmdline or b"spawn_main" in cmdline:
                pids.add(int(entry))
    return pids


def assert_no_leaked_workers(before: set[int]) -> None:
    deadline = time.monotonic() + 10
    while decoder_processes() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not decoder_processes() - before


def test_crashing_hanging_and_ballooning_decoders_cost_one_file(cli: Cli, tmp_path: Path
                                                               ) -> None:
    root = tmp_path / "Pictures"
    photos = make_sample_library(root, per_class=1, large=0)
    source = photos[0].path
    for word in ("segfault", "hang", "balloon"):
        shutil.copy(source, root / f"evil-{word}{source.suffix}")
    before = decoder_processes()
    env = {"PHOTOFIND_DECODE_HOOK": HOOK, "PHOTOFIND_DECODE_TIMEOUT": "4"}
    proc = cli.run("index", str(root), "--json", extra_env=env)
    assert '"added": 20' in proc.stdout and '"failed": 3' in proc.stdout
    failed = {Path(f["path"]).stem: f["reason"] for f in cli.json("failed")}
    assert failed == {"evil-segfault": "crashed decoder", "evil-hang": "timeout",
                      "evil-balloon": "too large"}
    assert_no_leaked_workers(before)
    # Every good photo is searchable.
    found = {r["path"] for r in cli.search("a red circle", limit=30)}
    assert {str(p.path) for p in photos} <= found


def test_a_file_that_kills_photofind_twice_is_quarantined(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    photos = make_sample_library(root, per_class=1, large=0)
    culprit = root / "deep" / f"boom-killapp{photos[1].path.suffix}"
    culprit.parent.mkdir()
    shutil.copy(photos[1].path, culprit)
    env = {"PHOTOFIND_DECODE_HOOK": HOOK}
    before = decoder_processes()
    for _ in range(2):  # the whole app dies while that file is being decoded
        proc = cli.run("index", str(root), check=False, extra_env=env)
        assert proc.returncode == -9
    proc = cli.run("index", "--json", extra_env=env)
    assert '"failed": 1' in proc.stdout
    assert cli.json("failed") == [{"path": str(culprit), "reason": "crashed decoder"}]
    status = cli.json("status")
    assert status["photos"] == 20 and status["failures"] == {"crashed decoder": 1}
    assert_no_leaked_workers(before)
    # Quarantined files are not retried on every start...
    assert cli.index()["embedded"] == 0
    # ...but `retry` (or a changed file) gives them another chance.
    report = cli.json("retry")
    assert (report["added"], report["failed"]) == (1, 0)
    assert cli.json("failed") == []


def test_hostile_corpus_mixed_with_good_photos(cli: Cli, tmp_path: Path) -> None:
    from tests.hostile_corpus import make_hostile_corpus

    root = tmp_path / "Pictures"
    photos = make_sample_library(root / "good", per_class=1, large=0)
    expect = make_hostile_corpus(root / "hostile")
    assert len(expect) >= 150
    before = decoder_processes()
    proc = cli.run("index", str(root), "--json", timeout=600)
    assert proc.returncode == 0
    failed = {f["path"]: f["reason"] for f in cli.json("failed")}
    indexed = {r["path"] for r in cli.search("a red circle", limit=10_000)}
    assert {str(p.path) for p in photos} <= indexed
    shown = {os.fsencode(path).decode("utf-8", "backslashreplace"): outcome
             for path, outcome in ((str(p), o) for p, o in expect.items())}
    for path, (outcome, reasons) in shown.items():
        if outcome == "ok":
            assert path in indexed and path not in failed, path
        elif outcome == "failed":
            assert reasons is not None and failed.get(path) in reasons, (path, failed.get(path))
        else:
            assert path not in indexed and path not in failed, path
    assert len(failed) == sum(o == "failed" for o, _ in expect.values())
    assert_no_leaked_workers(before)


def test_a_full_disk_stops_indexing_cleanly_and_the_next_run_completes(cli: Cli,
                                                                       tmp_path: Path) -> None:
    import sqlite3
    import subprocess

    import pytest

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the library needs root")
    root = tmp_path / "Pictures"
    photos = make_sample_library(root, per_class=5, large=0)
    cli.library.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(cli.library)],
                   check=True)
    try:
        proc = cli.run("index", str(root), check=False)
        assert proc.returncode == 1, proc.stdout
        assert "is full: free some space" in proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        db = sqlite3.connect(cli.library / "catalog.sqlite3")
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        db.close()
        subprocess.run(["mount", "-o", "remount,size=64m", str(cli.library)], check=True)
        report = cli.index()
        assert report["added"] + report["unchanged"] == len(photos)
        assert cli.json("status")["photos"] == len(photos)
        assert cli.run("doctor").returncode == 0  # index and thumbnails complete
    finally:
        subprocess.run(["umount", "-l", str(cli.library)], check=False)
