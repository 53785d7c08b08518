"""The system trash: the one action in photofind that touches a user's file.

Photos go to the desktop's trash through ``send2trash`` (the freedesktop.org
trash on Linux, the Trash on macOS, the Recycle Bin on Windows), never
deleted for good, and only the photos the caller names, which the window asks
for only after a confirmation that says how many and where they go. A file
that changed since it was indexed (another size or time) is left where it is:
the user confirmed the picture they saw, not whatever is there now. The
catalog then forgets the photos that went (the next scan would anyway).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from photofind.core.errors import PhotofindError
from photofind.core.library import Library


@dataclass
class Trashed:
    moved: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (path, why it stayed)


def trash_location(paths: Sequence[str]) -> str:
    """Where ``paths`` go, in words for the confirmation."""
    if sys.platform == "darwin":
        return "the Trash"
    if sys.platform == "win32":
        return "the Recycle Bin"
    home = os.path.realpath(os.path.expanduser("~"))
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    places: list[str] = []
    for path in paths:
        try:
            same = os.lstat(path).st_dev == os.stat(home).st_dev
        except OSError:
            continue
        place = (f"the trash ({os.path.join(data, 'Trash')})" if same
                 else f"the trash folder of the drive at {_mount_point(path)}")
        if place not in places:
            places.append(place)
    return " and ".join(places) or "the trash"


def _mount_point(path: str) -> str:
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def move_to_trash(lib: Library, photo_ids: Sequence[int]) -> Trashed:
    """Send these photos' files to the trash and forget them (the writer only)."""
    from send2trash import send2trash

    if not lib.writer:
        raise PhotofindError("Moving photos to the trash needs the library's writer.")
    done = Trashed()
    gone: list[int] = []
    infos = lib.catalog.photo_info(list(photo_ids))
    for pid in photo_ids:
        row = lib.catalog.photo_by_path(infos[pid].path) if pid in infos else None
        if row is None or row.id != pid:
            continue  # already forgotten
        try:
            st = os.stat(row.path)
        except OSError as exc:
            done.kept.append((row.path, exc.strerror or "it cannot be read"))
            continue
        if (st.st_size, st.st_mtime_ns) != (row.size, row.mtime_ns):
            done.kept.append((row.path, "it changed since it was indexed"))
            continue
        try:
            send2trash(row.path)
        except OSError as exc:  # TrashPermissionError too
            done.kept.append((row.path, str(exc) or "the trash refused it"))
            continue
        done.moved.append(row.path)
        gone.append(pid)
    if gone:
        lib.catalog.delete_photos(gone)
        lib.thumbs.delete(gone)
        if lib.vectors.index() is not None:
            lib.vectors.forget(gone)
            lib.vectors.save()
    return done
