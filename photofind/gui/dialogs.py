"""The app's dialogs: Folders, Problems, Settings and Save as album.

They show plain data handed to them (the query thread fetches it) and send
the user's decisions back through signals; none touches the library itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QSettings, Signal
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
    QWidget,
)

from photofind.core.roots import resolved
from photofind.gui import prefs
from photofind.gui.prefs import stored_int, watch_config


def _table(headers: list[str], parent: QWidget | None) -> QTableWidget:
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

    def __init__(self, parent: QWidget | None = None) -> None:
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
            self.add_requested.emit(resolved(folder))  # the rule of core/roots.py

    def _remove(self) -> None:
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        if item is not None:
            self.remove_requested.emit(item.text())


class ProblemsDialog(QDialog):
    """Files that could not be read, with the reason for each."""

    def __init__(self, parent: QWidget | None = None) -> None:
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


class SettingsDialog(QDialog):
    """Model, runtime, device and CPU threads, kept in QSettings. A new model is
    switched to in the background; device and threads apply at the next start.
    Reading the text in photos is the library's own switch (kept in it)."""

    model_changed = Signal(str)
    reading_changed = Signal(bool)

    def __init__(self, settings: QSettings, current_model: str,
                 parent: QWidget | None = None, reading_text: bool = True) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings — photofind")
        self.store = settings
        self.current_model = current_model
        form = QFormLayout(self)
        self.model = QLineEdit(current_model)
        self.model.setPlaceholderText("ViT-B-32/laion2b_s34b_b79k (the default)")
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.device.setCurrentText(str(settings.value(prefs.DEVICE, "auto")))
        self.runtime = QComboBox()
        self.runtime.addItems(["auto", "onnx", "torch"])
        self.runtime.setCurrentText(str(settings.value(prefs.RUNTIME, "auto")))
        self.runtime.setToolTip("auto: torch on a CUDA or Metal GPU when it is installed,"
                                " otherwise ONNX Runtime on the CPU (the same vectors)")
        self.threads = QSpinBox()
        self.threads.setRange(0, os.cpu_count() or 1)
        self.threads.setSpecialValueText("one per core")
        self.threads.setValue(stored_int(settings, prefs.THREADS, 0))
        self.rescan = QSpinBox()
        self.rescan.setRange(5, 24 * 60)
        self.rescan.setSuffix(" min")
        watch = watch_config(settings)
        self.rescan.setValue(int(watch.reconcile_every // 60))
        self.rescan.setToolTip("A full look at every folder, for changes the system did not"
                               " report (network drives, sleep)")
        self.polling = QCheckBox("Poll every folder (when changes are not noticed)")
        self.polling.setChecked(watch.force_polling)
        self.reading_text = reading_text
        self.read_text = QCheckBox("Read the text in photos (search them by their words)")
        self.read_text.setChecked(reading_text)
        self.read_text.setToolTip("Receipts, signs, screenshots and slides: their words are"
                                  " read in the background after indexing (text: in the"
                                  " search box)")
        form.addRow("Model", self.model)
        form.addRow("Runtime", self.runtime)
        form.addRow("Device", self.device)
        form.addRow("CPU threads", self.threads)
        form.addRow("Rescan folders every", self.rescan)
        form.addRow("", self.polling)
        form.addRow("", self.read_text)
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
        self.store.setValue(prefs.DEVICE, self.device.currentText())
        self.store.setValue(prefs.RUNTIME, self.runtime.currentText())
        self.store.setValue(prefs.THREADS, self.threads.value())
        self.store.setValue(prefs.RESCAN_MINUTES, self.rescan.value())
        prefs.store_bool(self.store, prefs.FORCE_POLLING, self.polling.isChecked())
        if self.read_text.isChecked() != self.reading_text:
            self.reading_changed.emit(self.read_text.isChecked())
        self.accept()


class SaveAlbumDialog(QDialog):
    """Name a search to keep it as an album (its words, its image, its cut-off)."""

    save_wanted = Signal(str)

    def __init__(self, summary: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Save as album — photofind")
        self.setMinimumWidth(440)
        form = QFormLayout(self)
        self.name = QLineEdit()
        self.name.setPlaceholderText("A name for these photos")
        about = QLabel(f"{summary}<br>The album follows your photos: new ones that match"
                       " appear in it by themselves.")
        about.setWordWrap(True)
        form.addRow(about)
        form.addRow("Name", self.name)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._save)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

    def _save(self) -> None:
        name = " ".join(self.name.text().split())
        if name:
            self.save_wanted.emit(name)
            self.accept()
