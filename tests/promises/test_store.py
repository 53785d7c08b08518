"""Promises of the library folder, through the real CLI: a catalog is never
lost to its folder's name nor moved aside unless it is damaged; damaged
caches are replaced with one line; a read-only library is searchable; readers
never write into the folder (so they never block or fail a writer); one writer
at a time, even with the lock file deleted; output stays one line per item.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from photofind.core.catalog import SCHEMA_VERSION
from photofind.testing.samples import SamplePhoto, make_sample_library
from tests.conftest import REPO, Cli, IndexedLibrary


def small_library(root: Path) -> list[SamplePhoto]:
    return make_sample_library(root, per_class=1, large=0)  # 20 photos


def indexed_small(cli: Cli, tmp_path: Path) -> tuple[Path, list[SamplePhoto]]:
    """20 photos in tmp_path/Pictures, indexed into the cli's library."""
    root = tmp_path / "Pictures"
    photos = small_library(root)
    assert cli.index(str(root))["added"] == 20
    return root, photos


def one_sentence(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    """Failed with exit 1 and one line on stderr that says why."""
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, \
        proc.stderr
    for word in words:
        assert word in proc.stderr


def library_files(library: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in library.iterdir()}


@contextmanager
def watching(cli: Cli) -> Iterator[subprocess.Popen[str]]:
    """A real `photofind watch`, started and running (its writer lock held)."""
    proc = subprocess.Popen([sys.executable, "-m", "photofind", "watch"], env=cli.env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            cwd=REPO)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("watching"), line + proc.stderr.read()
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)


# --- 1. the folder's name ------------------------------------------------------

@pytest.mark.parametrize("name", ["lib#3", "lib?x=1", "lib%20x"])
def test_a_library_whose_name_looks_like_a_url_keeps_its_catalog(
        name: str, tmp_path: Path, make_cli: Callable[[Path], Cli]) -> None:
    (tmp_path / "lib").mkdir()  # where a raw `file:` URI would point for lib#3 and lib?x=1
    cli = make_cli(tmp_path / name)
    root, _ = indexed_small(cli, tmp_path)
    proc = cli.run("index", "--json")
    assert '"unchanged": 20' in proc.stdout and '"embedded": 0' in proc.stdout, proc.stdout
    assert "damaged" not in proc.stderr
    assert sorted(p.name for p in cli.library.glob("*damaged*")) == []
    assert cli.json("status")["roots"][0]["path"] == str(root)

    # A damaged catalog there is still seen as damaged, and every aside copy kept.
    garbage = [b"not a catalog, first" * 300, b"not a catalog, second" * 300]
    for data in garbage:
        (cli.library / "catalog.sqlite3").write_bytes(data)
        proc = cli.run("index", str(root), "--json")  # (its folders were unreadable)
        assert proc.stderr.count("catalog was damaged") == 1, proc.stderr
    aside = sorted(cli.library.glob("catalog.damaged-*.sqlite3"))
    assert sorted(p.read_bytes() for p in aside) == sorted(garbage)  # no copy overwritten


def test_a_catalog_that_cannot_be_opened_is_left_alone(cli: Cli, tmp_path: Path) -> None:
    indexed_small(cli, tmp_path)
    catalog = cli.library / "catalog.sqlite3"
    kept = tmp_path / "kept.sqlite3"
    catalog.rename(kept)
    catalog.mkdir()  # SQLite cannot open this: it is not a damaged database
    one_sentence(cli.run("index", check=False), "catalog.sqlite3")
    assert catalog.is_dir() and not list(cli.library.glob("*damaged*"))
    catalog.rmdir()
    kept.rename(catalog)
    assert cli.index()["embedded"] == 0  # nothing was forgotten


def test_a_catalog_from_a_newer_photofind_is_refused_untouched(cli: Cli,
                                                               tmp_path: Path) -> None:
    indexed_small(cli, tmp_path)
    catalog = cli.library / "catalog.sqlite3"
    db = sqlite3.connect(catalog)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = catalog.read_bytes()
    for args in (["search", "a red circle"], ["status"], ["index"], ["failed"]):
        one_sentence(cli.run(*args, check=False), "newer photofind")
    assert catalog.read_bytes() == before
    assert not list(cli.library.glob("*damaged*"))


# --- 5. the thumbnail cache -----------------------------------------------------

def test_a_damaged_thumbnail_store_is_replaced_with_one_line(cli: Cli, tmp_path: Path) -> None:
    indexed_small(cli, tmp_path)
    thumbs = cli.library / "thumbs.sqlite3"
    thumbs.write_bytes(b"\x00garbage" * 4000)
    proc = cli.run("index", "--json")
    assert '"embedded": 0' in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "thumbnail store was damaged" in lines[0], proc.stderr
    assert [p.read_bytes()[:8] for p in cli.library.glob("thumbs.damaged-*.sqlite3")] \
        == [b"\x00garbage"]
    doctor = cli.run("doctor")
    assert "ok    thumbnails: every photo has one" in doctor.stdout  # made again


# --- 6. read-only libraries -----------------------------------------------------

