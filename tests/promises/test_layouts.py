"""No layout of folders, drives or names makes photofind lose a photo or show the wrong one.

Through the real CLI on real folders: drives are real mounts (a tmpfs, bind
mounted where a drive is plugged in), links are real symlinks, odd names are
real non-UTF-8 bytes, and the hung decoder is a real worker process.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from PIL import Image

from photofind.core.config import Settings
from photofind.core.library import Library
from photofind.core.scanner import BAD_NAME, BROKEN_LINK, NOT_A_FILE
from photofind.testing.hostile import HOOK
from photofind.testing.samples import SamplePhoto, save_picture
from photofind.testing.shapes import CLASSES, draw_picture
from tests.conftest import REPO, Cli


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def few_photos(root: Path, count: int = 6) -> list[SamplePhoto]:
    """A few small JPEGs in two folders (a sample library has 20 and more)."""
    rng = random.Random(3)
    photos = []
    for n, (colour, shape) in enumerate(CLASSES[:count]):
        path = root / ("" if n % 2 else "trip") / f"{colour}-{shape}.jpg"
        save_picture(draw_picture(colour, shape, (320, 240), rng), path, "JPEG")
        photos.append(SamplePhoto(path, colour, shape))
    return photos


def result_paths(cli: Cli, limit: int = 1000) -> set[str]:
    return {str(r["path"]) for r in cli.search("a photo", limit=limit)}


class Drives:
    """Real mounts: a tmpfs per "drive", bind mounted where it is plugged in.
    Everything still mounted is unmounted at the end, whatever happened."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.mounted: list[Path] = []

    def _mount(self, *args: str) -> None:
        where = Path(args[-1])
        proc = subprocess.run(["mount", *args], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip("these tests need real mounts (root and a kernel that allows"
                        f" tmpfs and bind mounts here): {proc.stderr.strip()}")
        self.mounted.append(where)

    def new_drive(self, name: str) -> Path:
        drive = self.base / f"drive-{name}"
        drive.mkdir()
        self._mount("-t", "tmpfs", "-o", "size=64m", "tmpfs", str(drive))
        return drive

    def plug(self, drive: Path, where: Path) -> None:
        where.mkdir(parents=True, exist_ok=True)
        self._mount("--bind", str(drive), str(where))

    def unplug(self, where: Path) -> None:
        subprocess.run(["umount", str(where)], check=True)
        self.mounted.remove(where)

    def close(self) -> None:
        for where in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(where)], capture_output=True)
        self.mounted.clear()


@pytest.fixture
def drives(tmp_path: Path) -> Iterator[Drives]:
    if sys.platform != "linux":
        pytest.skip("the drive tests mount with Linux's mount(8)")
    mounts = Drives(tmp_path)
    try:
        yield mounts
    finally:
        mounts.close()


def root_states(cli: Cli) -> dict[str, str]:
    return {r["path"]: r["state"] for r in cli.json("status")["roots"]}


# --- 2 and 12: a missing drive is offline; an emptied folder is emptied ------

def watch_until_offline(cli: Cli, tmp_path: Path, folder: Path) -> None:
    """Run `photofind watch` until its reconcile says folder is offline; it
    must have removed nothing."""
    log = tmp_path / "watch.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "photofind", "watch", "--json"],
                                env=cli.env, cwd=REPO, stdout=out, stderr=out, text=True)
        try:
            wait_for(lambda: f"{folder} is offline" in log.read_text(), "watch to reconcile")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    assert proc.returncode == 0 and '"removed"' not in log.read_text(), log.read_text()


def test_a_drive_mounted_inside_a_root_keeps_its_photos_when_unplugged(
        cli: Cli, tmp_path: Path, drives: Drives) -> None:
    root = tmp_path / "Pictures"
    home = few_photos(root / "home")
    usb = drives.new_drive("usb")
    on_usb = few_photos(usb / "DCIM")
    drives.plug(usb, root / "usb")
    assert cli.index(str(root))["added"] == len(home) + len(on_usb)

    drives.unplug(root / "usb")  # the empty mount point stays behind
    proc = cli.run("index", "--json")
    assert json.loads(proc.stdout)["removed"] == 0
    assert f"{root / 'usb'} is offline" in proc.stderr
    watch_until_offline(cli, tmp_path, root / "usb")
    shown = result_paths(cli)
    assert {str(root / "usb" / p.path.relative_to(usb)) for p in on_usb} <= shown

    # Photos deleted where the drive is not involved still leave.
    home[0].path.unlink()
    assert cli.index()["removed"] == 1

    drives.plug(usb, root / "usb")  # back: nothing is embedded again
    again = cli.index()
    assert again["embedded"] == 0 and again["removed"] == 0
    assert again["unchanged"] == len(home) - 1 + len(on_usb)


