"""The window while it indexes, with the toy model (offscreen): the longest
time the GUI thread's event loop went without turning while 300 photos were
added and indexed (a 10 ms timer's worst gap), and how long closing the
window takes while a run of 200 photos is part-way.

    python benchmarks/bench_window_indexing.py
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from photofind.core.config import Settings
from photofind.gui.mainwindow import MainWindow
from photofind.testing.samples import make_sample_library
from photofind.testing.toyclip import toy_model_dir


def window(work: Path, name: str) -> MainWindow:
    settings = Settings.resolve(str(work / f"lib-{name}"), f"local-dir:{toy_model_dir()}",
                                "cpu")
    win = MainWindow(settings, QSettings(str(work / f"{name}.ini"), QSettings.Format.IniFormat))
    win.show()
    win.start()
    return win


def until(app: QApplication, condition: Callable[[], bool]) -> None:
    while not condition():
        app.processEvents()
        time.sleep(0.005)


def worst_gap(app: QApplication, work: Path) -> float:
    folder = work / "photos-300"
    make_sample_library(folder, per_class=15, large=0)
    win = window(work, "gap")
    until(app, lambda: win.queries.model_loaded)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    win.add_folder(str(folder))
    until(app, lambda: win.model.total() == 300 and not win.indexing)
    timer.stop()
    win.close()
    return max(gaps)


def close_while_indexing(app: QApplication, work: Path) -> float:
    folder = work / "photos-200"
    make_sample_library(folder, per_class=10, large=0)
    win = window(work, "close")
    until(app, lambda: win.queries.model_loaded)
    win.add_folder(str(folder))
    until(app, lambda: win.indexing and win.progress_bar.value() > 0)
    start = time.perf_counter()
    win.close()
    return time.perf_counter() - start


def main() -> None:
    app = QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        gap = worst_gap(app, Path(tmp))
        close = close_while_indexing(app, Path(tmp))
    print(f"longest event-loop gap while 300 photos index   {gap * 1000:7.0f} ms")
    print(f"closing the window part-way through 200 photos  {close:7.2f} s")
    print(f"summary: worst gap {gap * 1000:.0f} ms (target < 100), close {close:.2f} s"
          " (target < 3)")


if __name__ == "__main__":
    main()
