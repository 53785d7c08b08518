"""First run without a model: the download of the default model, and "Use a model
folder…" beside the message that says what to download, for a machine that cannot reach
the hub.

The download shows its size and progress in the status bar with a Cancel button; it runs
in a child process (``workers.ModelDownloader``), so Cancel stops it at once. What arrived
stays in the Hugging Face cache: "Download the model" (or the next start) goes on from
there. The chosen folder (an ONNX folder in Immich's layout, or an open_clip folder where torch
is installed) is checked before the window switches to it; a folder that is not a model
gets one sentence in the banner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QPushButton

from photofind.core.model.sources import model_problem

if TYPE_CHECKING:
    from photofind.core.model.download import ModelDownload
    from photofind.core.model.sources import Download
    from photofind.gui.mainwindow import MainWindow

BUTTON = "use-model-folder"
CANCEL = "cancel-download"
RESUME = "resume-download"


def connect_downloads(window: MainWindow) -> None:
    """Follow the window's model downloads: progress, cancel, resume."""
    downloader = window.downloader
    window.queries.model_downloading.connect(lambda d: show_download(window, d))
    downloader.finished.connect(lambda: _ended(window, window.queries.load_model))
    downloader.failed.connect(lambda message: _ended(
        window, lambda: _unavailable(window, message)))
    downloader.cancelled.connect(lambda done, total: _ended(window, lambda: _unavailable(
        window, f"The model download was cancelled at {_megabytes(done, total)}; what"
        " arrived is kept, and “Resume download” (or the next start) goes on from there.")))


def show_download(window: MainWindow, download: ModelDownload | Download) -> None:
    """A first download began: its progress, and a Cancel button when it can stop."""
    from photofind.core.model.download import ModelDownload

    window.search.setPlaceholderText("Downloading the model (first run only)…")
    window.status.show_download(download)
    if isinstance(download, ModelDownload):
        _button(window, RESUME).hide()
        _button(window, CANCEL).show()
        window.downloader.start(download)


def _button(window: MainWindow, name: str) -> QPushButton:
    button = window.findChild(QPushButton, name)
    if button is None:
        text, tip, slot = {
            CANCEL: ("Cancel download", "Stop downloading; what arrived is kept",
                     window.downloader.cancel),
            RESUME: ("Resume download", "Go on downloading the model from where it stopped",
                     lambda: _resume(window)),
        }[name]
        button = QPushButton(text, window)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        window.statusBar().addPermanentWidget(button)
    return button


def _ended(window: MainWindow, then: Callable[[], None]) -> None:
    window.status.download_finished()
    _button(window, CANCEL).hide()
    then()


def _unavailable(window: MainWindow, message: str) -> None:
    window.queries.model_unavailable(message)  # the banner and "Use a model folder…"
    _button(window, RESUME).show()


def _resume(window: MainWindow) -> None:
    window.banner.hide()
    _button(window, RESUME).hide()
    window.queries.load_model()  # plans the rest of the download, which shows again


def _megabytes(done: int, total: int | None) -> str:
    return f"{done / 1e6:,.0f} of {total / 1e6:,.0f} MB" if total else f"{done / 1e6:,.0f} MB"


def offer_model_folder(window: MainWindow) -> QPushButton:
    """Show the "Use a model folder…" button in the status bar (once)."""
    button = window.findChild(QPushButton, BUTTON)
    if button is None:
        button = QPushButton("Use a model folder…", window)
        button.setObjectName(BUTTON)
        button.setToolTip("Use a model you downloaded on another machine and copied here")
        button.clicked.connect(lambda: choose_model_folder(window))
        window.statusBar().addPermanentWidget(button)
    button.show()
    return button


def choose_model_folder(window: MainWindow) -> None:
    folder = QFileDialog.getExistingDirectory(window, "The model's folder")
    if not folder:
        return
    spec = f"local-dir:{folder}"
    problem = model_problem(spec)
    if problem is not None:
        window.show_banner(f"{folder} is not a model photofind can use: {problem}.")
        return
    window.banner.hide()
    for name in (BUTTON, RESUME):
        if (button := window.findChild(QPushButton, name)) is not None:
            button.hide()
    window.switch_model(spec)
