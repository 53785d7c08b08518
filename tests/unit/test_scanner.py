"""The walk finds photos and nothing else, and never hangs on odd files."""

from __future__ import annotations

import os
from pathlib import Path

from photofind.core.catalog import Catalog
from photofind.core.scanner import BROKEN_LINK, NOT_A_FILE, root_online, walk


def test_walk_skips_hidden_caches_odd_files_and_the_library(tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    (root / "trip").mkdir(parents=True)
    (root / ".thumbnails").mkdir()
    (root / "@eaDir").mkdir()
    (root / "library").mkdir()
    for rel in ("a.jpg", "trip/b.HEIC", "trip/c.webp", ".thumbnails/t.jpg", "@eaDir/x.jpg",
                ".hidden.jpg", "notes.txt", "library/cache.jpg"):
        (root / rel).write_bytes(b"x")
    os.mkfifo(root / "pipe.jpg")
    (root / "zero.jpg").symlink_to("/dev/zero")
    (root / "loop").symlink_to(root)  # a folder loop
    (root / "gone.jpg").symlink_to(root / "nowhere.jpg")
    found = {Path(e.path).relative_to(root).as_posix(): e.problem
             for e in walk(root, skip=root / "library")}
    # odd files are named with their problem (listed as failed), never opened
    assert found == {"a.jpg": None, "trip/b.HEIC": None, "trip/c.webp": None,
                     "pipe.jpg": NOT_A_FILE, "zero.jpg": NOT_A_FILE, "gone.jpg": BROKEN_LINK}


def test_missing_and_empty_mount_points_are_offline(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    gone = catalog.add_root(str(tmp_path / "gone"))
    assert not root_online(catalog, gone)
    empty = tmp_path / "mnt"
    empty.mkdir()
    root = catalog.add_root(str(empty))
    assert root_online(catalog, root)  # a new, empty folder is fine
