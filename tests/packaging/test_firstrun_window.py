"""The window's first run offline: "Use a model folder…" switches to a copied model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from photofind.core.config import Settings
from photofind.core.errors import ModelUnavailableError
from photofind.gui.firstrun import BUTTON
from photofind.gui.mainwindow import MainWindow

OFFLINE = "Could not download the weights for the model (is this machine offline?)."


@pytest.fixture
def offline_window(qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                   ) -> Iterator[MainWindow]:
    from PySide6.QtCore import QSettings

    from photofind.core.model import loading

    real = loading.load_encoder

    def offline_default(settings: Settings, *args: Any, **kwargs: Any) -> Any:
        if settings.model == "ViT-B-32/laion2b_s34b_b79k":
            raise ModelUnavailableError(OFFLINE)
        return real(settings, *args, **kwargs)

    monkeypatch.setattr("photofind.core.model.loading.load_encoder", offline_default)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no hub: no connection attempts either
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Settings.resolve(str(tmp_path / "library"),
                                         "ViT-B-32/laion2b_s34b_b79k", "cpu"), store)
    qtbot.addWidget(window)
    window.show()
    window.start()
    yield window
    window.close()


def _button(window: MainWindow) -> Any:
    from PySide6.QtWidgets import QPushButton

    return window.findChild(QPushButton, BUTTON)


def test_use_a_model_folder_switches_to_it(qtbot: Any, offline_window: MainWindow,
                                           toy_onnx: str, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    window = offline_window
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=120_000)
    assert OFFLINE in window.banner.text()
    button = _button(window)
    assert button is not None and button.isVisible()
    folder = toy_onnx.removeprefix("local-dir:")
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getExistingDirectory",
                        lambda *a, **k: folder)
    button.click()
    assert not button.isVisible() and not window.banner.isVisible()
    qtbot.waitUntil(lambda: window.settings.model == toy_onnx, timeout=120_000)
    assert window.store.value("model") == toy_onnx
    # and words are searched with it (the box is not just enabled)
    qtbot.waitUntil(lambda: window.queries.model_loaded, timeout=60_000)


def test_a_folder_that_is_no_model_is_refused_in_one_sentence(
        qtbot: Any, offline_window: MainWindow, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    window = offline_window
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=120_000)
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getExistingDirectory",
                        lambda *a, **k: str(empty))
    _button(window).click()
    assert window.banner.text().startswith(f"{empty} is not a model photofind can use:")
    assert window.settings.model == "ViT-B-32/laion2b_s34b_b79k"
