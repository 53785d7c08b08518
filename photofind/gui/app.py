"""Starting the desktop app: settings, the QApplication, the main window.

The window is shown before anything heavy happens; the model loads behind it
(``MainWindow.start``). Settings come from the command line, then the
environment, then what the Settings dialog saved (QSettings).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from photofind.core.config import Settings
from photofind.core.errors import PhotofindError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="photofind gui", description="The photofind window.")
    parser.add_argument("--library", help="library folder (default: the user's data folder)")
    parser.add_argument("--model", help="model spec, as for the command line")
    parser.add_argument("--device", help="auto, cpu, cuda or mps")
    parser.add_argument("--runtime", help="auto, onnx or torch")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import multiprocessing

    multiprocessing.freeze_support()
    args = parse(sys.argv[1:] if argv is None else argv)
    if sys.platform.startswith("linux") and not any(
            os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        print("photofind: there is no display to open the window on; use the command line"
              " (photofind --help) or run it in a desktop session.", file=sys.stderr)
        return 1
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from photofind.bundle import APP_ID, icon_path
    from photofind.gui import prefs
    from photofind.gui.mainwindow import MainWindow

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("photofind")
    app.setApplicationName("photofind")
    QApplication.setDesktopFileName(APP_ID)  # the desktop entry, and its icon, on Wayland
    if (icon := icon_path()) is not None:
        QApplication.setWindowIcon(QIcon(str(icon)))
    store = QSettings()
    saved = {key: str(store.value(key, "") or "")
             for key in (prefs.MODEL, prefs.DEVICE, prefs.THREADS, prefs.RUNTIME)}
    if saved[prefs.THREADS] not in ("", "0") and "PHOTOFIND_THREADS" not in os.environ:
        os.environ["PHOTOFIND_THREADS"] = saved[prefs.THREADS]
    try:
        settings = Settings.resolve(args.library, args.model or os.environ.get("PHOTOFIND_MODEL")
                                    or saved[prefs.MODEL] or None,
                                    args.device or os.environ.get("PHOTOFIND_DEVICE")
                                    or saved[prefs.DEVICE] or None,
                                    args.runtime or os.environ.get("PHOTOFIND_RUNTIME")
                                    or saved[prefs.RUNTIME] or None)
    except PhotofindError as exc:
        print(f"photofind: {exc}", file=sys.stderr)
        return 1
    window = MainWindow(settings, store)
    window.show()
    QTimer.singleShot(0, window.start)
    return int(app.exec())
