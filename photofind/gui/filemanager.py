"""Handing a photo to the desktop: open it, or show it in the file manager."""

from __future__ import annotations

import os
import subprocess
import sys

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices


def open_file(path: str) -> None:
    """Open the photo in the system's default viewer."""
    QDesktopServices.openUrl(QUrl.fromLocalFile(path))


def show_in_folder(path: str) -> None:
    """Select the file in the platform's file manager where possible."""
    if sys.platform == "win32":
        subprocess.Popen(["explorer", "/select,", os.path.normpath(path)])
    elif sys.platform == "darwin":
        subprocess.Popen(["open", "-R", path])
    else:
        url = QUrl.fromLocalFile(path).toString()
        try:  # the freedesktop file-manager interface (Nautilus, Dolphin, Nemo ...)
            subprocess.run(
                ["gdbus", "call", "--session", "--dest", "org.freedesktop.FileManager1",
                 "--object-path", "/org/freedesktop/FileManager1", "--method",
                 "org.freedesktop.FileManager1.ShowItems", f"['{url}']", ""],
                check=True, capture_output=True, timeout=3)
        except (OSError, subprocess.SubprocessError):
            QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(path)))
