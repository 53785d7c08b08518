"""The window's first model download from a hub on localhost: progress with its size,
Cancel stops it at once and keeps what arrived, "Resume download" fetches only the rest
and the model loads."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from photofind.core.config import Settings
from photofind.gui.firstrun import BUTTON, CANCEL, RESUME
from photofind.gui.mainwindow import MainWindow
from tests.packaging.fakehub import FakeHub
from tests.packaging.test_firstrun import IMMICH_REPO

SPEC = f"hf-hub:{IMMICH_REPO}"


@pytest.fixture
def window(qtbot: Any, tmp_path: Path, hub: FakeHub) -> Iterator[MainWindow]:
    from PySide6.QtCore import QSettings

    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    shown = MainWindow(Settings.resolve(str(tmp_path / "library"), SPEC, "cpu"), store)
    qtbot.addWidget(shown)
    shown.show()
    shown.start()
    yield shown
    shown.close()


def _button(window: MainWindow, name: str) -> Any:
    from PySide6.QtWidgets import QPushButton

    return window.findChild(QPushButton, name)


def test_cancel_then_resume_fetches_only_the_rest(qtbot: Any, window: MainWindow,
                                                   hub: FakeHub) -> None:
    total_mb = f"of {hub.size / 1e6:,.0f} MB"
    qtbot.waitUntil(lambda: total_mb in window.progress_label.text(), timeout=30_000)
    assert window.progress_bar.isVisible() and not window.search.isEnabled()
    download = window.download
    assert download is not None
    qtbot.waitUntil(lambda: download.done() > hub.size // 3, timeout=30_000)
    _button(window, CANCEL).click()  # returns once the download process is gone
    assert not window.downloader.running
    kept = download.done()
    assert 0 < kept < hub.size
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=5_000)
    assert "download was cancelled" in window.banner.text()
    assert "goes on from there" in window.banner.text()
    assert not window.progress_bar.isVisible() and not _button(window, CANCEL).isVisible()
    assert _button(window, RESUME).isVisible() and _button(window, BUTTON).isVisible()
    qtbot.wait(500)
    assert download.done() == kept, "nothing arrives after Cancel"

    before = len(hub.gets)
    _button(window, RESUME).click()
    qtbot.waitUntil(lambda: window.search.isEnabled(), timeout=60_000)  # the model loaded
    assert window.queries.model_loaded
    assert hub.served_since(before) == hub.size - kept
    assert not window.banner.isVisible()
    assert not _button(window, RESUME).isVisible()
