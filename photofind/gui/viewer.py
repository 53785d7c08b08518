"""The viewer: one photo of the results, as large as the window allows.

The photo fits the space it has (a small photo is enlarged too), the wheel
and +/- zoom, Left/Right step through the results, Escape (or Space)
closes. "Where?" (shown when the query has words) asks for a heatmap of the
words over the photo, computed on a worker; a spinner shows meanwhile, and
the map and its box are drawn over the photo. A photo whose read text holds
the query's words has them marked (from the boxes stored when its text was
read), and "Copy text" copies what was read in it. The dialog only shows
what it is handed; the window asks the workers.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QImage,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QShortcut,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from photofind.core.ocr import Box
from photofind.gui.albumsource import Location
from photofind.gui.data import Hit
from photofind.gui.filemanager import open_file, show_in_folder
from photofind.gui.models import describe

PREVIEW_PX = 2048  # the size previews are decoded at (device pixels, long side)
ZOOM_STEP = 1.25


class PhotoView(QWidget):
    """Paints a picture fitted to the widget, zoomed, with an optional heatmap."""

    zoomed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self.pixmap = QPixmap()
        self.message = "Loading…"
        self.zoom = 1.0
        self.location: Location | None = None
        self.heat = QImage()
        self.marks: list[Box] = []  # words to mark, in fractions of the photo

    def sizeHint(self) -> QSize:
        return QSize(900, 620)

    def show_pixmap(self, pixmap: QPixmap) -> None:
        self.pixmap, self.message = pixmap, ""
        self.update()

    def show_message(self, text: str) -> None:
        self.pixmap, self.message, self.location = QPixmap(), text, None
        self.update()

    def set_location(self, location: Location | None) -> None:
        self.location = location
        self.heat = _heat_image(location) if location is not None else QImage()
        self.update()

    def set_marks(self, marks: list[Box]) -> None:
        self.marks = marks
        self.update()

    def set_zoom(self, zoom: float) -> None:
        self.zoom = min(8.0, max(1.0, zoom))
        self.zoomed.emit(self.zoom)
        self.update()

    def photo_rect(self) -> QRectF:
        """Where the photo is drawn: fitted to the widget, then zoomed about its centre."""
        if self.pixmap.isNull():
            return QRectF()
        ratio = self.pixmap.devicePixelRatio()
        pw, ph = self.pixmap.width() / ratio, self.pixmap.height() / ratio
        fit = min(self.width() / pw, self.height() / ph) * self.zoom
        w, h = pw * fit, ph * fit
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        if self.pixmap.isNull():
            painter.setPen(self.palette().color(self.foregroundRole()))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter
                             | Qt.TextFlag.TextWordWrap, self.message)
            return
        rect = self.photo_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawPixmap(rect, self.pixmap, QRectF(self.pixmap.rect()))
        self._paint_marks(painter, rect)
        location = self.location
        if location is not None and not self.heat.isNull():
            painter.drawImage(rect, self.heat)
            sx, sy = rect.width() / location.width, rect.height() / location.height
            x0, y0, x1, y1 = location.box
            box = QRectF(QPointF(rect.x() + x0 * sx, rect.y() + y0 * sy),
                         QPointF(rect.x() + x1 * sx, rect.y() + y1 * sy)).adjusted(2, 2, -2, -2)
            for colour, width in ((QColor(0, 0, 0), 5), (QColor(255, 230, 0), 2)):
                painter.setPen(QPen(colour, width))
                painter.drawRect(box)

    def mark_rects(self) -> list[QRectF]:
        """Where the marked words are drawn, in widget coordinates."""
        rect = self.photo_rect()
        return [QRectF(rect.x() + x0 * rect.width(), rect.y() + y0 * rect.height(),
                       (x1 - x0) * rect.width(), (y1 - y0) * rect.height()).adjusted(-3, -3, 3, 3)
                for x0, y0, x1, y1 in self.marks] if not rect.isNull() else []

    def _paint_marks(self, painter: QPainter, rect: QRectF) -> None:
        for box in self.mark_rects():
            painter.fillRect(box, QColor(255, 225, 0, 90))
            painter.setPen(QPen(QColor(255, 170, 0), 2))
            painter.drawRect(box)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.set_zoom(self.zoom * ZOOM_STEP ** steps)
            event.accept()


def _heat_image(location: Location) -> QImage:
    """The grid as a small translucent shade: dark where the words are not, clear
    where they are (a spotlight reads on a photo of any colour)."""
    grid = location.grid
    rows, cols = grid.shape
    image = QImage(cols, rows, QImage.Format.Format_ARGB32)
    for r in range(rows):
        for c in range(cols):
            v = min(1.0, max(0.0, float(grid[r, c])))
            image.setPixelColor(c, r, QColor(0, 0, 30, int(200 * (1 - v))))
    return image


class Viewer(QDialog):
    """One photo of the results and its actions."""

    find_similar = Signal(object)  # Hit
    wants_image = Signal(str, int)  # path, size in device pixels
    step = Signal(int)  # -1: the previous result, +1: the next
    where_wanted = Signal(str, str)  # path, words
    where_dropped = Signal()  # the user moved on or turned "Where?" off
    text_wanted = Signal(str, str)  # path, the query (for the text read in the photo)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preview — photofind")
        screen = QGuiApplication.primaryScreen().availableGeometry().size()
        self.resize(min(1100, int(screen.width() * 0.8)), min(820, int(screen.height() * 0.85)))
        self.hit: Hit | None = None
        self.words = ""
        self.text = ""  # what was read in the photo shown
        layout = QVBoxLayout(self)
        self.view = PhotoView(self)
        layout.addWidget(self.view, 1)
        self.info = QLabel()
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.info.setWordWrap(True)
        layout.addWidget(self.info)
        row = QHBoxLayout()
        for text, slot in (("Open", self._open), ("Show in folder", self._show),
                           ("Copy path", self._copy), ("Find similar", self._similar)):
            button = QPushButton(text)
            button.setAutoDefault(False)
            button.clicked.connect(slot)
            row.addWidget(button)
        self.copy_text = QPushButton("Copy text")
        self.copy_text.setAutoDefault(False)
        self.copy_text.setToolTip("Copy the text read in this photo")
        self.copy_text.setEnabled(False)
        self.copy_text.clicked.connect(self._copy_text)
        row.addWidget(self.copy_text)
        self.where = QPushButton("Where?")
        self.where.setCheckable(True)
        self.where.setAutoDefault(False)
        self.where.setToolTip("Show where in the photo the words of the search are (W)")
        self.where.toggled.connect(self._where_toggled)
        row.addWidget(self.where)
        self.spinner = QProgressBar()
        self.spinner.setRange(0, 0)  # busy
        self.spinner.setMaximumWidth(80)
        self.spinner.setTextVisible(False)
        self.spinner.hide()
        row.addWidget(self.spinner)
        row.addStretch()
        self.zoom_label = QLabel("")
        row.addWidget(self.zoom_label)
        close = QPushButton("Close")
        close.setAutoDefault(False)
        close.clicked.connect(self.reject)
        row.addWidget(close)
        layout.addLayout(row)
        self.view.zoomed.connect(lambda z: self.zoom_label.setText(
            "" if z == 1.0 else f"{z * 100:.0f} %"))
        self._keys()

    def show_hit(self, hit: Hit, words: str) -> None:
        """Show ``hit``; ``words``: the query's words ("" hides "Where?")."""
        if self.where.isChecked():
            self.where_dropped.emit()
        self.hit, self.words = hit, words
        self.info.setText(describe(hit).replace("\n", "  ·  "))
        self.view.show_message("Loading…")
        self.view.set_zoom(1.0)
        self.spinner.hide()
        self.where.blockSignals(True)
        self.where.setChecked(False)
        self.where.blockSignals(False)
        self.where.setVisible(bool(words))
        self.text = ""
        self.copy_text.setEnabled(False)
        self.view.set_marks([])
        self.wants_image.emit(hit.info.path, PREVIEW_PX)
        self.text_wanted.emit(hit.info.path, words)

    def text_ready(self, path: str, text: str, marks: list[Box]) -> None:
        """What was read in a photo, and where the query's words are in it."""
        if self.hit is None or path != self.hit.info.path:
            return
        self.text = text
        self.copy_text.setEnabled(bool(text))
        self.view.set_marks(marks)

    def image_ready(self, path: str, image: QImage, error: str) -> None:
        if self.hit is None or path != self.hit.info.path:
            return
        if image.isNull():
            self.view.show_message(f"Cannot show this photo ({error or 'unreadable'}).")
            return
        self.view.show_pixmap(QPixmap.fromImage(image))

    def location_ready(self, location: Location | None, error: str) -> None:
        self.spinner.hide()
        if error:
            self.where.setChecked(False)
            self.info.setText(f"{self.info.text()}\n{error}")
            return
        self.view.set_location(location)

    def _toggle_where(self) -> None:
        if self.where.isVisible():
            self.where.toggle()

    def _where_toggled(self, on: bool) -> None:
        if on and self.hit is not None and self.words:
            self.spinner.show()
            self.where_wanted.emit(self.hit.info.path, self.words)
        else:
            self.spinner.hide()
            self.view.set_location(None)
            self.where_dropped.emit()

    def _keys(self) -> None:
        """Shortcuts, so the keys work whichever button has the focus."""
        for keys, slot in ((("Right", "Down", "PgDown"), lambda: self.step.emit(1)),
                           (("Left", "Up", "PgUp"), lambda: self.step.emit(-1)),
                           (("+", "=", "Ctrl++"), lambda: self.view.set_zoom(
                               self.view.zoom * ZOOM_STEP)),
                           (("-", "Ctrl+-"), lambda: self.view.set_zoom(
                               self.view.zoom / ZOOM_STEP)),
                           (("0",), lambda: self.view.set_zoom(1.0)),
                           (("W",), self._toggle_where),
                           (("Space",), self.reject)):
            for key in keys:
                QShortcut(QKeySequence(key), self, slot)

    def reject(self) -> None:
        if self.where.isChecked():
            self.where.setChecked(False)
        super().reject()

    def _open(self) -> None:
        if self.hit:
            open_file(self.hit.info.path)

    def _show(self) -> None:
        if self.hit:
            show_in_folder(self.hit.info.path)

    def _copy(self) -> None:
        if self.hit:
            QGuiApplication.clipboard().setText(self.hit.info.path)

    def _copy_text(self) -> None:
        if self.text:
            QGuiApplication.clipboard().setText(self.text)

    def _similar(self) -> None:
        if self.hit:
            self.find_similar.emit(self.hit)
            self.accept()
