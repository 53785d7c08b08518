"""The main window: it puts the parts together and runs the queries.

The parts each have one job: the search bar (``searchbar.py``), the status
bar (``statuspanel.py``), the sidebar of albums (``sidebar.py``), the grid
(``views.py``) and the viewer (``viewer.py``). The window owns the workers
(``workers.py``), turns the parts' signals into queries and the workers'
answers into what a person sees; every widget lives on the GUI thread.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QMimeData, QPoint, QSettings, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
    QPixmap,
)
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMenu,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from photofind.core.config import PHOTO_EXTENSIONS, Settings, parse_model_spec
from photofind.core.errors import PhotofindError
from photofind.core.filters import Filter
from photofind.gui import prefs
from photofind.gui.albums import ALL, Albums, describe_search
from photofind.gui.albumsource import Location
from photofind.gui.data import Hit, Query
from photofind.gui.dialogs import FoldersDialog, ProblemsDialog, SaveAlbumDialog, SettingsDialog
from photofind.gui.duplicates import DUPES, DuplicatesPage, section_entries
from photofind.gui.facets import Facets
from photofind.gui.filemanager import show_in_folder
from photofind.gui.firstrun import Downloads, offer_model_folder
from photofind.gui.models import HitRole, ResultsModel
from photofind.gui.searchbar import SearchBar
from photofind.gui.sidebar import Entry, Sidebar
from photofind.gui.statuspanel import StatusPanel
from photofind.gui.viewer import Viewer
from photofind.gui.views import EmptyPage, Grid, PixmapCache
from photofind.gui.workers import (
    DuplicateFinder,
    Engine,
    Locator,
    ModelDownloader,
    Previews,
    Queries,
    SharedIndex,
    SharedModel,
    ThumbLoader,
)

if TYPE_CHECKING:
    from photofind.core.duplicates import Found
    from photofind.core.indexer import Progress
    from photofind.core.model.download import ModelDownload
    from photofind.core.model.sources import Download
    from photofind.core.trash import Trashed

EMPTY, GRID, MESSAGE, DUPLICATES = range(4)
CHIP_PX = 64  # the chip's picture, decoded at this size


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings, store: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.store = store or QSettings()
        self.setWindowTitle("photofind")
        self.resize(1200, 800)
        self.setAcceptDrops(True)
        self.models = SharedModel(settings)
        self.shared_index = SharedIndex()
        self.engine = Engine(settings, self.models, self.shared_index,
                             prefs.watch_config(self.store))
        self.queries = Queries(settings, self.models, self.shared_index)
        self.downloader = ModelDownloader()
        self.loader = ThumbLoader(settings.library)
        self.previews = Previews()
        self.locator = Locator(settings, self.models)
        self.finder = DuplicateFinder(self.models, self.shared_index)
        self.model = ResultsModel(self)
        self.cache = PixmapCache(self.loader)
        self.query = Query()
        self.pasted: QImage | None = None  # a pasted or dropped picture (not a file)
        self.serial = 0
        self.shown_serial = 0
        self.status_info: dict[str, object] | None = None
        self.indexing = False
        self.folders: FoldersDialog | None = None
        self.viewer: Viewer | None = None
        self.reading_text = True  # the library's switch, as the engine last said
        self.where_serial = 0
        self.found: Found | None = None  # the duplicates, once looked for
        self.dupes_tier: str | None = None  # the tier the Duplicates page shows, while shown
        self._build()
        self._connect()

    # --- layout ---------------------------------------------------------
    def _build(self) -> None:
        self.bar = SearchBar(self, prefs.stored_int(self.store, prefs.CUTOFF, 0),
                             prefs.stored_int(self.store, prefs.TILE, 160))
        self.addToolBar(self.bar)
        self.search, self.chip = self.bar.edit, self.bar.chip
        self.size_slider, self.cutoff = self.bar.size_slider, self.bar.cutoff

        self.sidebar = Sidebar(self)
        self.albums = Albums(self.sidebar)
        self.sidebar.set_section(DUPES, "Duplicates", section_entries(None))
        self.facets = Facets(self.sidebar)
        content = QWidget(self)
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        self.banner = QLabel(self)
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setStyleSheet("QLabel { background: #fff3cd; color: #5c4400;"
                                  " padding: 8px; }")
        self.banner.hide()
        layout.addWidget(self.banner)
        self.stack = QStackedWidget(self)
        empty = EmptyPage(self)
        empty.add_clicked.connect(self._add_folder_dialog)
        self.stack.addWidget(empty)
        self.grid = Grid(self.model, self.cache, self)
        self.grid.set_tile(self.size_slider.value())
        self.stack.addWidget(self.grid)
        self.message = QLabel(self)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.stack.addWidget(self.message)
        self.dupes_page = DuplicatesPage(self.cache, self)
        self.stack.addWidget(self.dupes_page)
        layout.addWidget(self.stack, 1)
        self.splitter = QSplitter(self)
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(content)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([240, 960])
        self.splitter.setCollapsible(1, False)
        self.setCentralWidget(self.splitter)
        shown = prefs.stored_bool(self.store, prefs.SIDEBAR, True)
        self.sidebar.setVisible(shown)
        self.bar.sidebar_action.setChecked(shown)
        self.setTabOrder(self.search, self.grid)

        self.status = StatusPanel(self.statusBar())
        self.count_label = self.status.count_label
        self.progress_label, self.progress_bar = self.status.progress_label, \
            self.status.progress_bar
        self.refresh = QTimer(self)  # re-run the query when the library changed
        self.refresh.setSingleShot(True)
        self.refresh.setInterval(800)

    def _connect(self) -> None:
        bar = self.bar
        bar.query_edited.connect(self.run_query)
        bar.submitted.connect(self.run_query)
        bar.chip_removed.connect(self.clear_image_query)
        bar.filter_removed.connect(self.remove_filter)
        bar.view_changed.connect(self._apply_view)
        bar.tile_changed.connect(self.grid.set_tile)
        bar.edit.to_results.connect(self.focus_results)
        bar.similar_action.triggered.connect(self.find_similar_to_selection)
        bar.save_action.triggered.connect(self.save_as_album)
        bar.sidebar_action.toggled.connect(self.show_sidebar)
        bar.folders_action.triggered.connect(self.open_folders)
        bar.settings_action.triggered.connect(self.open_settings)
        self.refresh.timeout.connect(self.run_query)
        self.grid.activated_photo.connect(self.open_viewer)
        self.grid.customContextMenuRequested.connect(self._context_menu)
        self.sidebar.chosen.connect(self.open_entry)
        self.sidebar.rename_wanted.connect(
            lambda entry, name: self.queries.rename_album(int(entry.key), name))
        self.sidebar.remove_wanted.connect(
            lambda entry: self.queries.remove_album(int(entry.key)))
        self.status.pause_toggled.connect(self.engine.set_paused)
        self.status.problems_clicked.connect(self.open_problems)
        self.loader.loaded.connect(self._thumb_loaded)
        self.queries.results.connect(self._results)
        self.downloads = Downloads(self)
        self.queries.model_ready.connect(self._model_ready)
        self.queries.model_failed.connect(self._model_failed)
        self.queries.status.connect(self._status)
        self.queries.albums.connect(self.albums.fill)
        self.queries.facets.connect(self.facets.fill)
        self.queries.problem.connect(self.show_banner)
        self.engine.progress.connect(self._progress)
        self.engine.changed.connect(lambda _: self._library_changed())
        self.engine.roots_changed.connect(self._library_changed)
        self.engine.labelled.connect(self._library_changed)
        self.engine.problem.connect(self.show_banner)
        self.engine.model_switched.connect(self._model_switched)
        self.engine.reading_text.connect(lambda on: setattr(self, "reading_text", on))
        self.previews.ready.connect(self._picture_ready)
        self.locator.located.connect(self._located)
        self.finder.found.connect(self._duplicates_found)
        self.dupes_page.trash_wanted.connect(self.engine.trash)
        self.engine.trashed.connect(self._trashed)
        for keys, slot in (("Ctrl+F", self.focus_search), ("Ctrl+L", self.focus_search),
                           ("Ctrl++", lambda: self._step_tile(16)),
                           ("Ctrl+=", lambda: self._step_tile(16)),
                           ("Ctrl+-", lambda: self._step_tile(-16)),
                           ("Ctrl+C", self.copy_paths), ("Ctrl+V", self.paste),
                           ("Space", self.toggle_viewer), ("F6", self.focus_sidebar)):
            action = QAction(self)
            action.setShortcut(QKeySequence(keys))
            action.triggered.connect(slot)
            self.addAction(action)

    # --- lifecycle --------------------------------------------------------
    def start(self) -> None:
        """After the window is shown: workers start, the model loads behind it."""
        self.engine.start()
        self.queries.start()
        self.queries.ask_status()
        self.queries.ask_albums()
        self.queries.ask_facets()
        self.run_query()
        self.focus_search()
        pending = str(self.store.value(prefs.PENDING_MODEL, "") or "")
        if pending and pending != self.settings.model:  # a switch the last run left unfinished
            self.switch_model(pending)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop every worker: the batch in flight is committed, nothing is lost."""
        self.bar.debounce.stop()
        self.refresh.stop()
        self.store.setValue(prefs.TILE, self.size_slider.value())
        self.store.setValue(prefs.CUTOFF, self.cutoff.value())
        prefs.store_bool(self.store, prefs.SIDEBAR, self.bar.sidebar_action.isChecked())
        self.downloader.cancel()  # what arrived is kept: the next start goes on
        self.engine.stop()
        self.locator.stop()
        self.finder.stop()
        self.queries.stop()
        self.loader.stop()
        self.previews.stop()
        if self.viewer is not None:
            self.viewer.close()

    # --- focus ----------------------------------------------------------------
    def focus_search(self) -> None:
        self.bar.focus()

    def focus_results(self) -> None:
        """From the search box (Down, Tab): the first result, ready for Enter."""
        if self.stack.currentIndex() != GRID or not self.model.rowCount():
            (self.sidebar if self.sidebar.isVisible() else self.bar.order).setFocus()
            return  # no results: Tab goes on, not round in circles
        self.grid.setFocus()
        if not self.grid.currentIndex().isValid():
            self.grid.setCurrentIndex(self.model.index(0))

    def focus_sidebar(self) -> None:
        self.show_sidebar(True)
        self.sidebar.setFocus()

    def show_sidebar(self, shown: bool) -> None:
        self.bar.sidebar_action.setChecked(shown)
        self.sidebar.setVisible(shown)

    # --- queries ------------------------------------------------------------
    def run_query(self) -> None:
        self.bar.debounce.stop()
        text = self.search.text()
        if text.strip() or self.query.image_path or self.pasted is not None:
            self.query = Query(text, self.query.image_path, self.query.label,
                               flt=self.query.flt)
        else:
            self.query = dataclasses.replace(self.query, text="", image_path=None, label="")
        if self.query.text.strip() and not self.queries.model_loaded:
            return  # the box is disabled until the model is there
        self._ask()

    def _ask(self) -> None:
        self.dupes_tier = None  # a query shows the grid again
        self.serial += 1  # a pasted picture goes along, combined with the words typed
        self.queries.ask(self.serial, self.query, self.pasted)
        self.bar.save_action.setEnabled(bool(self.query.text.strip() or self.query.image_path))
        if not self.query.ranks() and not self.query.flt:
            self.sidebar.select(ALL, "")
        elif not self.query.album:
            self.sidebar.clearSelection()

    def search_for_image(self, path: str, label: str, icon: QPixmap | None = None) -> None:
        """A similar query: the image shows as a chip; the text stays and combines."""
        self.query = Query(self.search.text(), path, label, flt=self.query.flt)
        self.pasted = None
        self.bar.show_chip(label, icon)
        if icon is None:  # a file from outside: its picture is decoded in a worker process
            self.previews.request(path, CHIP_PX)
        self._ask()

    def search_for_image_data(self, image: QImage, label: str) -> None:
        self.bar.show_chip(label, QPixmap.fromImage(image))
        self.query = Query(self.search.text(), None, label, flt=self.query.flt)
        self.pasted = image
        self._ask()

    def clear_image_query(self) -> None:
        self.query = Query(self.search.text(), flt=self.query.flt)
        self.pasted = None
        self.bar.hide_chip()
        self.run_query()

    def open_entry(self, entry: Entry) -> None:
        """A sidebar entry: the whole library (no filters), a smart album or a
        saved search (under the filters), a folder or a period (narrowing the
        query), or a tier of duplicates."""
        if entry.section == DUPES:
            self.open_duplicates(entry.key)
            return
        narrowed = self.facets.narrowed(self.query.flt, entry)
        if narrowed is not None:
            self.set_filter(narrowed)
            self.sidebar.select(entry.section, entry.key)  # the last one chosen
            return
        found = self.albums.query_of(entry)
        if found is None:
            return
        query, cutoff = found
        self.query = dataclasses.replace(query, flt=Filter() if entry.section == ALL
                                         else self.query.flt)
        self.bar.show_filters(self.query.flt.parts())
        self.pasted = None
        self.bar.hide_chip()
        self.search.setText(self.query.text)
        if self.query.image_path:
            self.bar.show_chip(self.query.label, None)
            self.previews.request(self.query.image_path, CHIP_PX)
        if cutoff is not None:
            self.cutoff.setValue(cutoff)
        self._ask()
        self.sidebar.select(entry.section, entry.key)

    # --- duplicates ----------------------------------------------------------
    def open_duplicates(self, tier: str) -> None:
        """Show one tier's groups (looked for on the finder's thread when not known)."""
        self.dupes_tier = tier
        self.stack.setCurrentIndex(DUPLICATES)
        self.sidebar.select(DUPES, tier)
        if self.found is None:
            self.dupes_page.summary.setText("Looking for duplicates…")
            self.finder.request()
        else:
            self.dupes_page.show_groups(tier, self.found.tier(tier))

    def _duplicates_found(self, found: Found) -> None:
        self.found = found
        if found.content_hashes or found.perceptual:
            self.engine.keep_hashes(found)  # the writer keeps them for next time
        counts = {tier: len(found.tier(tier)) for tier in ("exact", "near", "similar")}
        self.sidebar.set_section(DUPES, "Duplicates", section_entries(counts))
        if self.dupes_tier is not None:
            self.dupes_page.show_groups(self.dupes_tier, found.tier(self.dupes_tier))

    def _trashed(self, trashed: Trashed) -> None:
        moved = len(trashed.moved)
        self.statusBar().showMessage(f"Moved {moved} photo{'' if moved == 1 else 's'} to the"
                                     " trash.", 10_000)
        if trashed.kept:
            path, why = trashed.kept[0]
            more = f" (and {len(trashed.kept) - 1} more)" if len(trashed.kept) > 1 else ""
            self.show_banner(f"{os.path.basename(path)} stayed where it is: {why}{more}.")
        # The catalog forgot them; roots_changed follows and fills the page anew.

    def set_filter(self, flt: Filter) -> None:
        """Narrow the grid and the query (words, picture, album) to ``flt``."""
        self.query = dataclasses.replace(self.query, flt=flt)
        self.bar.show_filters(flt.parts())
        self._ask()
        self.sidebar.clearSelection()

    def remove_filter(self, key: str) -> None:
        """A chip's × (or Escape in the box): that part of the filter goes."""
        self.set_filter(self.query.flt.without(key))

    def save_as_album(self) -> SaveAlbumDialog | None:
        """Keep the current search (words, image, cut-off) as an album."""
        if self.pasted is not None:
            self.show_banner("A pasted picture is not kept anywhere, so it cannot be saved"
                             " as an album; save the picture as a file and drop that instead.")
            return None
        query, cutoff = self.query, self.cutoff.value()
        if not (query.text.strip() or query.image_path):
            return None
        dialog = SaveAlbumDialog(describe_search(query.text, query.image_path, cutoff), self)
        dialog.save_wanted.connect(lambda name: self.queries.save_album(name, query, cutoff))
        dialog.open()
        return dialog

    def find_similar_to_selection(self) -> None:
        index = self.grid.currentIndex()
        if index.isValid():
            self.find_similar(index.data(HitRole))

    def find_similar(self, hit: Hit) -> None:
        self.search_for_image(hit.info.path, os.path.basename(hit.info.path),
                              self.cache.get(hit.info.id))

    def _results(self, serial: int, hits: Sequence[Hit], error: str) -> None:
        if serial != self.serial:
            return  # an answer to a query the user has already changed
        self.shown_serial = serial
        self.cache.forget_requests()
        current = self._current_photo()
        self.model.set_hits(hits)
        self._apply_view(keep=True)
        if current is not None:  # a refresh keeps the photo the user is on (and the viewer's place)
            row = self.model.row_of(current)
            if row is not None:
                self.grid.setCurrentIndex(self.model.index(row))
        if self.dupes_tier is not None:
            return  # the Duplicates page stays; the grid is ready behind it
        if error:
            self._show_message(error)
        elif not self.model.total():
            self._show_message("No photos yet: indexing will fill this in." if
                               not self.query.ranks() else "Nothing matches.")
        else:
            self.stack.setCurrentIndex(GRID)

    def _current_photo(self) -> int | None:
        index = self.grid.currentIndex()
        if not index.isValid() or index.row() >= self.model.rowCount():
            return None
        return self.model.hit(index.row()).info.id

    def _apply_view(self, keep: bool = False) -> None:
        cutoff = 0.0 if self.query.album else self.bar.cutoff_band()
        by_date = self.bar.by_date()
        if not keep or (cutoff, by_date) != (self.model.cutoff, self.model.by_date):
            self.model.set_view(cutoff, by_date)
        if self.shown_serial == self.serial and self.model.total() \
                and self.stack.currentIndex() == MESSAGE and self.dupes_tier is None:
            self.stack.setCurrentIndex(GRID)
        if self.query.album:
            self.count_label.setText(f"{self.model.total():,} photos labelled"
                                     f" “{self.query.album}”, most likely first")
        else:
            self.status.show_count(self.model.total(), self.model.total_before_cutoff(),
                                   self.query.ranks())

    def _show_message(self, text: str) -> None:
        if self.status_info is not None and not self.status_info["roots"]:
            self.stack.setCurrentIndex(EMPTY)
            return
        self.message.setText(text)
        self.stack.setCurrentIndex(MESSAGE)

    def _library_changed(self) -> None:
        self.found = None  # looked for again when the Duplicates page is shown
        if self.dupes_tier is not None:
            self.finder.request()
        self.queries.ask_status()
        self.queries.ask_albums()
        self.queries.ask_facets()
        self.refresh.start()

    # --- model, status, progress -----------------------------------------
    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.store, self.engine.switching_to or self.settings.model,
                                self, self.reading_text)
        dialog.model_changed.connect(self.switch_model)
        dialog.reading_changed.connect(self.engine.set_reading)
        dialog.open()
        return dialog

    def switch_model(self, spec: str) -> None:
        """Re-embed for ``spec`` in the background; the current model answers until then."""
        try:
            parse_model_spec(spec)
        except PhotofindError as exc:
            self.show_banner(str(exc))
            return
        self.store.setValue(prefs.PENDING_MODEL, spec)
        self.engine.switch_model(spec)
        self.statusBar().showMessage(f"Re-reading your photos for {spec}; searches use"
                                     f" {self.settings.model} until that is done.", 10_000)

    def _model_switched(self, model: str) -> None:
        self.settings = dataclasses.replace(self.settings, model=model)
        self.store.setValue(prefs.MODEL, model)
        self.store.remove(prefs.PENDING_MODEL)
        self.statusBar().showMessage(f"Now searching with {model}.", 10_000)
        self._library_changed()

    @property
    def download(self) -> Download | ModelDownload | None:
        return self.status.download

    def _model_ready(self, engine: str) -> None:
        self.status.show_model(engine)
        self.bar.model_ready()
        self.focus_search()

    def _model_failed(self, message: str) -> None:
        self.status.show_model(None)
        self.bar.model_missing()
        self.show_banner(f"{message} Until then, browsing and “Find similar” on indexed photos"
                         " still work, and new photos are not indexed.")
        offer_model_folder(self)

    def show_banner(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.show()

    def _status(self, status: dict[str, object]) -> None:
        self.status_info = status
        failed = status["failed"]
        self.status.show_failed(failed if isinstance(failed, int) else 0)
        if not status["roots"]:
            self.stack.setCurrentIndex(EMPTY)
        elif self.stack.currentIndex() == EMPTY:
            self.stack.setCurrentIndex(GRID if self.model.total() else MESSAGE)
        if self.folders is not None:
            self.folders.show_status(status, self.indexing)

    def _progress(self, progress: Progress | None) -> None:
        self.indexing = progress is not None
        self.status.show_progress(progress)

    # --- grid ---------------------------------------------------------------
    def _thumb_loaded(self, photo_id: int, image: QImage) -> None:
        self.cache.put(photo_id, image)
        if self.dupes_tier is not None:
            self.dupes_page.thumb_loaded(photo_id)
        row = self.model.row_of(photo_id)
        if row is not None:
            self.grid.update(self.model.index(row))

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
        actions = []
        for text, slot in (("Find similar", lambda: self.find_similar(hit)),
                           ("Preview", lambda: self.open_viewer(self.model.row_of(hit.info.id)
                                                                or 0)),
                           ("Show in folder", lambda: show_in_folder(hit.info.path)),
                           ("Copy path", self.copy_paths)):
            action = QAction(text, self)
            action.triggered.connect(slot)
            actions.append(action)
        return actions

    def _context_menu(self, pos: QPoint) -> None:
        index = self.grid.indexAt(pos)
        if not index.isValid():
            return
        menu = QMenu(self)
        menu.addActions(self.context_actions(index.data(HitRole)))
        menu.exec(self.grid.viewport().mapToGlobal(pos))

    # --- viewer --------------------------------------------------------------
    def open_viewer(self, row: int) -> None:
        if not 0 <= row < self.model.rowCount():
            return
        if self.viewer is None:
            self.viewer = Viewer(self)
            self.viewer.wants_image.connect(self.previews.request)
            self.viewer.find_similar.connect(self.find_similar)
            self.viewer.step.connect(self._viewer_step)
            self.viewer.where_wanted.connect(self._where)
            self.viewer.where_dropped.connect(self.locator.cancel)
            self.viewer.text_wanted.connect(self.queries.ask_text)
            self.queries.text_read.connect(self.viewer.text_ready)
        self.grid.setCurrentIndex(self.model.index(row))
        self.viewer.show()
        self.viewer.show_hit(self.model.hit(row), self.query.words())

    def _viewer_step(self, step: int) -> None:
        row = self.grid.currentIndex().row() + step
        if 0 <= row < self.model.total():
            while row >= self.model.rowCount() and self.model.canFetchMore(self.grid.rootIndex()):
                self.model.fetchMore(self.grid.rootIndex())
            self.open_viewer(row)

    def toggle_viewer(self) -> None:
        if self.viewer is not None and self.viewer.isVisible():
            self.viewer.hide()
        elif self.grid.currentIndex().isValid():
            self.open_viewer(self.grid.currentIndex().row())

    def _where(self, path: str, words: str) -> None:
        self.where_serial = self.locator.request(path, words)

    def _located(self, serial: int, location: Location | None, error: str) -> None:
        if serial == self.where_serial and self.viewer is not None:
            self.viewer.location_ready(location, error)

    def _picture_ready(self, path: str, size: int, image: QImage, error: str) -> None:
        if size == CHIP_PX:
            if path == self.query.image_path and not image.isNull():
                self.bar.set_chip_icon(QPixmap.fromImage(image))
        elif self.viewer is not None:
            self.viewer.image_ready(path, image, error)

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
            self.search_for_image(source, os.path.basename(source))
            return True
        if isinstance(source, QImage):
            self.search_for_image_data(source, "pasted picture")
            return True
        return False


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
