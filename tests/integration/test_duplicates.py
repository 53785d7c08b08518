"""`photofind duplicates`: exact copies, near-identical copies and bursts of
drawn scenes are told apart from unrelated pictures, each with the photo to keep."""

from __future__ import annotations

import os
import random
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from photofind.testing.dupdata import NEAR, DupFile, write_scenes
from photofind.testing.shapes import CLASSES, draw_picture
from tests.conftest import Cli


def drawn_scenes(dest: Path, scenes: int = 3, distractors: int = 3) -> list[DupFile]:
    rng = random.Random(11)
    drawn = [(f"{c}-{s}", draw_picture(c, s, (480, 360), rng)) for c, s in CLASSES[:scenes]]
    # Distractors of the same classes, drawn again: alike for CLIP, other pictures.
    others = [(f"other-{c}-{s}", draw_picture(c, s, (480, 360), rng))
              for c, s in CLASSES[:distractors]]
    return write_scenes(dest, drawn, others)


@pytest.fixture(scope="module")
def indexed_scenes(tmp_path_factory: pytest.TempPathFactory, toy_model: str
                   ) -> tuple[Cli, list[DupFile]]:
    """Drawn scenes with their copies, indexed once for the module."""
    base = tmp_path_factory.mktemp("scenes")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOFIND_")}
    env.update(PHOTOFIND_LIBRARY=str(base / "library"), PHOTOFIND_MODEL=toy_model,
               PHOTOFIND_DEVICE="cpu", HF_HUB_OFFLINE="1")
    cli = Cli(base / "library", toy_model, env)
    files = drawn_scenes(base / "Pictures")
    assert cli.index(str(base / "Pictures"))["added"] == len(files)
    return cli, files


@pytest.fixture
def scenes(indexed_scenes: tuple[Cli, list[DupFile]]) -> list[DupFile]:
    return indexed_scenes[1]


def groups_of(cli: Cli, *args: str) -> list[dict[str, object]]:
    groups: list[dict[str, object]] = cli.json("duplicates", *args)
    return groups


def members(group: dict[str, object]) -> list[str]:
    others = group["others"]
    assert isinstance(others, list)
    return [str(group["keep"]), *others]


def test_tiers_find_copies_and_bursts_and_nothing_else(scenes: list[DupFile],
                                                       indexed_scenes: tuple[Cli, list[DupFile]]
                                                       ) -> None:
    cli = indexed_scenes[0]
    by_path = {str(f.path): f for f in scenes}
    groups = groups_of(cli)
    for tier in ("exact", "near", "similar"):
        seen = Counter(p for g in groups if g["tier"] == tier for p in members(g))
        assert max(seen.values()) == 1, f"a photo in two {tier} groups"
    for group in groups:
        files = [by_path[p] for p in members(group)]
        assert len({f.scene for f in files}) == 1, group  # never two scenes in one group
        assert all(f.kind != "distractor" for f in files), group
        kinds = {f.kind for f in files}
        if group["tier"] == "exact":
            assert kinds == {"original", "exact"}
            # Same size and date: the shorter path is kept, the backup is the other.
            assert by_path[str(group["keep"])].kind == "original"
        elif group["tier"] == "near":
            assert by_path[str(group["keep"])].kind == "original"  # the largest picture
            assert {f.how for f in files if f.kind == "near"} == set(NEAR), group
        else:
            assert "burst" in kinds and "near" not in kinds, group
    originals = [f for f in scenes if f.kind == "original"]
    assert Counter(g["tier"] for g in groups) == {"exact": len(originals),
                                                  "near": len(originals),
                                                  "similar": len(originals)}


def test_one_tier_and_plain_text(indexed_scenes: tuple[Cli, list[DupFile]]) -> None:
    cli = indexed_scenes[0]
    exact = groups_of(cli, "--tier", "exact")
    assert {g["tier"] for g in exact} == {"exact"} and len(exact) == 3
    text = cli.run("duplicates", "--tier", "exact").stdout.splitlines()
    assert text[0] == "[exact] 2 photos"
    assert text[1] == f"  keep   {exact[0]['keep']}"
    assert text[2] == f"  other  {members(exact[0])[1]}"


