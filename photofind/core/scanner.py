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
from photofind.core.catalog import Catalog, Root
from photofind.core.config import PHOTO_EXTENSIONS
from photofind.core.imaging import content_hash, is_current_hash, partial_hash
from photofind.core.records import RAW_EXTENSIONS, FileRecord

log = logging.getLogger(__name__)

# Folders that hold no photos of the user's: NAS and desktop thumbnail caches.
SKIP_DIRS = frozenset({"@eaDir", "#recycle", "$RECYCLE.BIN", "System Volume Information",
                       "lost+found"})
BAD_NAME = "file name is not valid UTF-8; rename it"
NOT_A_FILE = "not a regular file (a pipe or a device); never opened"
BROKEN_LINK = "broken link: what it points to is missing"
SAMPLE = 16  # known photos looked for when a root turns up on another device


@dataclass
class ChangeSet:
    """What a walk found against the catalog: records as found (``changed`` and
    ``moved`` pair each with the row it replaces or follows)."""

    new: list[FileRecord] = field(default_factory=list)
    changed: list[tuple[FileRecord, FileRecord]] = field(default_factory=list)
    moved: list[tuple[FileRecord, FileRecord]] = field(default_factory=list)
    removed: list[FileRecord] = field(default_factory=list)
    unchanged: int = 0
    # unchanged files whose device, inode, ctime or RAW siblings are to be recorded
    # (with their ids)
    refreshed: list[FileRecord] = field(default_factory=list)
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


