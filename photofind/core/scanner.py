"""Walk the roots and diff them against the catalog into a change set.

Unchanged files (same size, mtime, inode and ctime) cost one stat; a file
whose inode or ctime moved under an unchanged size and mtime (``cp -p``,
``rsync -t``, a restore) is re-checked by its content hash. A file that
vanished from one place and appeared at another is a move, and keeps its
embedding, only when its whole content hash matches (the cheap partial hash
only picks the candidates).

Nothing is removed without positive evidence: a known file counts as deleted
only when its folder (or the nearest folder above it) is there, on the
device the file was on, and the file is not. A root that is missing,
unreadable, or on another device than before (an unmounted drive leaves its
mount point behind) is *offline*: it is left out of the diff. Files under a
folder whose drive is gone (a drive mounted inside a root) are kept too.

Files that are not regular files (FIFOs, devices), broken links and names
that are not valid UTF-8 are never opened: they come back with a ``problem``
and are listed as failed, by ``index`` and ``watch`` alike.
"""

from __future__ import annotations

import logging
import os
import stat
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from photofind.core import roots as rootrules
from photofind.core.catalog import Catalog, PhotoRow, Root
from photofind.core.config import PHOTO_EXTENSIONS
from photofind.core.imaging import content_hash, partial_hash

log = logging.getLogger(__name__)

# Folders that hold no photos of the user's: NAS and desktop thumbnail caches.
SKIP_DIRS = frozenset({"@eaDir", "#recycle", "$RECYCLE.BIN", "System Volume Information",
                       "lost+found"})
BAD_NAME = "file name is not valid UTF-8; rename it"
NOT_A_FILE = "not a regular file (a pipe or a device); never opened"
BROKEN_LINK = "broken link: what it points to is missing"
SAMPLE = 16  # known photos looked for when a root turns up on another device


@dataclass(frozen=True)
class FoundFile:
    root_id: int
    path: str  # for a bad name, a readable stand-in (never opened)
    size: int
    mtime_ns: int
    dev: int | None = None
    ino: int | None = None
    ctime_ns: int | None = None
    problem: str | None = None  # why it is listed as failed without being opened
    content_hash: str | None = None  # known once a move was confirmed


@dataclass
class ChangeSet:
    new: list[FoundFile] = field(default_factory=list)
    changed: list[tuple[PhotoRow, FoundFile]] = field(default_factory=list)
    moved: list[tuple[PhotoRow, FoundFile]] = field(default_factory=list)
    removed: list[PhotoRow] = field(default_factory=list)
    unchanged: int = 0
    # unchanged files whose device, inode or ctime is to be recorded
    refreshed: list[tuple[int, int | None, int | None, int | None]] = field(
        default_factory=list)
    online: list[Root] = field(default_factory=list)
    offline: list[Root] = field(default_factory=list)
    # root id -> (device, inode) of the root folder now
    places: dict[int, tuple[int, int | None]] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)  # folders inside roots whose drive is gone
    # None: every root was looked at (a full scan); else the ids of the photos the
    # catalog knew in the folders that were (a watcher's scan): the indexer's
    # catch-up then looks at those only, so its cost follows the folders, not the library
    scope: set[int] | None = None


def device_of(st: os.stat_result) -> int:
    return _int64(st.st_dev)


def _int64(value: int) -> int:
    """SQLite integers are signed 64-bit (Windows file ids can be wider)."""
    return value if value < 1 << 63 else value % (1 << 63)


def _identity(st: os.stat_result) -> tuple[int | None, int | None]:
    """(inode, ctime_ns), None where the platform has no such thing."""
    return (_int64(st.st_ino) or None), (st.st_ctime_ns or None)


def place_of(st: os.stat_result) -> tuple[int, int | None]:
    """(device, inode) of a folder: where a root is."""
    return device_of(st), _identity(st)[0]


def root_online(catalog: Catalog, root: Root) -> bool:
    """Whether a root can be diffed: a readable folder, the one it was (same
    device, same inode where known).

    Anything else (its drive unmounted and the mount point left behind, the
    folder deleted and made again) is online again only when its photos are
    there (the same drive, given a new device number). A root whose place is
    not known yet (recorded before photofind kept it) is offline when it is
    empty where photos were.
    """
    try:
        st = os.stat(root.path)
        if not stat.S_ISDIR(st.st_mode) or not os.access(root.path, os.R_OK | os.X_OK):
            return False
        if root.dev is not None:
            dev, ino = place_of(st)
            same = dev == root.dev and (root.ino is None or ino is None or ino == root.ino)
            return same or _photos_are_here(catalog, root)
        with os.scandir(root.path) as it:
            empty = next(it, None) is None
    except OSError:
        return False
    return not (empty and catalog.photo_count(root.id) > 0)


def _photos_are_here(catalog: Catalog, root: Root) -> bool:
    for row in catalog.sample_photos(root.id, SAMPLE):
        try:
            st = os.lstat(row.path)
        except (OSError, ValueError):
            continue
        if (st.st_size, st.st_mtime_ns) == (row.size, row.mtime_ns):
            return True
    return False