def test_old_rows_without_a_content_hash_are_hashed_only_where_they_collide(
        indexed_scenes: tuple[Cli, list[DupFile]]) -> None:
    cli = indexed_scenes[0]
    catalog = cli.library / "catalog.sqlite3"
    with sqlite3.connect(catalog) as db:
        db.execute("UPDATE photos SET content_hash = NULL")  # rows from an older catalog
    exact = groups_of(cli, "--tier", "exact")
    assert len(exact) == 3
    with sqlite3.connect(catalog) as db:
        hashed = {r[0] for r in db.execute(
            "SELECT path FROM photos WHERE content_hash IS NOT NULL")}
    # Kept for the next time (the command was the only photofind, so the writer),
    # and only for the files whose size and quick hash collide.
    assert hashed == {p for g in exact for p in members(g)}


def test_copies_hashed_the_way_before_still_pair_with_todays_and_are_brought_up(
        indexed_scenes: tuple[Cli, list[DupFile]]) -> None:
    """A catalog made before holds blake2b digests; a copy indexed since holds an
    xxh3 one. The copies still stack in the all-photos grid and group as exact,
    and the old digests are replaced by today's for the next time."""
    import hashlib

    from photofind.core.catalog import Catalog
    from photofind.core.duplicates import library_copies

    cli = indexed_scenes[0]
    catalog = cli.library / "catalog.sqlite3"
    exact = groups_of(cli, "--tier", "exact")
    old = [str(g["keep"]) for g in exact]  # one copy of each pair hashed the old way
    with sqlite3.connect(catalog) as db:
        for path in old:
            with open(path, "rb") as fh:
                digest = hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=20))
            db.execute("UPDATE photos SET content_hash = ? WHERE path = ?",
                       (digest.hexdigest(), path))
    listing = Catalog(catalog)
    stacks = library_copies(listing)
    shown = listing.photo_info(list(stacks))
    listing.close()
    assert sorted(sorted([shown[k].path, *(o.path for o in v)]) for k, v in stacks.items()) \
        == sorted(sorted(members(g)) for g in exact)
    assert groups_of(cli, "--tier", "exact") == exact
    with sqlite3.connect(catalog) as db:
        digests = [r[0] for r in db.execute("SELECT content_hash FROM photos WHERE path IN"
                                            f" ({','.join('?' * len(old))})", old)]
    assert len(digests) == 3 and all(d.startswith("xxh3-128:") for d in digests)


def test_indexing_a_new_copy_rehashes_the_copy_hashed_the_way_before(cli: Cli,
                                                                     tmp_path: Path) -> None:
    import hashlib
    import shutil

    root = tmp_path / "Pictures"
    root.mkdir()
    draw_picture(*CLASSES[0], (320, 240), random.Random(3)).save(root / "a.jpg")
    cli.index(str(root))
    catalog = cli.library / "catalog.sqlite3"
    with open(root / "a.jpg", "rb") as fh:
        old = hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=20)).hexdigest()
    with sqlite3.connect(catalog) as db:  # as a catalog from before left it
        db.execute("UPDATE photos SET content_hash = ?", (old,))
    shutil.copy2(root / "a.jpg", root / "copy of a.jpg")
    cli.index(str(root))
    with sqlite3.connect(catalog) as db:
        digests = {r[0] for r in db.execute("SELECT content_hash FROM photos")}
    assert len(digests) == 1 and next(iter(digests)).startswith("xxh3-128:")


def test_a_library_without_duplicates_says_so(cli: Cli, tmp_path: Path) -> None:
    rng = random.Random(2)
    root = tmp_path / "Pictures"
    root.mkdir()
    for n, (c, s) in enumerate(CLASSES[:4]):
        draw_picture(c, s, (320, 240), rng).save(root / f"{n}.png")
    cli.index(str(root))
    assert groups_of(cli) == []
    proc = cli.run("duplicates")
    assert proc.stdout == "" and proc.stderr.strip() == "No duplicates found."
