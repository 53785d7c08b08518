"""The Duplicates page: groups of one tier side by side, a "Keep" box under
each photo (the suggested one ticked), and "Move the others to the trash",
which asks first, naming how many photos go and where. The page only shows
and asks; the window hands the photos to the writer thread, which is the only
place that moves a file (core/trash.py).
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from photofind.core.duplicates import Group
from photofind.core.trash import trash_location
from photofind.gui.models import human_size
from photofind.gui.sidebar import Entry
from photofind.gui.views import PixmapCache

DUPES = "duplicates"  # the sidebar section
TIER_NAMES = {"exact": "Exact copies", "near": "Near-identical", "similar": "Similar shots"}
TIER_HELP = {"exact": "the same file, byte for byte",
             "near": "the same picture resized, recompressed, re-encoded or slightly cropped",
             "similar": "bursts and retakes: alike and taken within minutes"}
SHOWN_GROUPS = 100  # groups laid out at once
TILE = 150


def section_entries(counts: dict[str, int] | None) -> list[Entry]:
    """The sidebar's Duplicates section (counts: groups per tier, None until looked for)."""
    return [Entry(DUPES, tier, name, None if counts is None else counts.get(tier, 0),
                  TIER_HELP[tier]) for tier, name in TIER_NAMES.items()]


class _Tile(QWidget):
    def __init__(self, group_index: int, info_id: int, path: str, detail: str, keep: bool,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.photo_id, self.path, self.group_index = info_id, path, group_index
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.picture = QLabel(self)
        self.picture.setFixedSize(TILE, TILE)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setStyleSheet("QLabel { background: palette(alternate-base); }")
        layout.addWidget(self.picture)
        name = QLabel(os.path.basename(path), self)
        name.setToolTip(path)
        name.setMaximumWidth(TILE)
        layout.addWidget(name)
        info = QLabel(detail, self)
        info.setStyleSheet("QLabel { color: palette(mid); }")
        layout.addWidget(info)
        self.keep = QCheckBox("Keep", self)
        self.keep.setChecked(keep)
        layout.addWidget(self.keep)

    def show_pixmap(self, pixmap: QPixmap) -> None:
        self.picture.setPixmap(pixmap.scaled(QSize(TILE, TILE), Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.SmoothTransformation))


class DuplicatesPage(QWidget):
    trash_wanted = Signal(object)  # list[int]: photo ids the user confirmed

    def __init__(self, cache: PixmapCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self.tier = "exact"
        self.groups: list[Group] = []
        self.tiles: list[_Tile] = []
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.summary = QLabel("Looking for duplicates…", self)
        self.summary.setWordWrap(True)
        top.addWidget(self.summary, 1)
        self.trash_button = QPushButton("Move the others to the trash…", self)
        self.trash_button.clicked.connect(self.ask_to_trash)
        self.trash_button.setEnabled(False)
        top.addWidget(self.trash_button)
        layout.addLayout(top)
        self.area = QScrollArea(self)
        self.area.setWidgetResizable(True)
        self.area.setFrameShape(QFrame.Shape.NoFrame)
        layout.addWidget(self.area, 1)
        self.confirmation: QMessageBox | None = None

    def show_groups(self, tier: str, groups: list[Group]) -> None:
        self.tier, self.groups = tier, groups
        body = QWidget()
        column = QVBoxLayout(body)
        self.tiles = []
        for n, group in enumerate(groups[:SHOWN_GROUPS]):
            column.addWidget(self._group_row(n, group))
        column.addStretch()
        self.area.setWidget(body)
        name = TIER_NAMES[tier].lower()
        if not groups:
            self.summary.setText(f"No {name} found ({TIER_HELP[tier]}).")
        else:
            extra = sum(len(g.others) for g in groups)
            shown = "" if len(groups) <= SHOWN_GROUPS else f" (the first {SHOWN_GROUPS} shown)"
            self.summary.setText(f"{len(groups):,} groups of {name}{shown}, {extra:,} photos"
                                 " beyond the one suggested to keep. Tick what to keep.")
        self.trash_button.setEnabled(bool(groups))

    def _group_row(self, n: int, group: Group) -> QFrame:
        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        row = QHBoxLayout(frame)
        for info in group.members:
            size = f"{info.width} × {info.height}, " if info.width and info.height else ""
            detail = f"{size}{human_size(info.size)}\n{info.date.replace('T', ' ')}"
            tile = _Tile(n, info.id, info.path, detail, info is group.keep, frame)
            pixmap = self.cache.get(info.id)
            if pixmap is not None:
                tile.show_pixmap(pixmap)
            self.tiles.append(tile)
            row.addWidget(tile)
        row.addStretch()
        return frame

    def thumb_loaded(self, photo_id: int) -> None:
        pixmap = self.cache.get(photo_id)
        for tile in self.tiles:
            if tile.photo_id == photo_id and pixmap is not None:
                tile.show_pixmap(pixmap)

    def chosen_for_trash(self) -> tuple[list[_Tile], list[int]]:
        """The unticked photos, and the groups (numbers) in which nothing is ticked."""
        kept = {t.group_index for t in self.tiles if t.keep.isChecked()}
        groups = {t.group_index for t in self.tiles}
        return ([t for t in self.tiles if not t.keep.isChecked() and t.group_index in kept],
                sorted(groups - kept))

    def ask_to_trash(self) -> None:
        """Confirm with the count and the place, then ask the window to trash them."""
        going, nothing_kept = self.chosen_for_trash()
        box = QMessageBox(self)
        box.setWindowTitle("Move to the trash — photofind")
        self.confirmation = box
        if nothing_kept or not going:
            box.setIcon(QMessageBox.Icon.Information)
            box.setText("Each group keeps at least one photo: tick one in every group."
                        if nothing_kept else "Every photo is ticked to keep: nothing to move.")
            box.open()
            return
        paths = [t.path for t in going]
        count = f"{len(paths)} photo" + ("" if len(paths) == 1 else "s")
        box.setIcon(QMessageBox.Icon.Question)
        box.setText(f"Move {count} to {trash_location(paths)}?")
        box.setInformativeText("They can be restored from there. The photos ticked to keep"
                               " stay where they are; nothing is deleted for good.")
        box.setDetailedText("\n".join(paths))
        move = box.addButton("Move to the trash", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        ids = [t.photo_id for t in going]
        box.buttonClicked.connect(lambda button: self.trash_wanted.emit(ids)
                                  if button is move else None)
        box.open()
