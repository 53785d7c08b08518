"""The main window: search box, thumbnail grid, status bar, drag and drop.

It owns the workers (``gui/workers.py``) and turns their signals into what a
person sees; every widget lives on the GUI thread. The search box takes the
CLI's query syntax; an image query (find similar, a dropped or pasted
picture) shows as a chip beside it and combines with the text.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QMimeData, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QIcon,
    QImage,
    QImageReader,
    QKeySequence,
    QPixmap,
)
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QProgressBar,
    QPushButton,
    QSlider,
    QStackedWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from photofind.core.config import PHOTO_EXTENSIONS, Settings, parse_model_spec
from photofind.core.errors import PhotofindError
from photofind.core.indexer import Progress
from photofind.core.model.sources import Download
from photofind.gui.dialogs import (
    FoldersDialog,
    PreviewDialog,
    ProblemsDialog,
    SettingsDialog,
    stored_int,
    watch_config,
)
from photofind.gui.firstrun import offer_model_folder
from photofind.gui.models import HitRole, ResultsModel
from photofind.gui.views import Grid, PixmapCache
from photofind.gui.workers import Engine, Hit, Previews, Queries, Query, ThumbLoader

DEBOUNCE_MS = 250
EMPTY, GRID, MESSAGE = range(3)


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings, store: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.store = store or QSettings()
        self.setWindowTitle("photofind")
        self.resize(1200, 800)
        self.setAcceptDrops(True)
        self.engine = Engine(settings, watch_config(self.store))
        self.queries = Queries(settings, self.engine)
        self.loader = ThumbLoader(settings.library)
        self.previews = Previews()
        self.model = ResultsModel(self)
        self.cache = PixmapCache(self.loader)
        self.query = Query()
        self.pasted: QImage | None = None  # a pasted or dropped picture (not a file)
        self.serial = 0
        self.shown_serial = 0
        self.status_info: dict[str, Any] | None = None
        self.indexing = False
        self.failed_count = 0
        self.folders: FoldersDialog | None = None
        self.preview: PreviewDialog | None = None
        self._build()
        self._connect()

    # --- layout ---------------------------------------------------------
    def _build(self) -> None:
        bar = QToolBar("Search", self)
        bar.setMovable(False)
        self.addToolBar(bar)
        self.chip = QToolButton(self)
        self.chip.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.chip.setIconSize(QSize(28, 28))
        self.chip.setToolTip("Searching for photos like this one; click to remove it")
        self.chip.hide()
        self.chip_action = bar.addWidget(self.chip)
        self.chip_action.setVisible(False)
        self.search = QLineEdit(self)
        self.search.setClearButtonEnabled(True)
        self.search.setPlaceholderText("Loading the model…")
        self.search.setMinimumWidth(360)
        bar.addWidget(self.search)
        self.similar_action = QAction("Find similar", self)
        self.similar_action.setShortcut(QKeySequence("Ctrl+Shift+F"))
        self.similar_action.setToolTip("Find photos like the selected one (Ctrl+Shift+F)")
        bar.addAction(self.similar_action)
        bar.addSeparator()
        self.order = QComboBox(self)
        self.order.addItems(["Best match", "Newest first"])
        self.order.setToolTip("Order the matching photos by relevance or by date")
        bar.addWidget(self.order)
        self.cutoff = self._slider(bar, "Cut-off", (0, 30), stored_int(self.store, "cutoff", 0),
                                   "Relevance cut-off: right shows only the closest matches")
        self.size_slider = self._slider(bar, "Size", (96, 256),
                                        stored_int(self.store, "tile", 160),
                                        "Thumbnail size (Ctrl+plus, Ctrl+minus)")
        bar.addSeparator()
        self.folders_action = bar.addAction("Folders…")
        self.settings_action = bar.addAction("Settings…")

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        self.banner = QLabel(self)
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setStyleSheet("QLabel { background: #fff3cd; color: #5c4400;"
                                  " padding: 8px; }")
        self.banner.hide()
        layout.addWidget(self.banner)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self._empty_page())
        self.grid = Grid(self.model, self.cache, self)
        self.grid.set_tile(self.size_slider.value())
        self.stack.addWidget(self.grid)
        self.message = QLabel(self)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.stack.addWidget(self.message)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        status = self.statusBar()
        self.count_label = QLabel(self)
        self.progress_label = QLabel(self)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setMaximumWidth(160)
        self.progress_bar.hide()
        self.pause_button = QPushButton("Pause indexing", self)
        self.pause_button.setCheckable(True)
        self.pause_button.setFlat(True)
        self.device_label = QLabel("model: loading…", self)
        self.problems_button = QPushButton(self)
        self.problems_button.setFlat(True)
        self.problems_button.hide()
        status.addWidget(self.count_label, 1)
        for widget in (self.progress_label, self.progress_bar, self.pause_button,
                       self.problems_button, self.device_label):
            status.addPermanentWidget(widget)
        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(DEBOUNCE_MS)
        self.download: Download | None = None
        self.download_timer = QTimer(self)
        self.download_timer.setInterval(500)
        self.download_timer.timeout.connect(self._download_tick)
        self.refresh = QTimer(self)  # re-run the query when the library changed
        self.refresh.setSingleShot(True)
        self.refresh.setInterval(800)
        self.search.setEnabled(False)

    def _slider(self, bar: QToolBar, label: str, span: tuple[int, int], value: int,
                tip: str) -> QSlider:
        slider = QSlider(Qt.Orientation.Horizontal, self)
        slider.setRange(*span)
        slider.setValue(value)
        slider.setMaximumWidth(110)
        slider.setToolTip(tip)
        bar.addWidget(QLabel(f" {label} ", self))
        bar.addWidget(slider)
        return slider

    def _empty_page(self) -> QWidget:
        page = QWidget(self)
        layout = QVBoxLayout(page)
        layout.addStretch()
        title = QLabel("<h2>Find your photos by what is in them</h2>", page)
        text = QLabel("Add a folder of photos to begin. photofind reads them on this computer"
                      " (nothing is uploaded), then you can type what you are looking for,"
                      " such as <i>grandma's birthday cake</i>, or drop a picture here to find"
                      " others like it.", page)
        text.setWordWrap(True)
        text.setFixedWidth(560)
        text.setMinimumHeight(text.heightForWidth(560))  # centred labels get one line's height
        button = QPushButton("Add a folder…", page)
        button.clicked.connect(self._add_folder_dialog)
        for widget in (title, text, button):
            layout.addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter)
            if isinstance(widget, QLabel):
                widget.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addStretch()
        return page

    def _connect(self) -> None:
        self.search.textEdited.connect(lambda _: self.debounce.start())
        self.search.returnPressed.connect(self.run_query)
        self.debounce.timeout.connect(self.run_query)
        self.refresh.timeout.connect(self.run_query)
        self.chip.clicked.connect(self.clear_image_query)
        self.similar_action.triggered.connect(self.find_similar_to_selection)
        self.folders_action.triggered.connect(self.open_folders)
        self.settings_action.triggered.connect(self.open_settings)
        self.order.currentIndexChanged.connect(lambda _: self._apply_view())
        self.cutoff.valueChanged.connect(lambda _: self._apply_view())
        self.size_slider.valueChanged.connect(self._set_tile)
        self.grid.activated_photo.connect(self.open_preview)
        self.grid.customContextMenuRequested.connect(self._context_menu)
        self.pause_button.toggled.connect(self._pause)
        self.problems_button.clicked.connect(self.open_problems)
        self.loader.loaded.connect(self._thumb_loaded)
        self.queries.results.connect(self._results)
        self.queries.model_downloading.connect(self._downloading)
        self.queries.model_ready.connect(self._model_ready)
        self.queries.model_failed.connect(self._model_failed)
        self.queries.status.connect(self._status)
        self.engine.progress.connect(self._progress)
        self.engine.changed.connect(lambda _: self._library_changed())
        self.engine.roots_changed.connect(self._library_changed)
        self.engine.problem.connect(self.show_banner)
        self.engine.model_switched.connect(self._model_switched)
        for keys, slot in (("Ctrl+F", self.focus_search), ("Ctrl+L", self.focus_search),
                           ("Ctrl++", lambda: self._step_tile(16)),
                           ("Ctrl+=", lambda: self._step_tile(16)),
                           ("Ctrl+-", lambda: self._step_tile(-16)),
                           ("Ctrl+C", self.copy_paths), ("Ctrl+V", self.paste),
                           ("Space", self.toggle_preview)):
            action = QAction(self)
            action.setShortcut(QKeySequence(keys))
            action.triggered.connect(slot)
            self.addAction(action)
        self.previews.ready.connect(self._preview_ready)

    # --- lifecycle --------------------------------------------------------
    def start(self) -> None:
        """After the window is shown: workers start, the model loads behind it."""
        self.engine.start()
        self.queries.start()
        self.queries.ask_status()
        self.run_query()
        self.focus_search()
        pending = str(self.store.value("pending_model", "") or "")
        if pending and pending != self.settings.model:  # a switch the last run left unfinished
            self.switch_model(pending)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop every worker: the batch in flight is committed, nothing is lost."""
        self.debounce.stop()
        self.refresh.stop()
        self.store.setValue("tile", self.size_slider.value())
        self.store.setValue("cutoff", self.cutoff.value())
        self.engine.stop()
        self.queries.stop()
        self.loader.stop()
        self.previews.stop()
        if self.preview is not None:
            self.preview.close()

    # --- queries ------------------------------------------------------------
    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def run_query(self) -> None:
        self.debounce.stop()
        self.query = Query(self.search.text(), self.query.image_path, self.query.label)
        if self.query.text.strip() and not self.queries.model_loaded:
            return  # the box is disabled until the model is there
        self.serial += 1  # a pasted picture goes along, combined with the words typed
        self.queries.ask(self.serial, self.query, self.pasted)

    def search_for_image(self, path: str, label: str, icon: QPixmap | None = None) -> None:
        """A similar query: the image shows as a chip; the text stays and combines."""
        self.query = Query(self.search.text(), path, label)
        self.pasted = None
        self._show_chip(label, icon)
        self.serial += 1
        self.queries.ask(self.serial, self.query)

    def search_for_image_data(self, image: QImage, label: str) -> None:
        self._show_chip(label, QPixmap.fromImage(image))
        self.query = Query(self.search.text(), None, label)
        self.pasted = image
        self.serial += 1
        self.queries.ask(self.serial, self.query, image)

    def clear_image_query(self) -> None:
        self.query = Query(self.search.text())
        self.pasted = None
        self.chip.hide()
        self.chip_action.setVisible(False)
        self.run_query()

    def _show_chip(self, label: str, icon: QPixmap | None) -> None:
        self.chip.setText(f"like {label}  ✕")
        self.chip.setIcon(QIcon(icon) if icon is not None else QIcon())
        self.chip.show()
        self.chip_action.setVisible(True)

    def find_similar_to_selection(self) -> None:
        index = self.grid.currentIndex()
        if index.isValid():
            self.find_similar(index.data(HitRole))

    def find_similar(self, hit: Hit) -> None:
        self.search_for_image(hit.info.path, os.path.basename(hit.info.path),
                              self.cache.get(hit.info.id))

    def _results(self, serial: int, hits: list[Hit], error: str) -> None:
        if serial != self.serial:
            return  # an answer to a query the user has already changed
        self.shown_serial = serial
        self.cache.forget_requests()
        self.model.set_hits(hits)
        self._apply_view(keep=True)
        if error:
            self._show_message(error)
        elif not hits:
            self._show_message("No photos yet: indexing will fill this in." if
                               not (self.query.text or self.query.image_path)
                               else "Nothing matches.")
        else:
            self.stack.setCurrentIndex(GRID)
        self._update_count()

    def _apply_view(self, keep: bool = False) -> None:
        by_date = self.order.currentIndex() == 1
        cutoff = self.cutoff.value() / 100.0
        if not keep or (cutoff, by_date) != (self.model.cutoff, self.model.by_date):
            self.model.set_view(cutoff, by_date)
        self._update_count()

    def _update_count(self) -> None:
        total, before = self.model.total(), self.model.total_before_cutoff()
        if self.query.text.strip() or self.query.image_path or self.query.label:
            extra = f" (of {before:,}: move the cut-off left for more)" if total < before else ""
            self.count_label.setText(f"{total:,} matches{extra}")
        else:
            self.count_label.setText(f"{total:,} photos, newest first")

    def _show_message(self, text: str) -> None:
        if self.status_info is not None and not self.status_info["roots"]:
            self.stack.setCurrentIndex(EMPTY)
            return
        self.message.setText(text)
        self.stack.setCurrentIndex(MESSAGE)

    def _library_changed(self) -> None:
        self.queries.ask_status()
        self.refresh.start()

    # --- model, status, progress -----------------------------------------
    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.store, self.engine.switching_to or self.settings.model,
                                self)
        dialog.model_changed.connect(self.switch_model)
        dialog.open()
        return dialog

    def switch_model(self, spec: str) -> None:
        """Re-embed for ``spec`` in the background; the current model answers until then."""
        try:
            parse_model_spec(spec)
        except PhotofindError as exc:
            self.show_banner(str(exc))
            return
        self.store.setValue("pending_model", spec)
        self.engine.switch_model(spec)
        self.statusBar().showMessage(f"Re-reading your photos for {spec}; searches use"
                                     f" {self.settings.model} until that is done.", 10_000)

    def _model_switched(self, settings: Settings, embedder: Any) -> None:
        self.settings = settings
        self.queries.switch(settings, embedder)
        self.store.setValue("model", settings.model)
        self.store.remove("pending_model")
        self.statusBar().showMessage(f"Now searching with {settings.model}.", 10_000)
        self._library_changed()

    def _downloading(self, download: Download) -> None:
        """First run: the weights download while the window is usable; show how far."""
        self.download = download
        self.search.setPlaceholderText("Downloading the model (first run only)…")
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

    def _download_finished(self) -> None:
        if self.download is not None:
            self.download = None
            self.download_timer.stop()
            self.progress_label.setText("")
            self.progress_bar.hide()

    def _model_ready(self, engine: str) -> None:
        self._download_finished()
        self.device_label.setText(f"model: {engine}")
        self.search.setEnabled(True)
        self.search.setPlaceholderText(
            "Describe what you are looking for: beach + sunset - people")
        self.focus_search()

    def _model_failed(self, message: str) -> None:
        self._download_finished()
        self.device_label.setText("model: not loaded")
        self.search.setPlaceholderText("Text search is unavailable: the model is not loaded")
        self.show_banner(f"{message} Until then, browsing and “Find similar” on indexed photos"
                         " still work, and new photos are not indexed.")
        offer_model_folder(self)

    def show_banner(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.show()

    def _status(self, status: dict[str, Any]) -> None:
        self.status_info = status
        self.failed_count = int(status["failed"])
        self.problems_button.setText(_plural(self.failed_count, "problem"))
        self.problems_button.setVisible(self.failed_count > 0)
        if not status["roots"]:
            self.stack.setCurrentIndex(EMPTY)
        elif self.stack.currentIndex() == EMPTY:
            self.stack.setCurrentIndex(GRID if self.model.total() else MESSAGE)
        if self.folders is not None:
            self.folders.show_status(status, self.indexing)

    def _progress(self, progress: Progress | None) -> None:
        self.indexing = progress is not None
        if progress is None or progress.total == 0:
            self.progress_label.setText("")
            self.progress_bar.hide()
            return
        eta = f", {_duration(progress.eta_s)} left" if progress.eta_s else ""
        self.progress_label.setText(f"indexing {progress.done:,}/{progress.total:,}"
                                    f" ({progress.rate:.1f}/s{eta})")
        self.progress_bar.setRange(0, progress.total)
        self.progress_bar.setValue(progress.done)
        self.progress_bar.show()

    def _pause(self, paused: bool) -> None:
        self.engine.set_paused(paused)
        self.pause_button.setText("Resume indexing" if paused else "Pause indexing")

    # --- grid ---------------------------------------------------------------
    def _thumb_loaded(self, photo_id: int, image: QImage) -> None:
        self.cache.put(photo_id, image)
        row = self.model.row_of(photo_id)
        if row is not None:
            index = self.model.index(row)
            self.grid.update(index)

    def _set_tile(self, size: int) -> None:
        self.grid.set_tile(size)

    def _step_tile(self, step: int) -> None:
        self.size_slider.setValue(self.size_slider.value() + step)

    def selected_hits(self) -> list[Hit]:
        rows = sorted(i.row() for i in self.grid.selectionModel().selectedIndexes())
        return [self.model.hit(r) for r in rows]

    def copy_paths(self) -> None:
        hits = self.selected_hits()
        if hits:
            QGuiApplication.clipboard().setText("\n".join(h.info.path for h in hits))

    def context_actions(self, hit: Hit) -> list[QAction]:
        from photofind.gui.dialogs import show_in_folder

        actions = []
        for text, slot in (("Find similar", lambda: self.find_similar(hit)),
                           ("Preview", lambda: self.open_preview(self.model.row_of(hit.info.id)
                                                                 or 0)),
                           ("Show in folder", lambda: show_in_folder(hit.info.path)),
                           ("Copy path", self.copy_paths)):
            action = QAction(text, self)
            action.triggered.connect(slot)
            actions.append(action)
        return actions

    def _context_menu(self, pos: Any) -> None:
        index = self.grid.indexAt(pos)
        if not index.isValid():
            return
        menu = QMenu(self)
        menu.addActions(self.context_actions(index.data(HitRole)))
        menu.exec(self.grid.viewport().mapToGlobal(pos))

    # --- preview --------------------------------------------------------------
    def open_preview(self, row: int) -> None:
        if not 0 <= row < self.model.rowCount():
            return
        if self.preview is None:
            self.preview = PreviewDialog(self)
            self.preview.wants_image.connect(self.previews.request)
            self.preview.find_similar.connect(self.find_similar)
        self.preview.show()
        self.preview.show_hit(self.model.hit(row))

    def toggle_preview(self) -> None:
        if self.preview is not None and self.preview.isVisible():
            self.preview.hide()
        elif self.grid.currentIndex().isValid():
            self.open_preview(self.grid.currentIndex().row())

    def _preview_ready(self, path: str, image: QImage, error: str) -> None:
        if self.preview is not None:
            self.preview.image_ready(path, image, error)

    # --- folders and problems ---------------------------------------------------
    def open_folders(self) -> FoldersDialog:
        if self.folders is None:
            self.folders = FoldersDialog(self)
            self.folders.add_requested.connect(self.add_folder)
            self.folders.remove_requested.connect(self.engine.remove_folder)
        if self.status_info is not None:
            self.folders.show_status(self.status_info, self.indexing)
        self.queries.ask_status()
        self.folders.show()
        return self.folders

    def add_folder(self, path: str) -> None:
        self.engine.add_folder(path)

    def _add_folder_dialog(self) -> None:
        self.open_folders()._pick()

    def open_problems(self) -> ProblemsDialog:
        dialog = ProblemsDialog(self)
        self.queries.failures.connect(dialog.show_failures)
        dialog.finished.connect(lambda _: self.queries.failures.disconnect(dialog.show_failures))
        self.queries.ask_failures()
        dialog.show()
        return dialog

    # --- drag and drop, paste -----------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _image_source(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        if self._query_from(event.mimeData()):
            event.acceptProposedAction()

    def paste(self) -> None:
        if not self._query_from(QGuiApplication.clipboard().mimeData()):
            self.search.paste()

    def _query_from(self, mime: QMimeData) -> bool:
        source = _image_source(mime)
        if isinstance(source, str):
            self.search_for_image(source, os.path.basename(source), _chip_icon(source))
            return True
        if isinstance(source, QImage):
            self.search_for_image_data(source, "pasted picture")
            return True
        return False


def _chip_icon(path: str) -> QPixmap:
    """A small picture of a dropped file for the chip. Decoded at that size (a
    12-megapixel JPEG in full would hold up the GUI thread for a noticeable moment)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid():
        reader.setScaledSize(size.scaled(QSize(64, 64), Qt.AspectRatioMode.KeepAspectRatio))
    return QPixmap.fromImage(reader.read())


def _image_source(mime: QMimeData) -> str | QImage | None:
    """A local image file named by the data, else its image data, else None."""
    for url in mime.urls() if mime.hasUrls() else []:
        path = url.toLocalFile()
        if path and os.path.splitext(path)[1].lower() in PHOTO_EXTENSIONS \
                and os.path.isfile(path):
            return path
    if mime.hasImage():
        image = QImage(mime.imageData())
        if not image.isNull():
            return image
    return None


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

