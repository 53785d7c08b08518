"""The file record: one photo file as it flows from the scanner to the catalog.

The scanner fills in where a file is and what identifies it (root, path,
size, mtime, device, inode, ctime); a decode adds what it learnt (the quick
hash, the content hash, the displayed size, the taken date);
the catalog stores it and reads it back as the same type, with its photo id
and status. Every field but the first four is keyword-only.

``quick_hash`` is ``imaging.partial_hash`` (size plus the first and last 64
KiB): it only picks candidates for moves and duplicates; ``content_hash``
(the whole file) is what confirms them.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass


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
    taken_at: str | None = None  # ISO 8601, local time
    status: str | None = None  # "ok" | "failed" once in the catalog
    reason: str | None = None  # why it failed
    problem: str | None = None  # found by the scanner, failed without being opened