def test_a_root_that_is_a_mount_point_goes_offline_for_index_status_and_watch(
        cli: Cli, tmp_path: Path, drives: Drives, toy_model: str) -> None:
    card = tmp_path / "card"
    card.mkdir()
    (card / ".keep").write_bytes(b"")  # the folder underneath is not empty
    drive = drives.new_drive("card")
    photos = few_photos(drive)
    drives.plug(drive, card)
    assert cli.index(str(card))["added"] == len(photos)

    drives.unplug(card)
    assert cli.index()["removed"] == 0
    assert root_states(cli) == {str(card): "offline"}
    assert len(result_paths(cli)) == len(photos)

    watch_until_offline(cli, tmp_path, card)
    assert len(result_paths(cli)) == len(photos)

    drives.plug(drive, card)
    assert root_states(cli) == {str(card): "online"}
    assert cli.index()["embedded"] == 0


def test_a_folder_the_user_emptied_is_emptied_not_offline(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    photos = few_photos(root)
    assert cli.index(str(root))["added"] == len(photos)
    for child in root.iterdir():  # the user empties it: files and folders
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    assert cli.index()["removed"] == len(photos)
    assert root_states(cli) == {str(root): "online"}
    assert result_paths(cli) == set()


# --- 3 and 4: a move or a replacement is confirmed by content ------------------

def scan(path: Path, shape: str) -> None:
    """An uncompressed scan: wide blank margins, the picture in the middle."""
    page = Image.new("RGB", (900, 1200), "white")
    page.paste(draw_picture("red" if shape == "circle" else "blue", shape, (600, 600),
                            random.Random(1)), (150, 300))
    save_picture(page, path, "TIFF")


def test_a_scan_with_the_same_margins_is_not_taken_for_a_move(cli: Cli, tmp_path: Path
                                                              ) -> None:
    root, elsewhere = tmp_path / "Scans", tmp_path / "elsewhere"
    scan(root / "scan_001.tif", "circle")
    scan(elsewhere / "scan_002.tif", "square")
    first, second = root / "scan_001.tif", elsewhere / "scan_002.tif"
    assert first.stat().st_size == second.stat().st_size
    assert first.read_bytes()[:65536] == second.read_bytes()[:65536]
    assert cli.index(str(root))["added"] == 1

    first.unlink()  # rm scan_001.tif; cp .../scan_002.tif .
    shutil.copy(second, root)
    report = cli.index()
    assert (report["moved"], report["added"], report["removed"]) == (0, 1, 1)
    best = cli.json("similar", str(second), "-n", "1")[0]
    assert best["path"] == str(root / "scan_002.tif") and best["score"] > 0.99

    (root / "sub").mkdir()  # a real move still keeps its embedding
    (root / "scan_002.tif").rename(root / "sub" / "scan_002.tif")
    report = cli.index()
    assert (report["moved"], report["embedded"]) == (1, 0)


def test_a_photo_replaced_with_the_same_size_and_mtime_is_embedded_again(
        cli: Cli, tmp_path: Path) -> None:
    root, backup = tmp_path / "Pictures", tmp_path / "backup"
    for name, shape in (("a.tif", "circle"), ("b.tif", "circle"), ("c.tif", "circle")):
        scan(root / name, shape)
    scan(backup / "other.tif", "square")
    assert cli.index(str(root))["added"] == 3
    other = backup / "other.tif"

    def same_size_and_time(target: Path) -> None:
        old = target.stat()
        os.utime(other, ns=(old.st_atime_ns, old.st_mtime_ns))

    same_size_and_time(root / "a.tif")  # cp -p: the same inode, new content
    shutil.copy2(other, root / "a.tif")
    same_size_and_time(root / "b.tif")  # rsync -t / a restore: a new file renamed over it
    shutil.copy2(other, root / "b.tmp")
    os.replace(root / "b.tmp", root / "b.tif")
    (root / "c.tif").chmod(0o600)  # only its ctime moves: the content is the same
    report = cli.index()
    assert (report["updated"], report["embedded"], report["unchanged"]) == (2, 2, 1)
    top = {r["path"] for r in cli.json("similar", str(other), "-n", "2")
           if r["score"] > 0.99}
    assert top == {str(root / "a.tif"), str(root / "b.tif")}


# --- 9: one rule for roots, wherever they are added -------------------------------

def test_symlinked_roots_never_index_a_photo_twice(cli: Cli, tmp_path: Path, toy_model: str
                                                   ) -> None:
    a, b = tmp_path / "A", tmp_path / "B"
    photos = few_photos(a)
    few_photos(b)
    assert cli.index(str(a), str(b))["added"] == 2 * len(photos)
    shutil.rmtree(b)
    b.symlink_to(a)  # B replaced by a link to A
    proc = cli.run("index", "--json")
    report = json.loads(proc.stdout)
    assert (report["added"], report["updated"], report["embedded"]) == (0, 0, 0)
    assert f"{b} now leads into {a}" in proc.stderr
    # Removing B, as the sentence says, forgets B and not the folder it leads to.
    assert cli.run("remove", str(b)).stdout.startswith(f"removed {b} ")
    assert len(result_paths(cli)) == len(photos)

    # The window adds folders through Library.add_root: the same rule as the CLI.
    link, inner = tmp_path / "link-to-A", tmp_path / "link-inside-A"
    link.symlink_to(a)
    inner.symlink_to(photos[0].path.parent)  # A/trip
    settings = Settings.resolve(str(cli.library), toy_model, "cpu")
    with Library.open(settings, writer=True) as lib:
        before = lib.catalog.roots()
        root, note = lib.add_root(str(link))
        assert root.path == str(a) and note == (
            f"{link} is {a}, which is already a folder of the library.")
        root, note = lib.add_root(str(inner))
        assert root.path == str(a) and note is not None and "covered by" in note
        assert lib.catalog.roots() == before
        root, note = lib.add_root(str(tmp_path))
        assert note == (f"{tmp_path} includes {a}, already in the library:"
                        f" merged into {tmp_path}.")
        assert [r.path for r in lib.catalog.roots()] == [str(tmp_path)]


def test_a_case_insensitive_file_system_compares_roots_case_insensitively(
        tmp_path: Path, toy_model: str) -> None:
    from photofind.core.roots import case_insensitive, same_or_inside

    folder = tmp_path / "Photos"
    folder.mkdir()
    assert not case_insensitive(str(folder))  # Linux: case matters
    assert not same_or_inside(str(tmp_path / "photos"), str(folder))
    mkfs = shutil.which("mkfs.vfat") or shutil.which("mkfs.fat")
    if mkfs is None or sys.platform != "linux":
        pytest.skip("no mkfs.vfat here to make a case-insensitive file system")
    image = tmp_path / "fat.img"
    with image.open("wb") as fh:
        fh.truncate(16 << 20)
    subprocess.run([mkfs, str(image)], check=True, capture_output=True)
    mnt = tmp_path / "fat"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot loop-mount a FAT image here: {proc.stderr.strip()}")
    try:
        (mnt / "Photos").mkdir()
        settings = Settings.resolve(str(tmp_path / "library"), toy_model, "cpu")
        with Library.open(settings, writer=True) as lib:
            lib.add_root(str(mnt / "Photos"))
            root, note = lib.add_root(str(mnt / "PHOTOS"))
            assert root.path == str(mnt / "Photos") and note is not None
            assert len(lib.catalog.roots()) == 1
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# --- 10 and 12: odd names and odd files, alike in index and watch ---------------------

def odd_folder(root: Path, good: SamplePhoto) -> dict[str, str]:
    """Files no run may choke on; returns what `failed` must say (path -> reason)."""
    root.mkdir(parents=True, exist_ok=True)
    raw = os.fsencode(root) + b"/caf\xe9.jpg"
    shutil.copy(good.path, raw.decode("utf-8", "surrogateescape"))
    shutil.copy(good.path, root / "caf\\xe9.jpg")  # literally its escaped form
    os.mkfifo(root / "pipe.jpg")
    (root / "zero.jpg").symlink_to("/dev/zero")
    (root / "gone.jpg").symlink_to(root / "nowhere.jpg")
    return {str(root / "caf\\xe9 (2).jpg"): BAD_NAME, str(root / "pipe.jpg"): NOT_A_FILE,
            str(root / "zero.jpg"): NOT_A_FILE, str(root / "gone.jpg"): BROKEN_LINK}


def failed(cli: Cli) -> dict[str, str]:
    return {f["path"]: f["reason"] for f in cli.json("failed")}


def test_odd_names_and_odd_files_are_listed_alike_by_index_and_watch(
        make_cli: Callable[[Path], Cli], tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    good = few_photos(root / "good")
    expect = odd_folder(root / "odd", good[0])

    indexing = make_cli(tmp_path / "by-index")
    report = indexing.index(str(root))
    assert (report["added"], report["failed"]) == (len(good) + 1, len(expect))
    assert failed(indexing) == expect
    assert str(root / "odd" / "caf\\xe9.jpg") in result_paths(indexing)
    assert indexing.index()["embedded"] == 0  # and every later run is calm

    watching = make_cli(tmp_path / "by-watch")
    watching.run("add", str(root))
    proc = subprocess.Popen([sys.executable, "-m", "photofind", "watch", "--json"],
                            env=watching.env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(failed(watching)) >= len(expect), "watch to list the odd files")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert failed(watching) == expect


# --- 11: a hung decoder never outlives photofind ----------------------------------------

def decoders_of(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True)
                if "multiprocessing" in " ".join(p.cmdline())]
    except psutil.Error:
        return []


def in_flight(library: Path, name: str) -> bool:
    try:
        db = sqlite3.connect(f"file:{library / 'catalog.sqlite3'}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT path FROM attempts WHERE in_flight = 1").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return False
    return any(row[0].endswith(name) for row in rows)


@contextlib.contextmanager
def indexing_a_hanging_file(cli: Cli, tmp_path: Path, timeout_s: int
                            ) -> Iterator[tuple[subprocess.Popen[str], list[psutil.Process]]]:
    root = tmp_path / "Pictures"
    root.mkdir()
    good = few_photos(tmp_path / "src")[0]
    shutil.copy(good.path, root / "hang.jpg")
    env = {**cli.env, "PHOTOFIND_DECODE_HOOK": HOOK,
           "PHOTOFIND_DECODE_TIMEOUT": str(timeout_s)}
    proc = subprocess.Popen([sys.executable, "-m", "photofind", "index", str(root)], env=env,
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            text=True)
    workers: list[psutil.Process] = []
    try:
        wait_for(lambda: in_flight(cli.library, "hang.jpg"), "the decoder to take the file",
                 timeout=120)
        wait_for(lambda: bool(decoders_of(proc.pid)), "the decode workers")
        workers.extend(decoders_of(proc.pid))
        yield proc, workers
    finally:
        proc.kill()
        proc.wait()
        for worker in workers:
            with contextlib.suppress(psutil.Error):
                worker.kill()


def gone(worker: psutil.Process) -> bool:
    try:
        return worker.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_hung_decoder_ends_when_photofind_is_killed(cli: Cli, tmp_path: Path) -> None:
    with indexing_a_hanging_file(cli, tmp_path, timeout_s=3600) as (proc, workers):
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        wait_for(lambda: all(gone(w) for w in workers), "the orphaned decoders to end",
                 timeout=60)


def test_a_hung_decoder_ends_itself_past_its_time_limit(cli: Cli, tmp_path: Path) -> None:
    # photofind stopped (SIGSTOP) long before its own 20 s timeout: it cannot kill the
    # worker, so the worker ends itself (at twice the limit).
    with indexing_a_hanging_file(cli, tmp_path, timeout_s=20) as (proc, workers):
        proc.send_signal(signal.SIGSTOP)
        assert not any(gone(w) for w in workers)
        try:
            wait_for(lambda: any(gone(w) for w in workers), "the decoder's own time limit",
                     timeout=60)
        finally:
            proc.send_signal(signal.SIGCONT)


def test_a_new_models_pass_that_cannot_read_a_photo_keeps_it(cli: Cli, tmp_path: Path,
                                                             toy_model: str) -> None:
    """Re-embedding for another model reads photos the scanner found unchanged; one
    that cannot be read now (its drive went away between the scan and the read)
    keeps its row and its first model's vector, and the next pass embeds it."""
    pictures = tmp_path / "Pictures"
    for i, (colour, shape) in enumerate(CLASSES[:6]):
        save_picture(draw_picture(colour, shape, (160, 120), random.Random(i)),
                     pictures / f"{colour}-{shape}.png", "PNG")
    cli.run("index", str(pictures))
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "gone_now.py").write_text(
        "import errno\n\ndef fail(path):\n"
        "    raise OSError(errno.ENOENT, 'the drive went away', path)\n")
    other = tmp_path / "other-model"
    shutil.copytree(toy_model.removeprefix("local-dir:"), other)
    second = {"PHOTOFIND_MODEL": f"local-dir:{other}", "PHOTOFIND_DECODE_HOOK": "gone_now:fail",
              "PYTHONPATH": os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")])}
    cli.run("index", extra_env=second)
    assert json.loads(cli.run("status", "--json").stdout)["failed"] == 0
    assert len(cli.search("a red circle", limit=50)) == 6  # the first model still finds all
    again = json.loads(cli.run("index", "--json", extra_env={
        "PHOTOFIND_MODEL": f"local-dir:{other}"}).stdout)
    assert again["embedded"] == 6 and again["failed"] == 0
