"""The one action that touches a user's file: "Move the others to the trash".

It moves exactly the photos the user left unticked, into the system trash
(a trash folder redirected into tmp here), only after a confirmation that
names how many and where; cancelling touches nothing; nothing else on disk
changes; and finding duplicates never changes a file.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import random
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from photofind.gui.duplicates import DUPES
from photofind.gui.mainwindow import MainWindow
from photofind.testing.dupdata import DupFile, write_scenes
from photofind.testing.shapes import CLASSES, draw_picture
from tests.conftest import Cli
from tests.gui.conftest import OpenWindow, open_window  # noqa: F401 - the fixture

Snapshot = dict[Path, tuple[int, int, str]]


def snapshot(root: Path) -> Snapshot:
    """Every file under root: size, mtime and content hash."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def trash_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home and XDG data folder in tmp: the trash lands in tmp_path/home/data/Trash."""
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    # The caches (the toy model's ONNX copy) stay where they are.
    monkeypatch.setenv("XDG_CACHE_HOME", os.environ.get("XDG_CACHE_HOME")
                       or str(Path.home() / ".cache"))
    monkeypatch.setenv("HOME", str(home))  # so tmp_path is on the home's device
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    import send2trash.plat_other

    importlib.reload(send2trash.plat_other)  # it reads XDG_DATA_HOME when imported
    yield home / "data" / "Trash"
    monkeypatch.undo()
    importlib.reload(send2trash.plat_other)


@pytest.fixture
def copies(cli: Cli, tmp_path: Path) -> list[DupFile]:
    rng = random.Random(4)
    (c1, s1), (c2, s2) = CLASSES[0], CLASSES[5]
    files = write_scenes(tmp_path / "Pictures", [("scene", draw_picture(c1, s1, (480, 360), rng))],
                         [("other", draw_picture(c2, s2, (480, 360), rng))], bursts=0)
    assert cli.index(str(tmp_path / "Pictures"))["added"] == len(files)
    return files


def confirm(qtbot, window: MainWindow) -> QMessageBox:  # type: ignore[no-untyped-def]
    """Open the exact copies, press "Move the others to the trash…": the question."""
    qtbot.waitUntil(lambda: window.queries.model_loaded, timeout=60_000)
    window.open_duplicates("exact")
    page = window.dupes_page
    qtbot.waitUntil(lambda: len(page.tiles) == 2, timeout=30_000)
    assert window.sidebar.entries(DUPES)[0].count == 1  # one group of exact copies
    page.trash_button.click()
    box = page.confirmation
    assert box is not None and box.isVisible()
    return box


def test_only_the_confirmed_copy_goes_to_the_trash(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, cli: Cli, copies: list[DupFile], trash_home: Path,  # noqa: F811
        tmp_path: Path) -> None:
    backup = next(f.path for f in copies if f.kind == "exact")
    before = snapshot(tmp_path / "Pictures")
    window = open_window(cli.library)
    box = confirm(qtbot, window)
    assert box.text() == f"Move 1 photo to the trash ({trash_home})?"
    assert box.detailedText() == str(backup)
    with qtbot.waitSignal(window.engine.trashed, timeout=30_000) as moved:
        next(b for b in box.buttons() if b.text() == "Move to the trash").click()
    assert moved.args[0].moved == [str(backup)]
    after = snapshot(tmp_path / "Pictures")
    assert after == {p: v for p, v in before.items() if p != backup}  # nothing else touched
    assert (trash_home / "files" / backup.name).read_bytes() == backup.parent.parent.joinpath(
        backup.name).read_bytes()  # the copy is in the trash, whole
    assert (trash_home / "info" / f"{backup.name}.trashinfo").is_file()
    # The catalog forgets it, and the page shows the tier again without it.
    qtbot.waitUntil(lambda: window.found is not None and not window.found.tier("exact"),
                    timeout=30_000)
    paths = [str(p) for p in cli.json("duplicates", "--tier", "exact")]
    assert paths == []


def test_cancel_touches_nothing(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, cli: Cli, copies: list[DupFile], trash_home: Path,  # noqa: F811
        tmp_path: Path) -> None:
    before = snapshot(tmp_path / "Pictures")
    window = open_window(cli.library)
    box = confirm(qtbot, window)
    box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.wait(500)
    assert snapshot(tmp_path / "Pictures") == before
    assert not trash_home.exists()
    assert len(cli.json("duplicates", "--tier", "exact")) == 1


def test_finding_duplicates_changes_no_file(cli: Cli, copies: list[DupFile],
                                            tmp_path: Path) -> None:
    before = snapshot(tmp_path / "Pictures")
    assert cli.json("duplicates")
    assert snapshot(tmp_path / "Pictures") == before
