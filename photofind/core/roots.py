"""Which folders can be roots: one rule for every entry point (CLI, window, scan).

A root is stored resolved (absolute, symlinks followed), so two spellings of
one folder are one root. A folder equal to or inside a root is already
covered; a folder that contains roots absorbs them (their photos keep their
ids and embeddings). On a case-insensitive file system (macOS, Windows) paths
compare case-insensitively.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from photofind.core.catalog import Root
from photofind.core.errors import PhotofindError


def resolved(path: str) -> str:
    """The folder a path leads to: absolute, with ``~`` and symlinks resolved."""
    return str(Path(path).expanduser().resolve())


def folder_to_add(text: str) -> str:
    """A folder the user named, resolved; one sentence if it is not a folder."""
    path = Path(text).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise PhotofindError(f"{text} {what}.")
    return resolved(text)


@functools.lru_cache(maxsize=256)
def case_insensitive(folder: str) -> bool:
    """Whether the file system holding folder ignores case: tried on the last
    name in the path that has letters (guessed by platform if none has)."""
    path = Path(folder)
    for part in (path, *path.parents):
        if part.name.swapcase() != part.name:
            flipped = part.with_name(part.name.swapcase())
            try:
                return os.path.exists(flipped) and os.path.samefile(flipped, part)
            except OSError:
                return False
    return sys.platform in ("darwin", "win32")


def same_or_inside(path: str, folder: str) -> bool:
    """Whether path is folder or lies below it, as the file system compares names."""
    a, b = os.path.normcase(path), os.path.normcase(folder)
    if case_insensitive(folder):
        a, b = a.casefold(), b.casefold()
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)


def same(path: str, folder: str) -> bool:
    return same_or_inside(path, folder) and same_or_inside(folder, path)


def place(path: str, roots: Sequence[Root]) -> tuple[Root | None, list[Root]]:
    """(the root that already covers path, or None; the roots path would absorb)."""
    for root in roots:
        if same_or_inside(path, root.path):
            return root, []
    return None, [r for r in roots if same_or_inside(r.path, path)]


def find(text: str, roots: Sequence[Root]) -> Root | None:
    """The root a user means by a path: the path as written first (a root that
    became a link is still itself), else the folder it leads to."""
    asked = os.path.abspath(os.path.expanduser(text))
    for path in (asked, resolved(text)):
        for root in roots:
            if same(path, root.path):
                return root
    return None


def note_for(asked: str, real: str, covering: Root | None, absorbed: Sequence[Root]
             ) -> str | None:
    """The one sentence the user gets about where a folder went, if any."""
    if covering is not None:
        if same(real, covering.path):
            return None if asked == covering.path else \
                f"{asked} is {covering.path}, which is already a folder of the library."
        return f"{asked} is already covered by {covering.path}."
    if absorbed:
        names = ", ".join(r.path for r in absorbed)
        return f"{real} includes {names}, already in the library: merged into {real}."
    return None


def shadowed_by(root: Root, roots: Sequence[Root]) -> Root | None:
    """Another root this one now leads into (it was replaced by a symlink, say),
    so that walking it would index that root's photos twice."""
    real = os.path.realpath(root.path)
    if same(real, root.path):
        return None
    for other in roots:
        if other.id != root.id and same_or_inside(real, other.path):
            return other
    return None
