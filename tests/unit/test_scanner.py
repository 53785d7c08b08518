"""The walk finds photos and nothing else, and never hangs on odd files."""

from __future__ import annotations

import os
from pathlib import Path

from photofind.core.scanner import root_is_online, walk


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
    found = sorted(Path(p).relative_to(root).as_posix()
                   for p, _, _, _ in walk(root, skip=root / "library"))
    assert found == ["a.jpg", "trip/b.HEIC", "trip/c.webp"]


def test_missing_unreadable_and_empty_mount_points_are_offline(tmp_path: Path) -> None:
    assert not root_is_online(tmp_path / "gone", known_photos=0)
    empty = tmp_path / "mnt"
    empty.mkdir()
    assert root_is_online(empty, known_photos=0)  # a new, empty folder is fine
    assert not root_is_online(empty, known_photos=12)  # but not where photos were
    (empty / "x.jpg").write_bytes(b"x")
    assert root_is_online(empty, known_photos=12)