def walk(root: Path, skip: Path | None = None, unreadable: set[str] | None = None, *,
         root_id: int = 0) -> Iterator[FileRecord]:
    """Yield the photo files under root (records of the root ``root_id``).

    Folders that exist but cannot be listed are added to ``unreadable``: what
    they held is unknown, not gone.

    A name that is not valid UTF-8 cannot be stored or shown as it is: it is
    yielded with its odd bytes escaped (``\\xff``), numbered where that
    stand-in is the real name of another file in its folder, with a problem,
    so the user sees it among the failures and can rename it.

    Hidden files and folders, NAS thumbnail folders, the library folder
    itself and symlinked folders (loops) are skipped; FIFOs, devices and
    broken links with a photo's extension come with a problem, never opened.
    A RAW file beside a picture of the same name (RAW+JPEG shooting) is not
    yielded: it is among the picture's ``siblings``.
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
        raws = _raw_siblings(list(shown_names))
        paired = {raw for group in raws.values() for raw in group}
        for entry in entries:
            name = entry.name
            if name.startswith((".", "~$")) or name in SKIP_DIRS or name in paired:
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
            found = _look_at(root_id, entry, shown, bad_name=shown_names[name] != name)
            if found is not None and name in raws:
                found = replace(found, siblings=tuple(
                    os.path.join(shown_folder, shown_names[raw]) for raw in raws[name]))
            if found is not None:
                yield found


def _raw_siblings(names: list[str]) -> dict[str, list[str]]:
    """picture name -> the RAW files of the same shot in its folder: same name
    up to the extension (in any case), e.g. IMG_0001.JPG and IMG_0001.CR2."""
    pictures: dict[str, str] = {}
    raws: dict[str, list[str]] = defaultdict(list)
    for name in sorted(names):
        if name.startswith((".", "~$")):
            continue
        stem, ext = os.path.splitext(name)
        if ext.lower() in RAW_EXTENSIONS:
            raws[stem.lower()].append(name)
        elif ext.lower() in PHOTO_EXTENSIONS:
            pictures.setdefault(stem.lower(), name)
    return {pictures[stem]: group for stem, group in raws.items() if stem in pictures}


def _look_at(root_id: int, entry: os.DirEntry[str], shown: str, bad_name: bool
             ) -> FileRecord | None:
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
    return FileRecord(root_id, shown, st.st_size, st.st_mtime_ns, dev=device_of(link), ino=ino,
                      ctime_ns=ctime, problem=problem)


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
    missing: list[tuple[Root, FileRecord]] = []
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
        found = walk(Path(root.path), library_dir, unreadable, root_id=root.id)
        gone = _diff(changes, known, found, remap)
        missing.extend((root, row) for row in _keep_unreadable(changes, unreadable, gone))
    _settle_missing(changes, missing, remaps)
    return changes


def scan_folders(catalog: Catalog, folders: dict[Root, list[str]],
                 library_dir: Path | None = None) -> ChangeSet:
    """Like scan, but only below the given folders of each (online) root: what
    the watcher does with the folders its events marked dirty."""
    scope: set[int] = set()
    changes = ChangeSet(scope=scope)
    missing: list[tuple[Root, FileRecord]] = []
    remaps: dict[int, dict[int, int]] = {}
    for root, dirs in folders.items():
        changes.online.append(root)
        remap = remaps.setdefault(root.id, {})
        for folder in dirs:
            known = catalog.photos_in_root(root.id, under=folder)
            scope.update(row.id for row in known.values())
            unreadable: set[str] = set()
            found = walk(Path(folder), library_dir, unreadable, root_id=root.id) \
                if os.path.isdir(folder) else iter(())
            gone = _diff(changes, known, found, remap)
            missing.extend((root, row) for row in _keep_unreadable(changes, unreadable, gone))
    _settle_missing(changes, missing, remaps)
    return changes


def _diff(changes: ChangeSet, known: dict[str, FileRecord],
          found: Iterator[FileRecord], remap: dict[int, int]) -> list[FileRecord]:
    """Sort what the walk found into new, changed and unchanged; return the
    known rows it did not find. ``remap`` learns devices that files seen
    unchanged moved to (a drive back under a new device number)."""
    for file in found:
        row = known.pop(file.path, None)
        if row is None:
            changes.new.append(file)
        elif (row.size, row.mtime_ns) != (file.size, file.mtime_ns) or (
                _replaced(row, file) and not _same_content(row, file)):
            changes.changed.append((row, file))
        else:
            changes.unchanged += 1
            if (row.dev, row.ino, row.ctime_ns, row.siblings) != (
                    file.dev, file.ino, file.ctime_ns, file.siblings):
                changes.refreshed.append(replace(file, id=row.id))
            if row.dev is not None and file.dev is not None and row.dev != file.dev:
                remap[row.dev] = file.dev
    return list(known.values())


def _replaced(row: FileRecord, file: FileRecord) -> bool:
    """Whether the file at a known path may be another file with the same size
    and mtime. Inodes are compared only on the device they were recorded on
    (some file systems number them anew at every mount)."""
    if row.ino is None or file.problem:
        return False  # recorded before photofind kept identities; or never opened
    if row.ctime_ns is not None and file.ctime_ns is not None \
            and row.ctime_ns != file.ctime_ns:
        return True
    return row.dev == file.dev and file.ino is not None and row.ino != file.ino


def _same_content(row: FileRecord, file: FileRecord) -> bool:
    if not row.content_hash:
        return False
    try:
        return content_hash(file.path, like=row.content_hash) == row.content_hash
    except OSError:
        return False


def _settle_missing(changes: ChangeSet, missing: list[tuple[Root, FileRecord]],
                    remaps: dict[int, dict[int, int]]) -> None:
    """Rows not found are deleted (or moved) only where there is evidence."""
    gone: list[FileRecord] = []
    for root, row in missing:
        absent = _absent_folder(root, row, remaps.get(root.id, {}))
        if absent is None:
            gone.append(row)
        else:
            changes.absent.add(absent)
    _match_moves(changes, gone)


def _absent_folder(root: Root, row: FileRecord, remap: dict[int, int]) -> str | None:
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


def _keep_unreadable(changes: ChangeSet, unreadable: set[str], missing: list[FileRecord]
                     ) -> list[FileRecord]:
    """Rows not found because their folder could not be listed stay as they are."""
    if not unreadable:
        return missing
    prefixes = tuple(folder.rstrip(os.sep) + os.sep for folder in unreadable)
    gone = [row for row in missing if not row.path.startswith(prefixes)]
    changes.unchanged += len(missing) - len(gone)
    return gone


def _match_moves(changes: ChangeSet, missing: list[FileRecord]) -> None:
    """Pair vanished rows with new files of the same content: size and partial
    hash pick the candidates, the whole content hash decides."""
    by_key: dict[tuple[int, str], list[FileRecord]] = defaultdict(list)
    for row in missing:
        if row.content_hash:
            by_key[(row.size, row.quick_hash)].append(row)
    sizes = {size for size, _ in by_key}
    still_new: list[FileRecord] = []
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


def _confirmed_move(found: FileRecord, by_key: dict[tuple[int, str], list[FileRecord]]
                    ) -> tuple[FileRecord, FileRecord] | None:
    """The vanished row the new file ``found`` is, by its whole content (read
    only for a candidate; once per algorithm: rows from catalogs before hold
    blake2b digests). The move carries today's digest."""
    digests: dict[bool, str] = {}  # is today's algorithm -> the file's digest
    try:
        candidates = by_key.get((found.size, partial_hash(found.path, found.size))) or []
        for row in candidates:
            assert row.content_hash is not None
            current = is_current_hash(row.content_hash)
            if current not in digests:
                digests[current] = content_hash(found.path, like=row.content_hash)
            if row.content_hash == digests[current]:
                today = digests.get(True) or content_hash(found.path)
                candidates.remove(row)
                return row, replace(found, content_hash=today)
    except OSError:
        pass
    return None
