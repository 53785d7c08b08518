"""First run without a model: "Use a model folder…" beside the message that says what
to download, for a machine that cannot reach the hub.

The chosen folder (an ONNX folder in Immich's layout, or an open_clip folder where torch
is installed) is checked before the window switches to it; a folder that is not a model
gets one sentence in the banner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QPushButton

from photofind.core.model.sources import model_problem

if TYPE_CHECKING:
    from photofind.gui.mainwindow import MainWindow

BUTTON = "use-model-folder"


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
    if (button := window.findChild(QPushButton, BUTTON)) is not None:
        button.hide()
    window.switch_model(spec)
