"""The thumbnail grid (and the page shown instead while there is no folder):
a QListView in icon mode, a delegate that paints a
placeholder at once and the thumbnail when it arrives, and a RAM cache of
pixmaps in front of the background loader (calibre's cover grid, in small).
The cache keeps each thumbnail scaled to the current tile size, so painting
never smooths a picture; the grid spreads its columns over the whole width.
"""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QPainter, QPalette, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListView,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from photofind.gui.data import Hit
from photofind.gui.models import HitRole, IdRole, ResultsModel
from photofind.gui.workers import ThumbLoader

CACHE_ENTRIES = 1500  # 256-px thumbnails: about 200 KB each


class PixmapCache:
    """Photo id -> QPixmap, least recently used out; asks the loader for misses.

    ``scaled`` hands out the thumbnail fitted to a box, made once per size.
    """

    def __init__(self, loader: ThumbLoader) -> None:
        self.loader = loader
        self._pixmaps: OrderedDict[int, QPixmap | None] = OrderedDict()
        self._asked: set[int] = set()
        self._scaled: dict[int, QPixmap] = {}
        self._scaled_size = QSize()
        self.scalings = 0  # how many times a thumbnail was smoothed (tests count them)

    def get(self, photo_id: int) -> QPixmap | None:
        if photo_id in self._pixmaps:
            self._pixmaps.move_to_end(photo_id)
            return self._pixmaps[photo_id]
        if photo_id not in self._asked:
            self._asked.add(photo_id)
            self.loader.request(photo_id)
        return None

    def scaled(self, photo_id: int, size: QSize) -> QPixmap | None:
        """The thumbnail fitted into ``size`` device pixels, or None until it loaded."""
        if size != self._scaled_size:
            self._scaled.clear()
            self._scaled_size = size
        found = self._scaled.get(photo_id)
        if found is not None:
            return found
        pixmap = self.get(photo_id)
        if pixmap is None:
            return None
        found = pixmap.scaled(size, Qt.AspectRatioMode.KeepAspectRatio,
                              Qt.TransformationMode.SmoothTransformation)
        self.scalings += 1
        self._scaled[photo_id] = found
        return found

    def put(self, photo_id: int, image: QImage) -> None:
        """GUI thread only: a loaded QImage becomes a pixmap (None: no thumbnail)."""
        self._asked.discard(photo_id)
        self._scaled.pop(photo_id, None)
        self._pixmaps[photo_id] = None if image.isNull() else QPixmap.fromImage(image)
        while len(self._pixmaps) > CACHE_ENTRIES:
            dropped, _ = self._pixmaps.popitem(last=False)
            self._scaled.pop(dropped, None)

    def forget_requests(self) -> None:
        self._asked.clear()
        self.loader.drop_pending()


class TileDelegate(QStyledItemDelegate):
    def __init__(self, cache: PixmapCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self.tile = 160

    def sizeHint(self, option: QStyleOptionViewItem,
                 index: QModelIndex | QPersistentModelIndex) -> QSize:
        return self.cell_size(option.fontMetrics.height())

    def cell_size(self, line_height: int) -> QSize:
        return QSize(self.tile + 12, self.tile + 12 + line_height + 4)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        painter.save()
        palette = option.palette
        cell = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(cell, palette.color(QPalette.ColorRole.Highlight))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(cell, palette.color(QPalette.ColorRole.AlternateBase))
        box = QRect(cell.x() + (cell.width() - self.tile) // 2, cell.y() + 6, self.tile,
                    self.tile)
        ratio = painter.device().devicePixelRatioF() if painter.device() else 1.0
        pixmap = self.cache.scaled(int(index.data(IdRole)),
                                   QSize(int(self.tile * ratio), int(self.tile * ratio)))
        if pixmap is None:
            placeholder = palette.color(QPalette.ColorRole.Mid)
            placeholder.setAlpha(70)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(placeholder)
            painter.drawRoundedRect(box.adjusted(8, 8, -8, -8), 6, 6)
        else:
            pixmap.setDevicePixelRatio(ratio)  # sharp on high-DPI screens
            w, h = int(pixmap.width() / ratio), int(pixmap.height() / ratio)
            painter.drawPixmap(box.x() + (box.width() - w) // 2,
                               box.y() + (box.height() - h) // 2, pixmap)
        hit = index.data(HitRole)
        if isinstance(hit, Hit) and hit.copies:
            self._badge(painter, box, f"× {len(hit.copies) + 1}")
        text_rect = QRect(cell.x() + 4, box.bottom() + 4, cell.width() - 8,
                          option.fontMetrics.height())
        painter.setPen(palette.color(QPalette.ColorRole.HighlightedText if selected
                                     else QPalette.ColorRole.Text))
        name = option.fontMetrics.elidedText(str(index.data()), Qt.TextElideMode.ElideMiddle,
                                             text_rect.width())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter, name)
        painter.restore()


    @staticmethod
    def _badge(painter: QPainter, box: QRect, text: str) -> None:
        """A dark rounded label in the tile's top-right corner (exact copies: "× 3")."""
        metrics = painter.fontMetrics()
        w, h = metrics.horizontalAdvance(text) + 12, metrics.height() + 4
        badge = QRect(box.right() - w - 4, box.top() + 4, w, h)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 180))
        painter.drawRoundedRect(badge, h / 2, h / 2)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)


class Grid(QListView):
    """Uniform tiles, laid out in batches so 10,000 results scroll smoothly."""

    activated_photo = Signal(int)  # row: Enter or double-click

    def __init__(self, model: ResultsModel, cache: PixmapCache,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.delegate = TileDelegate(cache, self)
        self.setItemDelegate(self.delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(400)
        self.setSpacing(2)
        self.setMouseTracking(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.doubleClicked.connect(lambda index: self.activated_photo.emit(index.row()))
        self.setStyleSheet("QListView { border: none; }")

    def set_tile(self, size: int) -> None:
        self.delegate.tile = size
        self._spread()

    def _spread(self) -> None:
        """Share the width among the columns, so no empty strip is left on the right."""
        cell = self.delegate.cell_size(self.fontMetrics().height())
        width = self.viewport().width() - 2 * self.spacing() - 1
        columns = max(1, width // (cell.width() + self.spacing()))
        spread = QSize(max(cell.width(), width // columns - self.spacing()), cell.height())
        if spread != self.gridSize():
            self.setGridSize(spread)
        self.scheduleDelayedItemsLayout()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._spread()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.activated_photo.emit(self.currentIndex().row())
            return
        super().keyPressEvent(event)


class EmptyPage(QWidget):
    """What a new library shows: what photofind does, and a button to begin."""

    add_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addStretch()
        title = QLabel("<h2>Find your photos by what is in them</h2>", self)
        text = QLabel("Add a folder of photos to begin. photofind reads them on this computer"
                      " (nothing is uploaded), then you can type what you are looking for,"
                      " such as <i>grandma's birthday cake</i>, or drop a picture here to find"
                      " others like it.", self)
        text.setWordWrap(True)
        text.setFixedWidth(560)
        text.setMinimumHeight(text.heightForWidth(560))  # centred labels get one line's height
        button = QPushButton("Add a folder…", self)
        button.clicked.connect(self.add_clicked)
        for widget in (title, text, button):
            layout.addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter)
            if isinstance(widget, QLabel):
                widget.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addStretch()