@pytest.fixture
def read_only_copy(indexed: IndexedLibrary, tmp_path: Path,
                   make_cli: Callable[[Path], Cli]) -> Iterator[Cli]:
    """The indexed library copied, then seen through a read-only bind mount."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    copy = tmp_path / "copy"
    shutil.copytree(indexed.cli.library, copy)
    mount = tmp_path / "backup-drive"
    mount.mkdir()
    if subprocess.run(["mount", "--bind", str(copy), str(mount)]).returncode != 0:
        pytest.skip("mounting is not permitted here")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mount)], check=True)
        assert not os.access(mount, os.W_OK)
        yield make_cli(mount)
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_read_only_library_is_searchable(read_only_copy: Cli,
                                           indexed: IndexedLibrary) -> None:
    cli = read_only_copy
    assert cli.search("a red circle", limit=5) == indexed.cli.search("a red circle", limit=5)
    photo = str(indexed.photos[0].path)
    assert cli.json("similar", photo) == indexed.cli.json("similar", photo)
    assert cli.json("status")["photos"] == indexed.cli.json("status")["photos"]
    assert cli.json("failed") == indexed.cli.json("failed")
    assert cli.run("doctor").returncode == 0


def test_writing_to_a_read_only_library_is_one_sentence(read_only_copy: Cli,
                                                        indexed: IndexedLibrary) -> None:
    cli = read_only_copy
    for args in (["add", str(indexed.root)], ["index"], ["watch"], ["doctor", "--repair"]):
        one_sentence(cli.run(*args, check=False, timeout=120), "read-only")


def test_a_folder_without_write_permission_is_read_only_unless_root(cli: Cli,
                                                                    tmp_path: Path) -> None:
    """chmod a-w stops a user; root writes through it, so for root the library
    stays writable (the read-only bind mount above is what stops root)."""
    indexed_small(cli, tmp_path)
    cli.library.chmod(0o555)
    try:
        assert len(cli.search("a red circle", limit=3)) == 3
        if os.geteuid() == 0:
            assert cli.index()["unchanged"] == 20
        else:
            one_sentence(cli.run("index", check=False), "read-only")
    finally:
        cli.library.chmod(0o755)


def test_a_reader_on_a_damaged_catalog_says_so_in_one_sentence(cli: Cli,
                                                               tmp_path: Path) -> None:
    indexed_small(cli, tmp_path)
    catalog = cli.library / "catalog.sqlite3"
    catalog.write_bytes(bytes(100) + catalog.read_bytes()[100:])  # header gone
    for args in (["search", "a red circle"], ["status"], ["failed"]):
        one_sentence(cli.run(*args, check=False), "catalog")


# --- 7, 8. readers and writers --------------------------------------------------

def test_readers_never_write_into_the_library(cli: Cli, tmp_path: Path) -> None:
    """A search that rebuilt a lost index file keeps it in memory: saving it would
    need the writer's lock, and an `index` started meanwhile would be refused."""
    _, photos = indexed_small(cli, tmp_path)
    for index_file in cli.library.glob("vectors.*.hnsw"):
        index_file.unlink()
    before = library_files(cli.library)
    assert len(cli.search("a red circle", limit=3)) == 3
    assert cli.json("similar", str(photos[0].path))
    cli.run("status")
    cli.run("failed")
    assert library_files(cli.library) == before
    assert cli.index()["embedded"] == 0  # the writer saves it
    assert list(cli.library.glob("vectors.*.hnsw"))


def test_deleting_the_lock_file_does_not_admit_a_second_writer(cli: Cli,
                                                               tmp_path: Path) -> None:
    indexed_small(cli, tmp_path)
    with watching(cli):
        (cli.library / "photofind.lock").unlink()
        for args in (["index"], ["add", str(tmp_path)]):
            one_sentence(cli.run(*args, check=False), "in use by another photofind")
        assert len(cli.search("a red circle", limit=3)) == 3  # readers still welcome
    assert cli.index()["unchanged"] == 20  # and the next writer gets in


# --- 12. output -----------------------------------------------------------------

@pytest.mark.parametrize("args", [["doctor"], ["status"], ["failed"],
                                  ["search", "a red circle"]])
def test_a_closed_pipe_ends_a_command_quietly(args: list[str],
                                              indexed: IndexedLibrary) -> None:
    """`photofind doctor | head -3`: the reader has gone before photofind writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    proc = subprocess.run([sys.executable, "-m", "photofind", *args], env=indexed.cli.env,
                          stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=REPO,
                          timeout=300)
    os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_a_name_with_a_newline_stays_on_one_line(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    photos = small_library(root)
    odd = root / "two\nlines.png"
    shutil.copy(photos[0].path, odd)
    (root / "bad\nname.jpg").write_bytes(b"not a picture" * 10)
    (root / "bad.jpg").write_bytes(b"not a picture either" * 10)
    cli.index(str(root))

    lines = cli.run("search", "a red circle", "-n", "100").stdout.splitlines()
    assert len(lines) == 21
    assert all(re.fullmatch(r"-?\d\.\d{3}\t/.+", line) for line in lines), lines
    assert any(line.endswith("two\\nlines.png") for line in lines)
    assert str(odd) in {r["path"] for r in cli.search("a red circle", limit=100)}  # exact

    failed = cli.run("failed").stdout.splitlines()
    assert len(failed) == 2 and all(line.count("\t") == 1 for line in failed), failed
    assert any(line.endswith("bad\\nname.jpg") for line in failed)
    assert str(root / "bad\nname.jpg") in {f["path"] for f in cli.json("failed")}


def test_identical_copies_do_not_fail_the_doctor(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    root.mkdir()
    photos = small_library(tmp_path / "drawn")[:4]
    for n, photo in enumerate(photos):
        shutil.copy(photo.path, root / f"photo-{n}{photo.path.suffix}")
    for n in range(8):  # more identical copies than the doctor's first look (5) holds
        shutil.copy(photos[0].path, root / f"copy-{n}{photos[0].path.suffix}")
    assert cli.index(str(root))["added"] == 12
    proc = cli.run("doctor", check=False)
    assert proc.returncode == 0, proc.stdout
    assert any(line.startswith("ok    index:") for line in proc.stdout.splitlines())
