"""The photo to keep, and the perceptual hash that confirms near-identical copies."""

from __future__ import annotations

import random

from photofind.core.catalog import PhotoInfo
from photofind.core.duplicates import hash_distance, make_group, picture_hash
from photofind.core.imaging import content_hash, is_current_hash
from photofind.testing.dupdata import NEAR
from photofind.testing.shapes import CLASSES, draw_picture


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


def test_the_dct_hash_has_the_bits_of_imagehash_phash() -> None:
    """Our numpy DCT hash (the app carries no SciPy) equals imagehash's phash, so
    the thresholds measured with it and the hashes cached in libraries hold."""
    import imagehash
    import numpy as np
    from PIL import Image

    from photofind.core.duplicates import dct_hash

    rng = random.Random(3)
    pictures = [draw_picture(c, s, (400, 300), rng) for c, s in CLASSES[:12]]
    pictures += [Image.fromarray((np.random.default_rng(i).random((240, 320, 3)) * 255)
                                 .astype("uint8")) for i in range(8)]
    for picture in pictures:
        grey = picture.convert("L")
        assert dct_hash(grey) == str(imagehash.phash(grey))


def test_copies_that_cannot_be_read_now_keep_the_digests_they_pair_by(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two copies hashed the way before, on a drive that is away, and a third
    copy hashed today: the two still pair by their stored digests."""
    from photofind.core.duplicates import _comparable, _Row

    here = tmp_path / "c.jpg"
    here.write_bytes(b"the same bytes")
    st = here.stat()
    rows = [_Row(1, st.st_size, "q", "ab" * 20, st.st_mtime_ns),
            _Row(2, st.st_size, "q", "ab" * 20, st.st_mtime_ns),
            _Row(3, st.st_size, "q", content_hash(str(here)), st.st_mtime_ns)]
    paths = {1: "/gone/a.jpg", 2: "/gone/b.jpg", 3: str(here)}
    got = _comparable(rows, paths.__getitem__)
    assert got == {1: "ab" * 20, 2: "ab" * 20, 3: content_hash(str(here))}
    assert _comparable(rows[:2], paths.__getitem__) == {1: "ab" * 20, 2: "ab" * 20}


def test_a_file_is_hashed_the_way_the_digest_it_meets_was(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    photo = tmp_path / "a.jpg"
    photo.write_bytes(bytes(range(256)) * 100)
    today = content_hash(str(photo))
    before = hashlib.blake2b(photo.read_bytes(), digest_size=20).hexdigest()
    assert is_current_hash(today) and not is_current_hash(before)
    assert content_hash(str(photo), like=before) == before
    assert content_hash(str(photo), like=today) == today
