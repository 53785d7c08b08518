"""The status bar: how many photos the answer holds, indexing progress with
pause, a first model download, the problems link and the model's device."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

if TYPE_CHECKING:
    from photofind.core.indexer import Progress
    from photofind.core.model.download import ModelDownload
    from photofind.core.model.sources import Download


class StatusPanel(QObject):
    """The widgets of the window's status bar, and what they say."""

    pause_toggled = Signal(bool)
    problems_clicked = Signal()

    def __init__(self, bar: QStatusBar) -> None:
        super().__init__(bar)
        self.bar = bar
        self.count_label = QLabel(bar)
        self.progress_label = QLabel(bar)
        self.progress_bar = QProgressBar(bar)
        self.progress_bar.setMaximumWidth(160)
        self.progress_bar.hide()
        self.pause_button = QPushButton("Pause indexing", bar)
        self.pause_button.setCheckable(True)
        self.pause_button.setFlat(True)
        self.device_label = QLabel("model: loading…", bar)
        self.problems_button = QPushButton(bar)
        self.problems_button.setFlat(True)
        self.problems_button.hide()
        bar.addWidget(self.count_label, 1)
        for widget in (self.progress_label, self.progress_bar, self.pause_button,
                       self.problems_button, self.device_label):
            bar.addPermanentWidget(widget)
        self.download: Download | ModelDownload | None = None
        self.download_timer = QTimer(self)
        self.download_timer.setInterval(500)
        self.download_timer.timeout.connect(self._download_tick)
        self.pause_button.toggled.connect(self._pause)
        self.problems_button.clicked.connect(self.problems_clicked)

    def show_count(self, shown: int, ranked: int, is_query: bool) -> None:
        """``shown``: photos that pass the cut-off, of ``ranked`` the query ranked."""
        if is_query:
            more = f" (of {ranked:,} ranked: move the cut-off right for more)" \
                if shown < ranked else ""
            self.count_label.setText(f"{_plural(shown, 'match', 'matches')}{more}")
        else:
            self.count_label.setText(f"{shown:,} photos, newest first")

    def show_failed(self, count: int) -> None:
        self.problems_button.setText(_plural(count, "problem"))
        self.problems_button.setVisible(count > 0)

    def show_progress(self, progress: Progress | None) -> None:
        if progress is None or progress.total == 0:
            self.progress_label.setText("")
            self.progress_bar.hide()
            return
        eta = f", {_duration(progress.eta_s)} left" if progress.eta_s else ""
        from photofind.core.reading import ReadingProgress  # loaded by the engine already

        doing = "reading text" if isinstance(progress, ReadingProgress) else "indexing"
        self.progress_label.setText(f"{doing} {progress.done:,}/{progress.total:,}"
                                    f" ({progress.rate:.1f}/s{eta})")
        self.progress_bar.setRange(0, progress.total)
        self.progress_bar.setValue(progress.done)
        self.progress_bar.show()

    def show_download(self, download: Download | ModelDownload) -> None:
        """First run: the weights download while the window is usable; show how far."""
        self.download = download
        self.download_timer.start()
        self._download_tick()

    def _download_tick(self) -> None:
        if self.download is None:
            return
        done, total = self.download.done() / 1e6, (self.download.total or 0) / 1e6
        of = f" of {total:,.0f} MB" if total else " MB"
        self.progress_label.setText(f"downloading the model: {done:,.0f}{of}")
        self.progress_bar.setRange(0, int(total) if total else 0)  # busy bar without a size
        self.progress_bar.setValue(int(done))
        self.progress_bar.show()

    def download_finished(self) -> None:
        if self.download is not None:
            self.download = None
            self.download_timer.stop()
            self.progress_label.setText("")
            self.progress_bar.hide()

    def show_model(self, engine: str | None) -> None:
        """What runs the model ("ONNX Runtime on CPU", "torch on CUDA"), or None."""
        self.download_finished()
        self.device_label.setText(f"model: {engine}" if engine else "model: not loaded")

    def _pause(self, paused: bool) -> None:
        self.pause_button.setText("Resume indexing" if paused else "Pause indexing")
        self.pause_toggled.emit(paused)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} " + (word if n == 1 else plural or word + "s")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