@dataclass(frozen=True)
class Entry:
    """One file the walk found."""

    path: str
    size: int
    mtime_ns: int
    dev: int
    ino: int | None
    ctime_ns: int | None
    problem: str | None = None


def walk(root: Path, skip: Path | None = None, unreadable: set[str] | None = None
         ) -> Iterator[Entry]:
    """Yield the photo files under root.

    Folders that exist but cannot be listed are added to ``unreadable``: what
    they held is unknown, not gone.

    A name that is not valid UTF-8 cannot be stored or shown as it is: it is
    yielded with its odd bytes escaped (``\\xff``), numbered where that
    stand-in is the real name of another file in its folder, with a problem,
    so the user sees it among the failures and can rename it.

    Hidden files and folders, NAS thumbnail folders, the library folder
    itself and symlinked folders (loops) are skipped; FIFOs, devices and
    broken links with a photo's extension come with a problem, never opened.
    """
    stack = [(str(root), str(root))]  # (real path, stand-in shown for it)
    skip_str = str(skip) if skip else None
    while stack:
        folder, shown_folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            log.warning("cannot read folder %s: %s", shown_folder, exc.strerror or exc)
            if unreadable is not None and not isinstance(exc, FileNotFoundError):
                unreadable.add(folder)
            continue
        shown_names = _shown_names([e.name for e in entries])
        for entry in entries:
            name = entry.name
            if name.startswith((".", "~$")) or name in SKIP_DIRS:
                continue
            shown = os.path.join(shown_folder, shown_names[name])
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.path != skip_str:
                        stack.append((entry.path, shown))
                    continue
            except OSError:
                continue
            if os.path.splitext(name)[1].lower() not in PHOTO_EXTENSIONS:
                continue
            found = _look_at(entry, shown, bad_name=shown_names[name] != name)
            if found is not None:
                yield found


def _look_at(entry: os.DirEntry[str], shown: str, bad_name: bool) -> Entry | None:
    """Stat one file (never opening it); None for a folder reached by a link."""
    problem = BAD_NAME if bad_name else None
    try:
        st = link = entry.stat(follow_symlinks=False)  # one stat for a plain file
        if entry.is_symlink():
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError:
                problem = problem or BROKEN_LINK
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return None
    if not stat.S_ISREG(st.st_mode):
        problem = problem or NOT_A_FILE
    ino, ctime = _identity(st)
    return Entry(shown, st.st_size, st.st_mtime_ns, device_of(link), ino, ctime, problem)


def _shown_names(names: list[str]) -> dict[str, str]:
    """Each name as it can be stored: valid UTF-8 names as they are, others
    escaped, numbered where the escaped form is taken (no two files of a
    folder ever share a name in the catalog)."""
    shown: dict[str, str] = {}
    bad: list[str] = []
    for name in names:
        try:
            name.encode("utf-8")
            shown[name] = name
        except UnicodeEncodeError:
            bad.append(name)
    taken = set(shown.values())
    for name in sorted(bad, key=os.fsencode):
        stem, ext = os.path.splitext(os.fsencode(name).decode("utf-8", "backslashreplace"))
        candidate, n = stem + ext, 1
        while candidate in taken:
            n += 1
            candidate = f"{stem} ({n}){ext}"
        taken.add(candidate)
        shown[name] = candidate
    return shown


def scan(catalog: Catalog, roots: list[Root], library_dir: Path | None = None) -> ChangeSet:
    """Diff the given roots against the catalog (nothing is written here)."""
    changes = ChangeSet()
    every_root = catalog.roots()
    missing: list[tuple[Root, PhotoRow]] = []
    remaps: dict[int, dict[int, int]] = {}
    for root in roots:
        other = rootrules.shadowed_by(root, every_root)
        if other is not None:
            log.warning("%s now leads into %s, another folder of the library: it is left"
                        " alone (its photos are kept; `photofind remove %s` forgets it)",
                        root.path, other.path, root.path)
            changes.offline.append(root)
            continue
        if not root_online(catalog, root):
            changes.offline.append(root)
            continue
        changes.online.append(root)
        changes.places[root.id] = place_of(os.stat(root.path))
        known = catalog.photos_in_root(root.id)
        remap = remaps.setdefault(root.id, {})
        unreadable: set[str] = set()
        gone = _diff(changes, root, known, walk(Path(root.path), library_dir, unreadable), remap)
        missing.extend((root, row) for row in _keep_unreadable(changes, unreadable, gone))
    _settle_missing(changes, missing, remaps)
    return changes


