"""The window on the 100,000-photo library (ViT-B-32 random weights, offscreen):
time from process start to the main window shown; time from Enter on a text
query to the first page of tiles painted (model loaded, median of 15 new
queries); the app's peak RSS.

    python benchmarks/bench_gui.py [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from common import big_library, model_spec

WORDS = ("dog", "beach", "sunset", "cake", "snow", "mountain", "city", "grandma", "car",
         "wedding", "forest", "cat", "river", "bridge", "flower")


def child(library: str, spec: str, started: float) -> None:
    import resource

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from photofind.core.config import Settings
    from photofind.gui.mainwindow import MainWindow

    app = QApplication([])
    window = MainWindow(Settings.resolve(library, spec, "cpu"),
                        QSettings(os.devnull, QSettings.Format.IniFormat))
    window.show()
    app.processEvents()
    shown = time.time() - started
    window.start()

    def settle(condition):  # type: ignore[no-untyped-def]
        while not condition():
            app.processEvents()
            time.sleep(0.001)
    settle(lambda: window.queries.model_loaded and window.shown_serial == window.serial)
    times = []
    for word in WORDS:
        window.search.setText(f"a {word}")
        start = time.perf_counter()
        window.run_query()
        settle(lambda: window.shown_serial == window.serial)
        window.grid.viewport().repaint()  # the first page, painted now
        times.append((time.perf_counter() - start) * 1e3)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{shown:.3f} {statistics.median(times):.1f} {max(times):.1f} {rss:.0f}")
    window.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    spec = model_spec()
    library = str(big_library(spec))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PHOTOFIND_THREADS": str(args.threads)}
    started = time.time()
    out = subprocess.run([sys.executable, __file__, "--child", library, spec, str(started)],
                         env=env, capture_output=True, text=True, check=True)
    shown, p50, worst, rss = out.stdout.split()[-4:]
    print(f"100,000 photos, ViT-B-32 random weights, cpu, {args.threads} threads, offscreen")
    print(f"start to window shown          {float(shown):7.2f} s")
    print(f"Enter to first page painted    {float(p50):7.1f} ms median, {float(worst):.1f} worst")
    print(f"peak RSS                       {float(rss):7.0f} MB")
    print(f"summary: window in {float(shown):.2f} s (target < 1.5), query to pixels"
          f" {float(p50):.0f} ms (target < 150), peak RSS {float(rss):.0f} MB")


if __name__ == "__main__":
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        child(sys.argv[i + 1], sys.argv[i + 2], float(sys.argv[i + 3]))
    else:
        main()
