"""The results model: photo ids, scores and what a tile shows about them.

It holds ``Hit`` records (id, path, date, size, score), never images; the
grid asks the thumbnail cache for pixels while painting. Rows are exposed in
pages (``fetchMore``), so a 100,000-photo listing lays out at once, and the
newest-first listing (a ``Listing``) reads each page's rows only when shown. The
relevance cut-off and the date ordering are views over the same hits; the
automatic cut-off (``clear_matches_floor``) keeps the photos whose score
stands out from the rest of the library.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QUrl,
)

from photofind.gui.data import Hit, Listing

PAGE = 300
IdRole = Qt.ItemDataRole.UserRole + 1
HitRole = Qt.ItemDataRole.UserRole + 2
Index = QModelIndex | QPersistentModelIndex


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} bytes"


def describe(hit: Hit) -> str:
    """The hover text (and the preview's): file name, folder, date, dimensions,
    size, the RAW files of the same shot and score."""
    info = hit.info
    lines = [os.path.basename(info.path), os.path.dirname(info.path),
             info.date.replace("T", " ")]
    if info.width and info.height:
        lines.append(f"{info.width} × {info.height}, {human_size(info.size)}")
    else:
        lines.append(human_size(info.size))
    if info.siblings:  # the RAW files of a RAW+JPEG shot
        lines.append("also " + ", ".join(os.path.basename(p) for p in info.siblings))
    if hit.score is not None:
        lines.append(f"match {hit.score:.3f}")
    if hit.labels:
        lines.append("labels: " + ", ".join(hit.labels))
    if not info.online:
        lines.append("on a drive that is not connected")
    if hit.copies:
        lines.append(f"{len(hit.copies) + 1} identical copies: " + "; ".join(
            [info.path, *(c.path for c in hit.copies)]))
    return "\n".join(lines)


AUTO_SPAN = 0.10  # the automatic cut-off keeps the top tenth of the best-to-median span


def clear_matches_floor(scores: list[float]) -> float:
    """The lowest score that still stands out as a clear match.

    Every photo is ranked, so the median score is the library's background
    and the best score the clearest match; clear matches lie in the top
    ``AUTO_SPAN`` of the distance between the two. The measure is relative,
    so it holds for trained CLIP (scores 0.15-0.35) as for the toy model
    (-0.7-1.0). On the toy library (20 colour-shape queries, 6 photos each)
    it keeps 95% of the exact matches at 93% precision
    (tests/gui/test_cutoff.py); a span of 0.2 keeps 98% at 73%.
    """
    if len(scores) < 3:
        return min(scores, default=0.0)
    best = max(scores)
    return best - AUTO_SPAN * (best - statistics.median(scores))


class ResultsModel(QAbstractListModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._all: Sequence[Hit] = []
        self._hits: Sequence[Hit] = []  # after cut-off and ordering
        self._shown = 0
        self._row_of: dict[int, int] = {}
        # Keep hits within this of the best score; None: the automatic floor
        # (clear_matches_floor); 0: keep every hit.
        self.cutoff: float | None = 0.0
        self.by_date = False

    # --- content ------------------------------------------------------
    def set_hits(self, hits: Sequence[Hit]) -> None:
        self._all = hits
        self._refilter()

    def set_view(self, cutoff: float | None, by_date: bool) -> None:
        self.cutoff, self.by_date = cutoff, by_date
        self._refilter()

    def _refilter(self) -> None:
        self.beginResetModel()
        hits = self._all
        if isinstance(hits, Listing):  # no scores, and already newest first: read lazily
            self._hits, self._row_of = hits, {}
            self._shown = min(PAGE, len(hits))
            self.endResetModel()
            return
        scored = [h.score for h in hits if h.score is not None]
        if scored and self.cutoff != 0:
            floor = clear_matches_floor(scored) if self.cutoff is None \
                else max(scored) - self.cutoff
            hits = [h for h in hits if h.score is None or h.score >= floor]
        if self.by_date:
            hits = sorted(hits, key=lambda h: h.info.date, reverse=True)
        self._hits = hits
        self._shown = min(PAGE, len(hits))
        self._row_of = {h.info.id: i for i, h in enumerate(hits)}
        self.endResetModel()

    def total(self) -> int:
        return len(self._hits)

    def total_before_cutoff(self) -> int:
        return len(self._all)

    def hit(self, row: int) -> Hit:
        return self._hits[row]

    def row_of(self, photo_id: int) -> int | None:
        hits = self._hits
        row = hits.row_of(photo_id) if isinstance(hits, Listing) else self._row_of.get(photo_id)
        return row if row is not None and row < self._shown else None

    # --- Qt's model interface -------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._shown

    def canFetchMore(self, parent: Index) -> bool:
        return not parent.isValid() and self._shown < len(self._hits)

    def fetchMore(self, parent: Index) -> None:
        if parent.isValid():
            return
        more = min(PAGE, len(self._hits) - self._shown)
        if more <= 0:
            return
        self.beginInsertRows(QModelIndex(), self._shown, self._shown + more - 1)
        self._shown += more
        self.endInsertRows()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < self._shown:
            return None
        hit = self._hits[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(hit.info.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            return describe(hit)
        if role == IdRole:
            return hit.info.id
        if role == HitRole:
            return hit
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsDragEnabled | Qt.ItemFlag.ItemNeverHasChildren)

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        """Dragged tiles carry their files (file manager, mail, editors)."""
        mime = QMimeData()
        paths = [self._hits[i.row()].info.path for i in indexes if i.isValid()]
        mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
        mime.setText("\n".join(paths))
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction
