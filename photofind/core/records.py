"""The file record: one photo file as it flows from the scanner to the catalog.

The scanner fills in where a file is and what identifies it (root, path,
size, mtime, device, inode, ctime); a decode adds what it learnt (the quick
hash, the content hash, the displayed size, the taken date and where that
date came from); the catalog stores it and reads it back as the same type,
with its photo id and status. Every field but the first four is keyword-only.

A RAW file beside a picture of the same name in its folder (RAW+JPEG
shooting) is not a photo of its own: it is listed in the picture's
``siblings``, so the shot shows once.

``quick_hash`` is ``imaging.partial_hash`` (size plus the first and last 64
KiB): it only picks candidates for moves and duplicates; ``content_hash``
(the whole file) is what confirms them.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import Literal

# Camera RAW files (read through rawpy; lower case, with the dot).
RAW_EXTENSIONS = frozenset(
    {".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf", ".pef", ".srw"})
# Where a taken date came from: EXIF DateTimeOriginal, DateTimeDigitized,
# DateTime, else the file's modification time.
TakenSource = Literal["exif-original", "exif-digitized", "exif", "mtime"]


@dataclass(frozen=True)
class FileRecord:
    root_id: int
    path: str  # for a bad name, a readable stand-in (never opened)
    size: int
    mtime_ns: int
    _: KW_ONLY
    id: int = 0  # the photo's id in the catalog (or the one it replaces); 0: none yet
    quick_hash: str = ""
    content_hash: str | None = None  # hash of the whole file (imaging.content_hash)
    dev: int | None = None  # device of the file (so of its folder); None before it was known
    ino: int | None = None
    ctime_ns: int | None = None
    width: int | None = None  # as displayed (after EXIF orientation)
    height: int | None = None
    taken_at: str | None = None  # ISO 8601, local time (seconds)
    taken_source: TakenSource | None = None  # None in rows from before it was kept
    status: str | None = None  # "ok" | "failed" once in the catalog
    reason: str | None = None  # why it failed
    siblings: tuple[str, ...] = ()  # RAW files of the same shot (paths)
    problem: str | None = None  # found by the scanner, failed without being opened


def mtime_date(mtime_ns: int) -> str:
    """A file time as a taken date: ISO 8601 local time, to the second."""
    return datetime.fromtimestamp(mtime_ns // 1_000_000_000).isoformat()
