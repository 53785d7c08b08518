"""A decoder that crashes, hangs, balloons or takes the whole app down costs
one file, never the library: the file is recorded with its reason, the run
goes on, and a file that kills photofind twice is quarantined. A file or a
folder photofind may not read costs what cannot be read and nothing else; a
full disk stops a run with one sentence, and the next run completes.

Permission tests run photofind as a user whom permissions bind: as root, the
subprocess gets no CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH (so chmod 000 means
what it says, for whoever runs the suite).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from photofind.testing.hostile import HOOK
from photofind.testing.samples import make_sample_library
from tests.conftest import REPO, Cli

PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


def _drop_permission_overrides() -> None:
    """(In the child, before exec.) Without these two, root obeys file modes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def bound_by_permissions(cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    """``photofind ARGS`` as a process that file permissions apply to."""
    return subprocess.run([sys.executable, "-m", "photofind", *args], env=cli.env, cwd=REPO,
                          capture_output=True, text=True, timeout=600,
                          preexec_fn=_drop_permission_overrides if os.geteuid() == 0 else None)


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def decoder_processes(library: Path) -> set[int]:
    """Live decode workers (spawned multiprocessing children) of photofind runs on
    this library (known by the environment they inherit, even once orphaned)."""
    mark = f"PHOTOFIND_LIBRARY={library}".encode()
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if (b"multiprocessing.spawn" in cmdline or b"spawn_main" in cmdline) \
                    and mark in environ:
                pids.add(int(entry))
    return pids


def assert_no_leaked_workers(library: Path) -> None:
    deadline = time.monotonic() + 10
    while decoder_processes(library) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not decoder_processes(library)


def test_crashing_hanging_and_ballooning_decoders_cost_one_file(cli: Cli, tmp_path: Path
                                                               ) -> None:
    root = tmp_path / "Pictures"
    photos = make_sample_library(root, per_class=1, large=0)
    source = photos[0].path
    for word in ("segfault", "hang", "balloon"):
        shutil.copy(source, root / f"evil-{word}{source.suffix}")
    env = {"PHOTOFIND_DECODE_HOOK": HOOK, "PHOTOFIND_DECODE_TIMEOUT": "4"}
    proc = cli.run("index", str(root), "--json", extra_env=env)
    assert '"added": 20' in proc.stdout and '"failed": 3' in proc.stdout
    failed = {Path(f["path"]).stem: f["reason"] for f in cli.json("failed")}
    assert failed == {"evil-segfault": "crashed decoder", "evil-hang": "timeout",
                      "evil-balloon": "too large"}
    assert_no_leaked_workers(cli.library)
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
    for _ in range(2):  # the whole app dies while that file is being decoded
        proc = cli.run("index", str(root), check=False, extra_env=env)
        assert proc.returncode == -9
    proc = cli.run("index", "--json", extra_env=env)
    assert '"failed": 1' in proc.stdout
    assert cli.json("failed") == [{"path": str(culprit), "reason": "crashed decoder"}]
    status = cli.json("status")
    assert status["photos"] == 20 and status["failures"] == {"crashed decoder": 1}
    assert_no_leaked_workers(cli.library)
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
    as_json(bound_by_permissions(cli, "index", str(root), "--json"))  # perm/locked.jpg: 000
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
    assert_no_leaked_workers(cli.library)


def assert_stopped_for_a_full_disk(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 1, proc.stdout
    assert "is full: free some space" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("store", ["catalog", "thumbs", "index"])
def test_a_disk_that_fills_while_indexing_stops_it_cleanly_and_the_next_run_completes(
        cli: Cli, tmp_path: Path, store: str) -> None:
    root = tmp_path / "Pictures"
    photos = make_sample_library(root, per_class=3, large=0)  # 60 photos, 4 batches
    full = {"PHOTOFIND_TEST_FULL": f"{store}:32", "PHOTOFIND_SAVE_EVERY": "16",
            "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "fullsite"),
                                           cli.env.get("PYTHONPATH", str(REPO))])}
    assert_stopped_for_a_full_disk(cli.run("index", str(root), check=False, extra_env=full))

    def stored() -> int:
        db = sqlite3.connect(cli.library / "catalog.sqlite3")
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        count: int = db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        db.close()
        return count
    kept = stored()
    assert 32 <= kept < len(photos)  # what was committed before the disk filled stays
    still = {**full, "PHOTOFIND_TEST_FULL": "catalog:0"}  # full from the first write
    assert_stopped_for_a_full_disk(cli.run("index", check=False, extra_env=still))
    assert stored() == kept
    report = cli.index()  # space freed
    assert (report["unchanged"], report["added"]) == (kept, len(photos) - kept), report
    assert cli.json("status")["photos"] == len(photos)
    doctor = cli.run("doctor", check=False)  # index and thumbnails complete
    assert doctor.returncode == 0, doctor.stdout
    found = {r["path"] for r in cli.search("a red circle", limit=len(photos))}
    assert found == {str(p.path) for p in photos}


def test_a_full_disk_stops_indexing_cleanly_and_the_next_run_completes(cli: Cli,
                                                                       tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the library needs root")
    root = tmp_path / "Pictures"
    photos = make_sample_library(root, per_class=5, large=0)
    cli.library.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(cli.library)],
                   check=True)
    try:
        assert_stopped_for_a_full_disk(cli.run("index", str(root), check=False))
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


def test_an_unreadable_root_or_folder_keeps_its_photos_and_they_come_back(
        cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    photos = make_sample_library(root, per_class=1, large=0)
    assert cli.index(str(root))["added"] == len(photos)
    search = [r["path"] for r in cli.search("a red circle", limit=len(photos))]
    folder = root / "2023"  # 8 of the photos, in two folders below it
    inside = {str(p.path) for p in photos if folder in p.path.parents}
    assert inside

    for locked in (root, folder):
        locked.chmod(0)
        try:
            proc = bound_by_permissions(cli, "index", "--json")
            report = as_json(proc)
            assert report["removed"] == 0 and report["embedded"] == 0, (locked, report)
            status = as_json(bound_by_permissions(cli, "status", "--json"))
            assert status["photos"] == len(photos)
            if locked == root:
                assert "is offline" in proc.stderr and status["roots"][0]["state"] == "offline"
            # Every photo is still found, the unreadable ones too.
            assert [r["path"] for r in cli.search("a red circle", limit=len(photos))] == search
        finally:
            locked.chmod(0o755)
        again = as_json(bound_by_permissions(cli, "index", "--json"))
        assert (again["unchanged"], again["embedded"], again["removed"]) == (len(photos), 0, 0)
        assert cli.json("status")["roots"][0]["state"] == "online"


@pytest.mark.parametrize("name", ["catalog.sqlite3", "thumbs.sqlite3"])
def test_a_library_file_photofind_may_not_write_stops_it_cleanly(cli: Cli, tmp_path: Path,
                                                                 name: str) -> None:
    root = tmp_path / "Pictures"
    photos = make_sample_library(root / "old", per_class=1, large=0)
    assert cli.index(str(root))["added"] == len(photos)
    more = make_sample_library(root / "new", per_class=1, seed=3, large=0)
    locked = cli.library / name
    locked.chmod(0o444)
    try:
        proc = bound_by_permissions(cli, "index")
        assert proc.returncode == 1, proc.stdout
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "photofind: " in proc.stderr and name in proc.stderr
    finally:
        locked.chmod(0o644)
    assert cli.json("status")["photos"] >= len(photos)  # nothing lost
    report = cli.index()
    assert report["added"] + report["unchanged"] == len(photos) + len(more), report
    assert cli.run("doctor", check=False).returncode == 0
