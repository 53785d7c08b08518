"""Walk the roots and diff them against the catalog into a change set.

Unchanged files (same size and mtime) cost one stat. A file that vanished
from one place and appeared at another with the same size and partial hash
is a move and keeps its embedding. A root that is missing, unreadable, or an
empty mount point where photos used to be is *offline*: it is left out of the
diff, so none of its photos are removed.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from photofind.core.catalog import Catalog, PhotoRow, Root
from photofind.core.config import PHOTO_EXTENSIONS
from photofind.core.imaging import partial_hash

log = logging.getLogger(__name__)

# Folders that hold no photos of the user's: NAS and desktop thumbnail caches.
SKIP_DIRS = frozenset({"@eaDir", "#recycle", "$RECYCLE.BIN", "System Volume Information",
                       "lost+found"})


@dataclass(frozen=True)
class FoundFile:
    root_id: int
    path: str
    size: int
    mtime_ns: int
    bad_name: bool = False  # not valid UTF-8: ``path`` is a readable stand-in


@dataclass
class ChangeSet:
    new: list[FoundFile] = field(default_factory=list)
    changed: list[tuple[PhotoRow, FoundFile]] = field(default_factory=list)
    moved: list[tuple[PhotoRow, FoundFile]] = field(default_factory=list)
    removed: list[PhotoRow] = field(default_factory=list)
    unchanged: int = 0
    online: list[Root] = field(default_factory=list)
    offline: list[Root] = field(default_factory=list)


def root_is_online(root: Path, known_photos: int) -> bool:
    """A root is online when it is a readable folder, and not an empty mount
    point standing in for a drive that held photos."""
    try:
        if not root.is_dir() or not os.access(root, os.R_OK | os.X_OK):
            return False
        with os.scandir(root) as it:
            empty = next(it, None) is None
    except OSError:
        return False
    return not (empty and known_photos > 0)


def walk(root: Path, skip: Path | None = None, unreadable: set[str] | None = None
         ) -> Iterator[tuple[str, int, int, bool]]:
    """Yield (path, size, mtime_ns, bad_name) of photo files under root.

    Folders that exist but cannot be listed are added to ``unreadable``: what
    they held is unknown, not gone.

    A name that is not valid UTF-8 cannot be stored or shown as it is: it is
    yielded with its odd bytes escaped (``\\xff``) and bad_name True, so the
    user sees it among the failures and can rename it.

    Hidden files and folders, NAS thumbnail folders, the library folder
    itself and symlinked folders (loops) are skipped; so is anything that is
    not a regular file (FIFOs, devices), which could block a reader.
    """
    stack = [str(root)]
    skip_str = str(skip) if skip else None
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            log.warning("cannot read folder %s: %s", folder, exc.strerror or exc)
            if unreadable is not None and not isinstance(exc, FileNotFoundError):
                unreadable.add(folder)
            continue
        for entry in entries:
            name = entry.name
            if name.startswith((".", "~$")) or name in SKIP_DIRS:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.path != skip_str:
                        stack.append(entry.path)
                    continue
                if os.path.splitext(name)[1].lower() not in PHOTO_EXTENSIONS:
                    continue
                if not entry.is_file(follow_symlinks=True):
                    continue
                st = entry.stat(follow_symlinks=True)
            except OSError:
                continue
            try:
                entry.path.encode("utf-8")
            except UnicodeEncodeError:
                shown = os.fsencode(entry.path).decode("utf-8", "backslashreplace")
                yield shown, st.st_size, st.st_mtime_ns, True
                continue
            yield entry.path, st.st_size, st.st_mtime_ns, False


def scan(catalog: Catalog, roots: list[Root], library_dir: Path | None = None) -> ChangeSet:
    """Diff the given roots against the catalog (nothing is written here)."""
    changes = ChangeSet()
    counts = catalog.counts_by_root()
    missing: list[PhotoRow] = []
    for root in roots:
        known_count = sum(counts.get(root.id, (0, 0)))
        if not root_is_online(Path(root.path), known_count):
            changes.offline.append(root)
            continue
        changes.online.append(root)
        known = catalog.photos_in_root(root.id)
        unreadable: set[str] = set()
        missing.extend(_keep_unreadable(changes, unreadable, _diff(
            changes, root, known, walk(Path(root.path), library_dir, unreadable))))
    _match_moves(changes, missing)
    return changes


def scan_folders(catalog: Catalog, folders: dict[Root, list[str]],
                 library_dir: Path | None = None) -> ChangeSet:
    """Like scan, but only below the given folders of each (online) root: what
    the watcher does with the folders its events marked dirty."""
    changes = ChangeSet()
    missing: list[PhotoRow] = []
    for root, dirs in folders.items():
        changes.online.append(root)
        for folder in dirs:
            known = catalog.photos_in_root(root.id, under=folder)
            unreadable: set[str] = set()
            found = walk(Path(folder), library_dir, unreadable) if os.path.isdir(folder) \
                else iter(())
            missing.extend(_keep_unreadable(changes, unreadable,
                                            _diff(changes, root, known, found)))
    _match_moves(changes, missing)
    return changes


def _diff(changes: ChangeSet, root: Root, known: dict[str, PhotoRow],
          found: Iterator[tuple[str, int, int, bool]]) -> list[PhotoRow]:
    """Sort what the walk found into new, changed and unchanged; return the
    known rows it did not find."""
    for path, size, mtime_ns, bad_name in found:
        row = known.pop(path, None)
        file = FoundFile(root.id, path, size, mtime_ns, bad_name)
        if row is None:
            changes.new.append(file)
        elif row.size == size and row.mtime_ns == mtime_ns:
            changes.unchanged += 1
        else:
            changes.changed.append((row, file))
    return list(known.values())


def _keep_unreadable(changes: ChangeSet, unreadable: set[str], missing: list[PhotoRow]
                     ) -> list[PhotoRow]:
    """Rows not found because their folder could not be listed stay as they are."""
    if not unreadable:
        return missing
    prefixes = tuple(folder.rstrip(os.sep) + os.sep for folder in unreadable)
    gone = [row for row in missing if not row.path.startswith(prefixes)]
    changes.unchanged += len(missing) - len(gone)
    return gone


def _match_moves(changes: ChangeSet, missing: list[PhotoRow]) -> None:
    """Pair vanished rows with new files of the same size and partial hash."""
    by_key: dict[tuple[int, str], list[PhotoRow]] = defaultdict(list)
    sizes = {row.size for row in missing}
    for row in missing:
        by_key[(row.size, row.phash)].append(row)
    still_new: list[FoundFile] = []
    for found in changes.new:
        if found.size in sizes and not found.bad_name:
            try:
                digest = partial_hash(found.path, found.size)
            except OSError:
                digest = ""
            candidates = by_key.get((found.size, digest))
            if candidates:
                changes.moved.append((candidates.pop(), found))
                continue
        still_new.append(found)
    changes.new = still_new
    moved_ids = {row.id for row, _ in changes.moved}
    changes.removed = [row for row in missing if row.id not in moved_ids]
