"""Through the real CLI: incremental indexing, moves, deletions, offline
drives, a damaged index cache, unreadable files, and one writer at a time."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from photofind.core.library import WriterLock
from photofind.core.vectors import VectorIndex
from photofind.testing.samples import SamplePhoto, make_sample_library, save_picture
from photofind.testing.shapes import draw_picture
from tests.conftest import REPO, Cli


def small_library(root: Path) -> list[SamplePhoto]:
    return make_sample_library(root, per_class=1, large=0)


def paths(results: list[dict[str, object]]) -> set[str]:
    return {str(r["path"]) for r in results}


def test_incremental_moves_deletions_and_new_files(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    photos = small_library(root)
    first = cli.index(str(root))
    assert first == {"added": 20, "updated": 0, "moved": 0, "removed": 0, "unchanged": 0,
                     "failed": 0, "embedded": 20}
    assert cli.index()["embedded"] == 0

    # Rename three files without touching them, one into a new folder.
    (root / "renamed").mkdir()
    moved = []
    for i, photo in enumerate(photos[:3]):
        folder = root / "renamed" if i == 0 else photo.path.parent
        target = folder / f"renamed-{i}{photo.path.suffix}"
        photo.path.rename(target)
        moved.append(target)
    report = cli.index()
    assert (report["moved"], report["embedded"], report["added"]) == (3, 0, 0)
    everything = paths(cli.search("a red circle", limit=50))
    assert {str(p) for p in moved} <= everything
    assert not {str(p.path) for p in photos[:3]} & everything

    # Delete two: they leave search. Add one: the next index finds it.
    for photo in photos[5:7]:
        photo.path.unlink()
    new = root / "new" / "fresh-green-star.png"
    save_picture(draw_picture("green", "star", (400, 300), __import__("random").Random(3)),
                 new, "PNG")
    report = cli.index()
    assert (report["removed"], report["added"], report["embedded"]) == (2, 1, 1)
    everything = paths(cli.search("a green star", limit=50))
    assert str(new) in everything
    assert not {str(p.path) for p in photos[5:7]} & everything
    assert str(new) in paths(cli.search("a green star", limit=3))

    # An edited file is re-embedded in place.
    edited = photos[8].path
    draw_picture("yellow", "circle", (400, 300), __import__("random").Random(4)).save(
        edited, Image.open(edited).format)
    report = cli.index()
    assert (report["updated"], report["embedded"]) == (1, 1)


def test_offline_root_keeps_its_photos_and_returns_without_reembedding(cli: Cli,
                                                                       tmp_path: Path) -> None:
    drive = tmp_path / "usb"
    small_library(drive / "DCIM")
    cli.index(str(drive / "DCIM"))
    drive.rename(tmp_path / "usb-unplugged")
    report = cli.index()
    assert report["removed"] == 0
    status = cli.json("status")
    assert status["photos"] == 20
    assert status["roots"] == [{"path": str(drive / "DCIM"), "state": "offline", "photos": 20}]
    results = cli.search("a blue square", limit=3)
    assert results and all(r["online"] is False for r in results)
    (tmp_path / "usb-unplugged").rename(drive)
    report = cli.index()
    assert (report["embedded"], report["removed"], report["unchanged"]) == (0, 0, 20)
    assert cli.json("status")["roots"][0]["state"] == "online"


def test_an_empty_mount_point_is_offline_not_empty(cli: Cli, tmp_path: Path) -> None:
    mount = tmp_path / "nas"
    small_library(mount)
    cli.index(str(mount))
    shutil.move(str(mount), str(tmp_path / "elsewhere"))
    mount.mkdir()  # the mount point is still there, with nothing mounted on it
    assert cli.index()["removed"] == 0
    assert cli.json("status")["photos"] == 20


def test_damaged_index_file_is_rebuilt_from_stored_vectors(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    small_library(root)
    cli.index(str(root))
    before = cli.search("a purple triangle", limit=5)
    library = cli.library

    def current() -> Path:
        files = sorted(library.glob("vectors.*.hnsw"), key=lambda p: int(p.name.split(".")[1]))
        return files[-1]

    def other_dimension(path: Path) -> None:
        other = VectorIndex(32)
        other.add(np.arange(1, 21), np.eye(32, dtype=np.float32)[:20])
        other.save(path)

    damages = [
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),  # truncated
        lambda p: p.write_bytes(bytes(64) + p.read_bytes()[64:]),  # header zeroed
        lambda p: p.write_bytes(p.read_bytes()[:-100] + bytes(100)),  # body flipped
        other_dimension,  # a valid index, of another model
        lambda p: p.unlink(),  # gone
    ]
    for damage in damages:
        damage(current())
        assert cli.search("a purple triangle", limit=5) == before
        assert cli.index()["embedded"] == 0
        # The rebuilt generation is saved and its checksum committed.
        db = sqlite3.connect(library / "catalog.sqlite3")
        (generation,) = db.execute("SELECT generation FROM index_manifest").fetchone()
        db.close()
        assert current().name == f"vectors.{generation}.hnsw"


def test_bad_files_are_reported_and_good_ones_indexed(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    photos = small_library(root)
    bad = root / "bad"
    bad.mkdir()
    (bad / "zero.jpg").write_bytes(b"")
    jpeg = photos[0].path.read_bytes()
    (bad / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (bad / "notes.png").write_text("shopping list: milk, eggs")
    proc = cli.run("index", str(root), "--json")
    assert proc.returncode == 0
    report = json.loads(proc.stdout)
    assert (report["added"], report["failed"]) == (20, 3)
    status = cli.json("status")
    assert status["photos"] == 20 and status["failed"] == 3
    assert status["failures"] == {"empty file": 1, "truncated": 1, "not an image": 1}
    # They are not retried on every run.
    assert cli.index() == {"added": 0, "updated": 0, "moved": 0, "removed": 0,
                           "unchanged": 23, "failed": 0, "embedded": 0}


def test_one_writer_per_library_but_readers_keep_working(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    small_library(root)
    cli.index(str(root))
    cli.library.mkdir(parents=True, exist_ok=True)
    lock = WriterLock(cli.library)
    assert lock.try_acquire()  # as if another photofind were indexing
    try:
        for args in (["index"], ["add", str(root)], ["remove", str(root)]):
            proc = cli.run(*args, check=False)
            assert proc.returncode == 1
            assert "in use by another photofind" in proc.stderr
            assert "Traceback" not in proc.stderr
        assert len(cli.search("a red star", limit=3)) == 3
        assert cli.json("status")["photos"] == 20
    finally:
        lock.release()


def test_a_lock_left_by_a_killed_photofind_is_taken_over(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    small_library(root)
    cli.library.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path;"
        "from photofind.core.library import WriterLock;"
        f"lock = WriterLock(Path({str(cli.library)!r}));"
        "assert lock.try_acquire();"
        "print('locked', flush=True); time.sleep(600)")], stdout=subprocess.PIPE, text=True,
        cwd=REPO)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    assert cli.run("index", str(root), check=False).returncode == 1
    holder.kill()  # dies holding the lock; its file stays behind
    holder.wait()
    assert (cli.library / "photofind.lock").exists()
    assert cli.index(str(root))["added"] == 20


def test_remove_forgets_a_folder_without_touching_files(cli: Cli, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    small_library(a)
    photos_b = make_sample_library(b, per_class=1, seed=8, large=0)
    cli.index(str(a), str(b))
    assert cli.json("status")["photos"] == 40
    proc = cli.run("remove", str(b))
    assert "20 photos forgotten" in proc.stdout
    assert cli.json("status")["photos"] == 20
    assert all(p.path.exists() for p in photos_b)
    assert not any(r["path"].startswith(str(b)) for r in cli.search("a red circle", limit=40))


def test_user_errors_are_one_sentence_and_exit_1(cli: Cli, tmp_path: Path) -> None:
    for args in (["add", str(tmp_path / "nope")], ["index", str(tmp_path / "nope")],
                 ["search", "./missing.jpg"], ["similar", str(tmp_path / "x.jpg")],
                 ["index"]):
        proc = cli.run(*args, check=False)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stderr.startswith("photofind: ") and proc.stderr.count("\n") == 1, \
            proc.stderr
    for args in (["search"], ["--device", "tpu", "status"], ["search", "x", "-n", "0"],
                 ["frobnicate"]):
        assert cli.run(*args, check=False).returncode == 2


def test_offline_model_download_is_one_clear_sentence(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    make_sample_library(root, per_class=1, large=0, formats=(("jpg", "JPEG"),))
    env = {"PHOTOFIND_MODEL": "ViT-B-32/laion2b_s34b_b79k", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "1"}
    proc = cli.run("index", str(root), check=False, extra_env=env)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "https://huggingface.co/laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in proc.stderr
    assert "local-dir:" in proc.stderr and str(tmp_path / "hf") in proc.stderr


def test_a_damaged_catalog_is_moved_aside_and_its_folders_rescanned(cli: Cli,
                                                                      tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    small_library(root)
    cli.index(str(root))
    catalog = cli.library / "catalog.sqlite3"
    data = bytearray(catalog.read_bytes())
    assert len(data) > 6 * 4096
    data[-2 * 4096:-4096] = bytes(range(256)) * 16  # a page of garbage
    catalog.write_bytes(bytes(data))
    proc = cli.run("index", "--json")
    assert "catalog was damaged" in proc.stderr and "rescanned" in proc.stderr
    assert json.loads(proc.stdout)["added"] == 20
    aside = list(cli.library.glob("catalog.damaged-*.sqlite3"))
    assert len(aside) == 1 and aside[0].read_bytes() == bytes(data)  # kept, untouched
    assert cli.json("status")["photos"] == 20
    assert len(cli.search("a green circle", limit=3)) == 3


def test_doctor_finds_damage_and_repair_rebuilds_only_derived_data(cli: Cli,
                                                                    tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    photos = small_library(root)
    cli.index(str(root))
    before = {p.path: p.path.read_bytes() for p in photos}
    assert cli.run("doctor").returncode == 0
    for old in cli.library.glob("vectors.*.hnsw"):
        old.unlink()
    thumbs = sqlite3.connect(cli.library / "thumbs.sqlite3")
    with thumbs:
        thumbs.execute("DELETE FROM thumbs WHERE photo_id <= 5")
    thumbs.close()
    proc = cli.run("doctor", check=False)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert any(line.startswith("FAIL  index:") for line in lines)
    assert "FAIL  thumbnails: 5 photos have no thumbnail" in lines
    assert "ok    catalog: quick_check passed" in lines
    proc = cli.run("doctor", "--repair", "--full")
    assert "repair: 5 missing thumbnails made" in proc.stdout
    assert "ok    catalog: integrity_check passed" in proc.stdout
    assert cli.index()["embedded"] == 0
    assert {p.path: p.path.read_bytes() for p in photos} == before
