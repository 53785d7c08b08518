"""The search bar: the box (CLI syntax), the image chip and the filter chips
beside it, and the controls that shape the answer (order, cut-off, tile
size, Save as album). A filter chip goes when clicked; Escape in the box
removes the last one.

It says what the user asked for through signals and shows what it is told;
it runs no query itself.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QKeyEvent, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSlider,
    QToolBar,
    QToolButton,
    QWidget,
)

DEBOUNCE_MS = 250
CUTOFF_MAX = 30  # slider: 0 automatic, then hundredths below the best match, 30 everything


class SearchEdit(QLineEdit):
    """The search box; Down (or Tab) moves to the results."""

    to_results = Signal()
    escape = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Down and not event.modifiers():
            self.to_results.emit()
            return
        if event.key() == Qt.Key.Key_Escape and not event.modifiers():
            self.escape.emit()
            return
        super().keyPressEvent(event)

    def focusNextPrevChild(self, forward: bool) -> bool:
        if forward:  # Tab: to the results, not along the toolbar
            self.to_results.emit()
            return True
        return super().focusNextPrevChild(forward)


class FilterChips(QWidget):
    """The active filters, one button each ("in Holidays ✕"); a click removes one."""

    removed = Signal(str)  # the filter part's key (core.filters.Filter.parts)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(2, 0, 2, 0)
        self._layout.setSpacing(4)
        self.chips: list[tuple[str, QToolButton]] = []

    def show_parts(self, parts: list[tuple[str, str]]) -> None:
        for _, chip in self.chips:
            self._layout.removeWidget(chip)
            chip.deleteLater()
        self.chips = []
        for key, text in parts:
            chip = QToolButton(self)
            chip.setText(f"{text}  ✕")
            chip.setToolTip("Only photos that match this; click (or Escape in the search"
                            " box) to remove it")
            chip.setAccessibleName(f"Filter {text}, remove")
            chip.clicked.connect(lambda _=False, k=key: self.removed.emit(k))
            self._layout.addWidget(chip)
            self.chips.append((key, chip))
        self.setVisible(bool(parts))

    def remove_last(self) -> bool:
        if not self.chips:
            return False
        self.removed.emit(self.chips[-1][0])
        return True


class SearchBar(QToolBar):
    """The toolbar at the top of the window."""

    query_edited = Signal()  # the words changed and the user paused typing
    submitted = Signal()  # Enter in the box
    chip_removed = Signal()
    view_changed = Signal()  # order or cut-off
    tile_changed = Signal(int)

    def __init__(self, parent: QWidget, cutoff: int, tile: int) -> None:
        super().__init__("Search", parent)
        self.setMovable(False)
        self.sidebar_action = QAction("☰", self)
        self.sidebar_action.setCheckable(True)
        self.sidebar_action.setShortcut(QKeySequence("Ctrl+B"))
        self.sidebar_action.setToolTip("Show or hide the albums (Ctrl+B)")
        self.addAction(self.sidebar_action)
        self.chip = QToolButton(self)
        self.chip.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.chip.setIconSize(QSize(28, 28))
        self.chip.setToolTip("Searching for photos like this one; click to remove it")
        self.chip.hide()
        self.chip_action = self.addWidget(self.chip)
        self.chip_action.setVisible(False)
        self.edit = SearchEdit(self)
        self.edit.setClearButtonEnabled(True)
        self.edit.setPlaceholderText("Loading the model…")
        self.edit.setMinimumWidth(360)
        self.edit.setEnabled(False)
        self.addWidget(self.edit)
        self.filters = FilterChips(self)
        self.filters_action = self.addWidget(self.filters)
        self.filters_action.setVisible(False)
        self.filter_removed = self.filters.removed
        self.similar_action = QAction("Find similar", self)
        self.similar_action.setShortcut(QKeySequence("Ctrl+Shift+F"))
        self.similar_action.setToolTip("Find photos like the selected one (Ctrl+Shift+F)")
        self.addAction(self.similar_action)
        self.save_action = QAction("Save as album…", self)
        self.save_action.setShortcut(QKeySequence("Ctrl+S"))
        self.save_action.setToolTip("Keep this search as an album that follows new photos"
                                    " (Ctrl+S)")
        self.save_action.setEnabled(False)
        self.addAction(self.save_action)
        self.addSeparator()
        self.order = QComboBox(self)
        self.order.addItems(["Best match", "Newest first"])
        self.order.setToolTip("Order the matching photos by relevance or by date")
        self.addWidget(self.order)
        self.cutoff_label = QLabel(self)
        self.cutoff = self._slider("", (0, CUTOFF_MAX), cutoff,
                                   "Relevance cut-off: left keeps the clear matches (auto),"
                                   " right keeps more of the weaker ones", self.cutoff_label)
        self.size_slider = self._slider(" Size ", (96, 256), tile,
                                        "Thumbnail size (Ctrl+plus, Ctrl+minus)")
        self.addSeparator()
        self.folders_action = self.addAction("Folders…")
        self.settings_action = self.addAction("Settings…")
        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(DEBOUNCE_MS)
        self._show_cutoff(cutoff)
        self.edit.textEdited.connect(lambda _: self.debounce.start())
        self.edit.returnPressed.connect(self._submit)
        self.edit.escape.connect(self.filters.remove_last)
        self.debounce.timeout.connect(self.query_edited)
        self.chip.clicked.connect(self.chip_removed)
        self.order.currentIndexChanged.connect(lambda _: self.view_changed.emit())
        self.cutoff.valueChanged.connect(self._cutoff_moved)
        self.size_slider.valueChanged.connect(self.tile_changed)

    def _slider(self, label: str, span: tuple[int, int], value: int, tip: str,
                title: QLabel | None = None) -> QSlider:
        slider = QSlider(Qt.Orientation.Horizontal, self)
        slider.setRange(*span)
        slider.setValue(value)
        slider.setMaximumWidth(110)
        slider.setToolTip(tip)
        self.addWidget(title if title is not None else QLabel(label, self))
        self.addWidget(slider)
        return slider

    def _submit(self) -> None:
        self.debounce.stop()
        self.submitted.emit()

    def _cutoff_moved(self, value: int) -> None:
        self._show_cutoff(value)
        self.view_changed.emit()

    def _show_cutoff(self, value: int) -> None:
        self.cutoff_label.setText(f" Cut-off: {cutoff_text(value)} ")

    def cutoff_band(self) -> float | None:
        """How far below the best score a match may be; None: chosen from the
        scores; 0: every photo ranked."""
        value = self.cutoff.value()
        return None if value == 0 else 0.0 if value == CUTOFF_MAX else value / 100.0

    def by_date(self) -> bool:
        return self.order.currentIndex() == 1

    def focus(self) -> None:
        self.edit.setFocus()
        self.edit.selectAll()

    def show_chip(self, label: str, icon: QPixmap | None) -> None:
        self.chip.setText(f"like {label}  ✕")
        self.chip.setIcon(QIcon(icon) if icon is not None else QIcon())
        self.chip.show()
        self.chip_action.setVisible(True)

    def set_chip_icon(self, icon: QPixmap) -> None:
        if self.chip.isVisible():
            self.chip.setIcon(QIcon(icon))

    def show_filters(self, parts: list[tuple[str, str]]) -> None:
        """The filter chips for ``parts`` (key, words), none when empty."""
        self.filters.show_parts(parts)
        self.filters_action.setVisible(bool(parts))

    def hide_chip(self) -> None:
        self.chip.hide()
        self.chip_action.setVisible(False)

    def model_ready(self) -> None:
        self.edit.setEnabled(True)
        self.edit.setPlaceholderText("Describe what you are looking for: beach + sunset - people")

    def model_missing(self) -> None:
        self.edit.setPlaceholderText("Text search is unavailable: the model is not loaded")


def cutoff_text(value: int) -> str:
    """The cut-off slider's position in words."""
    return "auto" if value == 0 else "all" if value == CUTOFF_MAX else f"−{value / 100:.2f}"
