"""First run without a model: the download of the default model, and "Use a model
folder…" beside the message that says what to download, for a machine that cannot reach
the hub.

The download shows its size and progress in the status bar with a Cancel button; it runs
in a child process (``workers.ModelDownloader``), so Cancel stops it at once. What arrived
stays in the Hugging Face cache: "Resume download" (or the next start) goes on from
there.

The chosen folder (an ONNX folder in Immich's layout, or an open_clip folder where torch
is installed) is checked before the window switches to it; a folder that is not a model
gets one sentence in the banner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QFileDialog, QPushButton

from photofind.core.model.sources import model_problem

if TYPE_CHECKING:
    from photofind.core.model.download import ModelDownload
    from photofind.core.model.sources import Download
    from photofind.gui.mainwindow import MainWindow

BUTTON = "use-model-folder"
CANCEL = "cancel-download"
RESUME = "resume-download"


class Downloads(QObject):
    """The window's first model download: progress, Cancel, "Resume download". Its
    slots run on the GUI thread (this object lives there), whichever thread emits."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        window.queries.model_downloading.connect(self.show)
        window.downloader.finished.connect(self._finished)
        window.downloader.failed.connect(self._failed)
        window.downloader.cancelled.connect(self._cancelled)

    @Slot(object)
    def show(self, download: ModelDownload | Download) -> None:
        """A first download began: its progress, and a Cancel button when it can stop."""
        from photofind.core.model.download import ModelDownload

        self.window.search.setPlaceholderText("Downloading the model (first run only)…")
        self.window.status.show_download(download)
        if isinstance(download, ModelDownload):
            self._button(RESUME).hide()
            self._button(CANCEL).show()
            self.window.downloader.start(download)

    @Slot()
    def _finished(self) -> None:
        self._ended()
        self.window.queries.load_model()

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._ended()
        self._unavailable(message)

    @Slot(object, object)
    def _cancelled(self, done: int, total: int | None) -> None:
        self._ended()
        size = f"{done / 1e6:,.0f} of {total / 1e6:,.0f} MB" if total \
            else f"{done / 1e6:,.0f} MB"
        self._unavailable(f"The model download was cancelled at {size}; what arrived is"
                          " kept, and “Resume download” (or the next start) goes on from"
                          " there.")

    def _ended(self) -> None:
        self.window.status.download_finished()
        self._button(CANCEL).hide()

    def _unavailable(self, message: str) -> None:
        self.window.queries.model_unavailable(message)  # the banner, "Use a model folder…"
        self._button(RESUME).show()

    def _resume(self) -> None:
        self.window.banner.hide()
        self._button(RESUME).hide()
        self.window.queries.load_model()  # plans the rest of the download, shown again

    def _button(self, name: str) -> QPushButton:
        button = self.window.findChild(QPushButton, name)
        if button is None:
            text, tip, slot = {
                CANCEL: ("Cancel download", "Stop downloading; what arrived is kept",
                         self.window.downloader.cancel),
                RESUME: ("Resume download", "Go on downloading the model from where it"
                         " stopped", self._resume),
            }[name]
            button = QPushButton(text, self.window)
            button.setObjectName(name)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            self.window.statusBar().addPermanentWidget(button)
        return button


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
