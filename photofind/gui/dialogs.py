"""The app's dialogs: Folders, Problems, Preview and Settings.

They show plain data handed to them (the query thread fetches it) and send
the user's decisions back through signals; none touches the library itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QSettings, Qt, QUrl, Signal
from PySide6.QtGui import (
    QDesktopServices,
    QGuiApplication,
    QImage,
    QKeySequence,
    QPixmap,
    QShortcut,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from photofind.core.watcher import WatchConfig
from photofind.gui.models import describe
from photofind.gui.workers import Hit


def _table(headers: list[str], parent: Any) -> QTableWidget:
    table = QTableWidget(0, len(headers), parent)
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    for column in range(1, len(headers)):
        table.horizontalHeader().setSectionResizeMode(
            column, QHeaderView.ResizeMode.ResizeToContents)
    return table


def _fill(table: QTableWidget, rows: Sequence[tuple[str, ...]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            table.setItem(r, c, item)


class FoldersDialog(QDialog):
    """The library's folders: state and photo count; add and remove."""

    add_requested = Signal(str)
    remove_requested = Signal(str)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Folders — photofind")
        self.resize(680, 340)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("photofind indexes these folders and keeps up with changes in"
                                " them. Removing a folder never touches its files."))
        self.table = _table(["Folder", "State", "Photos"], self)
        layout.addWidget(self.table)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add folder…")
        self.remove_button = QPushButton("Remove")
        close = QPushButton("Close")
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch()
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.add_button.clicked.connect(self._pick)
        self.remove_button.clicked.connect(self._remove)
        close.clicked.connect(self.accept)

    def show_status(self, status: dict[str, Any], busy: bool) -> None:
        rows = [(r["path"], "scanning" if busy and r["state"] == "online" else r["state"],
                 f"{r['photos']:,}") for r in status["roots"]]
        _fill(self.table, rows)
        self.remove_button.setEnabled(bool(rows))

    def _pick(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of photos")
        if folder:
            self.add_requested.emit(folder)

    def _remove(self) -> None:
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        if item is not None:
            self.remove_requested.emit(item.text())


class ProblemsDialog(QDialog):
    """Files that could not be read, with the reason for each."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Problems — photofind")
        self.resize(720, 360)
        layout = QVBoxLayout(self)
        self.summary = QLabel()
        layout.addWidget(self.summary)
        self.table = _table(["File", "Reason"], self)
        layout.addWidget(self.table)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)

    def show_failures(self, failures: list[tuple[str, str]]) -> None:
        files = f"{len(failures)} file" + ("" if len(failures) == 1 else "s")
        self.summary.setText(
            f"{files} could not be read. They stay where they are; photofind tries them"
            " again when they change." if failures else "Every file could be read.")
        _fill(self.table, [(path, reason) for path, reason in failures])


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


class PreviewDialog(QDialog):
    """A large view of one photo (decoded in the background) and its actions."""

    find_similar = Signal(object)  # Hit
    wants_image = Signal(str, int)  # path, size in device pixels

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preview — photofind")
        self.resize(900, 720)
        self.hit: Hit | None = None
        layout = QVBoxLayout(self)
        self.image = QLabel("Loading…")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(320, 240)
        layout.addWidget(self.image, 1)
        self.info = QLabel()
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.info.setWordWrap(True)
        layout.addWidget(self.info)
        row = QHBoxLayout()
        for text, slot in (("Open", self._open), ("Show in folder", self._show),
                           ("Copy path", self._copy), ("Find similar", self._similar)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            row.addWidget(button)
        row.addStretch()
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        row.addWidget(close)
        layout.addLayout(row)
        QShortcut(QKeySequence(Qt.Key.Key_Space), self, self.reject)

    def show_hit(self, hit: Hit) -> None:
        self.hit = hit
        self.info.setText(describe(hit).replace("\n", "  ·  "))
        self.image.setPixmap(QPixmap())
        self.image.setText("Loading…")
        ratio = self.devicePixelRatioF()
        self.wants_image.emit(hit.info.path, int(max(self.image.width(), self.image.height())
                                                  * ratio))

    def image_ready(self, path: str, image: QImage, error: str) -> None:
        if self.hit is None or path != self.hit.info.path:
            return
        if image.isNull():
            self.image.setText(f"Cannot show this photo ({error or 'unreadable'}).")
            return
        pixmap = QPixmap.fromImage(image)
        ratio = self.devicePixelRatioF()
        target = self.image.size() * ratio
        if pixmap.width() > target.width() or pixmap.height() > target.height():
            pixmap = pixmap.scaled(target, Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)  # never enlarged
        pixmap.setDevicePixelRatio(ratio)
        self.image.setPixmap(pixmap)

    def _open(self) -> None:
        if self.hit:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.hit.info.path))

    def _show(self) -> None:
        if self.hit:
            show_in_folder(self.hit.info.path)

    def _copy(self) -> None:
        if self.hit:
            QGuiApplication.clipboard().setText(self.hit.info.path)

    def _similar(self) -> None:
        if self.hit:
            self.find_similar.emit(self.hit)
            self.accept()


def stored_int(store: QSettings, key: str, default: int) -> int:
    """An integer setting (QSettings hands back strings from an INI file)."""
    try:
        return int(str(store.value(key, default) or default))
    except ValueError:
        return default


def watch_config(store: QSettings) -> WatchConfig:
    """The watched-folder options the Settings dialog keeps."""
    return WatchConfig(reconcile_every=60.0 * stored_int(store, "rescan_minutes", 30),
                       force_polling=str(store.value("force_polling", "false")) == "true")


class SettingsDialog(QDialog):
    """Model, runtime, device and CPU threads, kept in QSettings. A new model is
    switched to in the background; device and threads apply at the next start."""

    model_changed = Signal(str)

    def __init__(self, settings: QSettings, current_model: str, parent: Any = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings — photofind")
        self.store = settings
        self.current_model = current_model
        form = QFormLayout(self)
        self.model = QLineEdit(current_model)
        self.model.setPlaceholderText("ViT-B-32/laion2b_s34b_b79k (the default)")
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.device.setCurrentText(str(settings.value("device", "auto")))
        self.runtime = QComboBox()
        self.runtime.addItems(["auto", "onnx", "torch"])
        self.runtime.setCurrentText(str(settings.value("runtime", "auto")))
        self.runtime.setToolTip("auto: torch on a CUDA or Metal GPU when it is installed,"
                                " otherwise ONNX Runtime on the CPU (the same vectors)")
        self.threads = QSpinBox()
        self.threads.setRange(0, os.cpu_count() or 1)
        self.threads.setSpecialValueText("one per core")
        self.threads.setValue(stored_int(settings, "threads", 0))
        self.rescan = QSpinBox()
        self.rescan.setRange(5, 24 * 60)
        self.rescan.setSuffix(" min")
        watch = watch_config(settings)
        self.rescan.setValue(int(watch.reconcile_every // 60))
        self.rescan.setToolTip("A full look at every folder, for changes the system did not"
                               " report (network drives, sleep)")
        self.polling = QCheckBox("Poll every folder (when changes are not noticed)")
        self.polling.setChecked(watch.force_polling)
        form.addRow("Model", self.model)
        form.addRow("Runtime", self.runtime)
        form.addRow("Device", self.device)
        form.addRow("CPU threads", self.threads)
        form.addRow("Rescan folders every", self.rescan)
        form.addRow("", self.polling)
        note = QLabel("A new model re-reads your photos in the background; searches use the"
                      " current one until it is done. The other settings apply at the next"
                      " start.")
        note.setWordWrap(True)
        form.addRow(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._save)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _save(self) -> None:
        model = self.model.text().strip()
        if model and model != self.current_model:
            self.model_changed.emit(model)
        self.store.setValue("device", self.device.currentText())
        self.store.setValue("runtime", self.runtime.currentText())
        self.store.setValue("threads", self.threads.value())
        self.store.setValue("rescan_minutes", self.rescan.value())
        self.store.setValue("force_polling", "true" if self.polling.isChecked() else "false")
        self.accept()
