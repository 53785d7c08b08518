"""The sidebar: a list of sections ("All photos", "Smart albums", "My albums",
and later ones such as folders and dates), each a list of entries the user
can open. A section is filled with plain ``Entry`` records; choosing one
emits it, and the window decides what it means.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QMenu,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

EntryRole = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class Entry:
    section: str  # the section's key
    key: str  # what the entry opens: a label, a saved search's id ...
    text: str
    count: int | None = None
    tooltip: str = ""
    editable: bool = False  # can be renamed and removed
    parent: str = ""  # the key of the entry it sits under (listed before it), or ""
    expanded: bool = False  # its entries shown when it first appears


class Sidebar(QTreeWidget):
    """Sections as top-level rows, their entries below; keyboard and mouse."""

    chosen = Signal(object)  # Entry
    rename_wanted = Signal(object, str)  # Entry, new name
    remove_wanted = Signal(object)  # Entry

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setColumnCount(2)
        self.setRootIsDecorated(True)
        self.setUniformRowHeights(True)
        self.setMinimumWidth(180)
        self.header().setStretchLastSection(False)
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setAccessibleName("Albums")
        self._sections: dict[str, QTreeWidgetItem] = {}
        self.itemActivated.connect(self._activated)
        self.itemClicked.connect(self._activated)
        self.itemChanged.connect(self._edited)
        self.customContextMenuRequested.connect(self._menu)

    def set_section(self, key: str, title: str, entries: list[Entry],
                    empty: str = "") -> None:
        """Create or refill a section; sections keep the order they were first set in.
        ``empty``: a greyed line shown when there are no entries."""
        section = self._sections.get(key)
        if section is None:
            section = QTreeWidgetItem(self, [title, ""])
            section.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = section.font(0)
            font.setBold(True)
            section.setFont(0, font)
            section.setExpanded(True)
            self._sections[key] = section
        self.blockSignals(True)
        current = self.current_entry()
        before = {item.data(0, EntryRole).key: item.isExpanded() for item in self._items(key)
                  if isinstance(item.data(0, EntryRole), Entry)}
        section.takeChildren()
        placed: dict[str, QTreeWidgetItem] = {}
        for entry in entries:
            item = QTreeWidgetItem(placed.get(entry.parent, section),
                                   [entry.text, "" if entry.count is None
                                    else f"{entry.count:,}"])
            placed[entry.key] = item
            item.setData(0, EntryRole, entry)
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight)
            if entry.tooltip:
                item.setToolTip(0, entry.tooltip)
            flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
            item.setFlags(flags | Qt.ItemFlag.ItemIsEditable if entry.editable else flags)
            if current is not None and (current.section, current.key) == (entry.section,
                                                                           entry.key):
                self.setCurrentItem(item)
        for entry in entries:  # a refill keeps what the user opened or closed
            if before.get(entry.key, entry.expanded):
                placed[entry.key].setExpanded(True)
        if not entries and empty:
            note = QTreeWidgetItem(section, [empty, ""])
            note.setFlags(Qt.ItemFlag.NoItemFlags)
        self.blockSignals(False)

    def entries(self, key: str) -> list[Entry]:
        """A section's entries, nested ones after their parent."""
        found = (item.data(0, EntryRole) for item in self._items(key))
        return [e for e in found if isinstance(e, Entry)]

    def _items(self, key: str) -> list[QTreeWidgetItem]:
        section = self._sections.get(key)
        items: list[QTreeWidgetItem] = []
        stack = [section] if section is not None else []
        while stack:
            parent = stack.pop()
            children = [c for c in (parent.child(i) for i in range(parent.childCount()))
                        if c is not None]
            if parent is not section:
                items.append(parent)
            stack.extend(reversed(children))
        return items

    def item_of(self, section: str, key: str) -> QTreeWidgetItem | None:
        for item in self._items(section):
            entry = item.data(0, EntryRole)
            if isinstance(entry, Entry) and entry.key == key:
                return item
        return None

    def current_entry(self) -> Entry | None:
        item = self.currentItem()
        entry = item.data(0, EntryRole) if item is not None else None
        return entry if isinstance(entry, Entry) else None

    def select(self, section: str, key: str) -> None:
        item = self.item_of(section, key)
        if item is not None:
            self.blockSignals(True)
            self.setCurrentItem(item)
            self.blockSignals(False)

    def rename(self, entry: Entry) -> None:
        item = self.item_of(entry.section, entry.key)
        if item is not None and entry.editable:
            self.editItem(item, 0)

    def _activated(self, item: QTreeWidgetItem, column: int = 0) -> None:
        entry = item.data(0, EntryRole)
        if isinstance(entry, Entry):
            self.chosen.emit(entry)

    def _edited(self, item: QTreeWidgetItem, column: int) -> None:
        entry = item.data(0, EntryRole)
        if isinstance(entry, Entry) and column == 0 and item.text(0) != entry.text:
            self.rename_wanted.emit(entry, item.text(0))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        entry = self.current_entry()
        if entry is not None and entry.editable:
            if event.key() == Qt.Key.Key_F2:
                self.rename(entry)
                return
            if event.key() == Qt.Key.Key_Delete:
                self.remove_wanted.emit(entry)
                return
        super().keyPressEvent(event)

    def _menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        entry = item.data(0, EntryRole) if item is not None else None
        if not isinstance(entry, Entry) or not entry.editable:
            return
        menu = QMenu(self)
        rename = QAction("Rename (F2)", menu)
        rename.triggered.connect(lambda: self.rename(entry))
        remove = QAction("Remove (Delete)", menu)
        remove.triggered.connect(lambda: self.remove_wanted.emit(entry))
        menu.addActions([rename, remove])
        menu.exec(self.viewport().mapToGlobal(pos))
