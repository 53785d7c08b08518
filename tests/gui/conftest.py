"""The window under pytest-qt, offscreen, on the toy model and the real core.

``open_window`` builds a MainWindow on a library folder with its own settings
file; every window is shut down at the end of the test, and the test fails if
any photofind thread is still running then (Qt warnings fail tests through
``qt_log_level_fail`` in pyproject.toml).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from photofind.core.config import Settings
from photofind.gui import prefs
from photofind.gui.mainwindow import MainWindow
from photofind.gui.searchbar import CUTOFF_MAX
from tests.conftest import IndexedLibrary

OpenWindow = Callable[..., MainWindow]


def photofind_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("photofind-")]


@pytest.fixture
def open_window(qtbot, tmp_path: Path, toy_model: str) -> Iterator[OpenWindow]:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    windows: list[MainWindow] = []

    def make(library: Path, model: str = toy_model, cutoff: int = CUTOFF_MAX) -> MainWindow:
        """``cutoff``: the slider's position (default: every ranked photo shows)."""
        store = QSettings(str(tmp_path / f"settings-{len(windows)}.ini"),
                          QSettings.Format.IniFormat)
        store.setValue(prefs.CUTOFF, cutoff)
        window = MainWindow(Settings.resolve(str(library), model, "cpu"), store)
        qtbot.addWidget(window)
        window.show()
        window.start()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
    assert not photofind_threads(), f"threads left running: {photofind_threads()}"


@pytest.fixture
def library_copy(indexed: IndexedLibrary, tmp_path: Path) -> Path:
    """The session's indexed library, copied so a window may write to it."""
    target = tmp_path / "library"
    shutil.copytree(indexed.cli.library, target,
                    ignore=shutil.ignore_patterns("photofind.lock"))
    return target