def scan_folders(catalog: Catalog, folders: dict[Root, list[str]],
                 library_dir: Path | None = None) -> ChangeSet:
    """Like scan, but only below the given folders of each (online) root: what
    the watcher does with the folders its events marked dirty."""
    scope: set[int] = set()
    changes = ChangeSet(scope=scope)
    missing: list[tuple[Root, PhotoRow]] = []
    remaps: dict[int, dict[int, int]] = {}
    for root, dirs in folders.items():
        changes.online.append(root)
        remap = remaps.setdefault(root.id, {})
        for folder in dirs:
            known = catalog.photos_in_root(root.id, under=folder)
            scope.update(row.id for row in known.values())
            unreadable: set[str] = set()
            found = walk(Path(folder), library_dir, unreadable) if os.path.isdir(folder) \
                else iter(())
            gone = _diff(changes, root, known, found, remap)
            missing.extend((root, row) for row in _keep_unreadable(changes, unreadable, gone))
    _settle_missing(changes, missing, remaps)
    return changes


def _diff(changes: ChangeSet, root: Root, known: dict[str, PhotoRow],
          found: Iterator[Entry], remap: dict[int, int]) -> list[PhotoRow]:
    """Sort what the walk found into new, changed and unchanged; return the
    known rows it did not find. ``remap`` learns devices that files seen
    unchanged moved to (a drive back under a new device number)."""
    for e in found:
        row = known.pop(e.path, None)
        file = FoundFile(root.id, e.path, e.size, e.mtime_ns, e.dev, e.ino, e.ctime_ns,
                         e.problem)
        if row is None:
            changes.new.append(file)
        elif (row.size, row.mtime_ns) != (e.size, e.mtime_ns) or (
                _replaced(row, file) and not _same_content(row, file)):
            changes.changed.append((row, file))
        else:
            changes.unchanged += 1
            if (row.dev, row.ino, row.ctime_ns) != (e.dev, e.ino, e.ctime_ns):
                changes.refreshed.append((row.id, e.dev, e.ino, e.ctime_ns))
            if row.dev is not None and row.dev != e.dev:
                remap[row.dev] = e.dev
    return list(known.values())


def _replaced(row: PhotoRow, file: FoundFile) -> bool:
    """Whether the file at a known path may be another file with the same size
    and mtime. Inodes are compared only on the device they were recorded on
    (some file systems number them anew at every mount)."""
    if row.ino is None or file.problem:
        return False  # recorded before photofind kept identities; or never opened
    if row.ctime_ns is not None and file.ctime_ns is not None \
            and row.ctime_ns != file.ctime_ns:
        return True
    return row.dev == file.dev and file.ino is not None and row.ino != file.ino


def _same_content(row: PhotoRow, file: FoundFile) -> bool:
    if not row.content_hash:
        return False
    try:
        return content_hash(file.path) == row.content_hash
    except OSError:
        return False


def _settle_missing(changes: ChangeSet, missing: list[tuple[Root, PhotoRow]],
                    remaps: dict[int, dict[int, int]]) -> None:
    """Rows not found are deleted (or moved) only where there is evidence."""
    gone: list[PhotoRow] = []
    for root, row in missing:
        absent = _absent_folder(root, row, remaps.get(root.id, {}))
        if absent is None:
            gone.append(row)
        else:
            changes.absent.add(absent)
    _match_moves(changes, gone)


def _absent_folder(root: Root, row: PhotoRow, remap: dict[int, int]) -> str | None:
    """None when the missing file was deleted: the nearest folder above it is
    there, on the device the file was on. Else the folder that went away with
    its drive (the file is kept)."""
    expected = row.dev if row.dev is not None else root.dev
    folder, below = os.path.dirname(row.path), row.path
    while True:
        try:
            st = os.stat(folder)
            break
        except (FileNotFoundError, NotADirectoryError):
            if rootrules.same(folder, root.path) or len(folder) <= len(root.path):
                return folder
            folder, below = os.path.dirname(folder), folder
        except (OSError, ValueError):
            return folder
    if expected is None:
        return None  # recorded before photofind kept devices: as before, deleted
    dev = device_of(st)
    if dev == expected or remap.get(expected) == dev:
        return None
    return below if rootrules.same(folder, root.path) else folder


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
    """Pair vanished rows with new files of the same content: size and partial
    hash pick the candidates, the whole content hash decides."""
    by_key: dict[tuple[int, str], list[PhotoRow]] = defaultdict(list)
    for row in missing:
        if row.content_hash:
            by_key[(row.size, row.phash)].append(row)
    sizes = {size for size, _ in by_key}
    still_new: list[FoundFile] = []
    for found in changes.new:
        if found.size in sizes and not found.problem:
            match = _confirmed_move(found, by_key)
            if match is not None:
                changes.moved.append(match)
                continue
        still_new.append(found)
    changes.new = still_new
    moved_ids = {row.id for row, _ in changes.moved}
    changes.removed = [row for row in missing if row.id not in moved_ids]


def _confirmed_move(found: FoundFile, by_key: dict[tuple[int, str], list[PhotoRow]]
                    ) -> tuple[PhotoRow, FoundFile] | None:
    try:
        candidates = by_key.get((found.size, partial_hash(found.path, found.size)))
        if not candidates:
            return None
        digest = content_hash(found.path)  # read once, only for a candidate move
    except OSError:
        return None
    for row in candidates:
        if row.content_hash == digest:
            candidates.remove(row)
            return row, replace(found, content_hash=digest)
    return None
