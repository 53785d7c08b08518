"""The photo to keep, and the perceptual hash that confirms near-identical copies."""

from __future__ import annotations

import random

from photofind.core.catalog import PhotoInfo
from photofind.core.duplicates import hash_distance, make_group, picture_hash
from photofind.testing.dupdata import NEAR
from photofind.testing.shapes import draw_picture


def info(pid: int, path: str, size: tuple[int, int], taken: str) -> PhotoInfo:
    return PhotoInfo(pid, path, True, size[0], size[1], taken, 1000)


def test_keep_the_largest_then_the_earliest_then_the_shortest_path() -> None:
    small_early = info(1, "/a.jpg", (800, 600), "2020-01-01T10:00:00")
    large_late = info(2, "/photos/2021/a.jpg", (4000, 3000), "2021-05-01T10:00:00")
    assert make_group("near", [small_early, large_late]).keep == large_late
    early = info(3, "/photos/backup/long/a.jpg", (800, 600), "2019-01-01T10:00:00")
    assert make_group("exact", [small_early, early]).keep == early
    short = info(4, "/b.jpg", (800, 600), "2020-01-01T10:00:00")
    longer = info(5, "/backup/b.jpg", (800, 600), "2020-01-01T10:00:00")
    group = make_group("exact", [longer, short])
    assert group.keep == short and group.others == (longer,)


def test_copies_are_within_the_threshold_and_another_drawing_is_not() -> None:
    rng = random.Random(1)
    picture = draw_picture("blue", "star", (480, 360), rng)
    original = picture_hash(picture)
    for how, (transform, *_rest) in NEAR.items():
        assert hash_distance(picture_hash(transform(picture)), original) <= 6, how
    other = picture_hash(draw_picture("yellow", "circle", (480, 360), rng))
    assert hash_distance(other, original) > 10
