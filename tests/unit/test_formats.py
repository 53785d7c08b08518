"""RAW files, multi-picture JPEGs and taken dates: what the decode makes of them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photofind.core.imaging import Decoded, Failed, Preprocess, decode_file, open_photo
from photofind.gui.previewdecode import decode_scaled
from tests.rawfiles import write_dng

PRE = Preprocess(224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
RED, BLUE, GREEN, YELLOW = (220, 30, 30), (30, 60, 220), (30, 170, 40), (240, 220, 30)


def halves(size: tuple[int, int], left: tuple[int, int, int], right: tuple[int, int, int]
           ) -> Image.Image:
    img = Image.new("RGB", size, left)
    img.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return img


def colour_of(img: Image.Image, box: tuple[float, float, float, float]) -> str:
    """The nearest of the four colours to the mean of a box (fractions of the size)."""
    w, h = img.size
    crop = img.crop((int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)))
    mean = np.asarray(crop, dtype=np.float64).reshape(-1, 3).mean(axis=0)
    names = {"red": RED, "blue": BLUE, "green": GREEN, "yellow": YELLOW}
    return min(names, key=lambda n: float(np.linalg.norm(mean - np.array(names[n]))))


TOP, BOTTOM = (0.2, 0.05, 0.8, 0.3), (0.2, 0.7, 0.8, 0.95)


def test_a_dng_without_a_preview_is_demosaiced_turned_and_dated(tmp_path: Path) -> None:
    # Stored as the sensor saw it (red left, blue right); orientation 6 turns it
    # a quarter clockwise for display: red on top, a portrait.
    path = write_dng(tmp_path / "IMG_0001.dng", halves((400, 300), RED, BLUE), orientation=6,
                     date="2019:06:21 10:11:12")
    opened = open_photo(str(path), draft_size=256, min_side=224)
    assert (opened.width, opened.height) == (300, 400)
    assert opened.image.height > opened.image.width
    assert (colour_of(opened.image, TOP), colour_of(opened.image, BOTTOM)) == ("red", "blue")
    assert (opened.taken_at, opened.taken_source) == ("2019-06-21T10:11:12", "exif-original")
    decoded = decode_file(str(path), PRE)
    assert isinstance(decoded, Decoded) and decoded.pixels.shape == (224, 224, 3)
    assert (decoded.width, decoded.height, decoded.taken_source) == (300, 400, "exif-original")


@pytest.mark.parametrize(("orientation", "top", "bottom"), [
    (8, "yellow", "green"),  # a quarter anticlockwise: the left side goes down
    (6, "green", "yellow"),  # a quarter clockwise: the left side goes up
])
def test_a_preview_that_covers_the_model_is_used_and_turned_like_the_raw(
        tmp_path: Path, orientation: int, top: str, bottom: str) -> None:
    # The preview shows other colours than the sensor data, so the pixels say
    # which was decoded.
    path = write_dng(tmp_path / "a.dng", halves((600, 400), RED, BLUE),
                     preview=halves((480, 320), GREEN, YELLOW), orientation=orientation)
    opened = open_photo(str(path), draft_size=256, min_side=224)
    assert (opened.width, opened.height) == (400, 600)
    assert (colour_of(opened.image, TOP), colour_of(opened.image, BOTTOM)) == (top, bottom)
    assert opened.taken_at is None  # no date in the file: the indexer dates it by mtime

    # Too small for the model's input (or the viewer's size): the sensor data.
    small = write_dng(tmp_path / "b.dng", halves((600, 400), RED, BLUE),
                      preview=halves((150, 100), GREEN, YELLOW))
    opened = open_photo(str(small), draft_size=256, min_side=224)
    assert colour_of(opened.image, (0.05, 0.2, 0.3, 0.8)) == "red"
    assert colour_of(opened.image, (0.7, 0.2, 0.95, 0.8)) == "blue"
    scaled = decode_scaled(str(path), 64)  # the viewer's path
    assert (scaled.full_width, scaled.full_height) == (400, 600)
    assert max(scaled.width, scaled.height) == 64 and scaled.height > scaled.width


def test_bad_raw_files_give_reasons(tmp_path: Path) -> None:
    (tmp_path / "notes.nef").write_text("not a raw file")
    good = write_dng(tmp_path / "good.dng", halves((400, 300), RED, BLUE))
    (tmp_path / "cut.dng").write_bytes(good.read_bytes()[:2000])
    assert decode_file(str(tmp_path / "notes.nef"), PRE) == Failed("not an image")
    assert decode_file(str(tmp_path / "cut.dng"), PRE) == Failed("truncated")


def test_a_sensor_past_the_workers_pixel_limit_fails_as_too_large(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_dng(tmp_path / "big.dng", halves((400, 300), RED, BLUE))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400 * 300 - 1)  # what a worker's cap sets
    assert decode_file(str(path), PRE) == Failed("too large")


def test_an_mpo_is_read_as_its_first_picture(tmp_path: Path) -> None:
    path = tmp_path / "3ds.mpo"
    first, second = Image.new("RGB", (640, 480), RED), Image.new("RGB", (640, 480), BLUE)
    first.save(path, "MPO", save_all=True, append_images=[second])
    assert Image.open(path).format == "MPO" and getattr(Image.open(path), "n_frames", 1) == 2
    decoded = decode_file(str(path), PRE)
    assert isinstance(decoded, Decoded)
    assert colour_of(Image.fromarray(decoded.pixels), (0, 0, 1, 1)) == "red"
    assert (decoded.width, decoded.height) == (640, 480)


def _jpeg_with(tmp_path: Path, name: str, ifd0: dict[int, str], exif_ifd: dict[int, str]
               ) -> str:
    exif = Image.Exif()
    for tag, value in ifd0.items():
        exif[tag] = value
    sub = exif.get_ifd(0x8769)
    for tag, value in exif_ifd.items():
        sub[tag] = value
    path = tmp_path / name
    Image.new("RGB", (64, 48), RED).save(path, exif=exif.tobytes())
    return str(path)


@pytest.mark.parametrize(("ifd0", "exif_ifd", "expected"), [
    ({306: "2020:01:01 00:00:01"}, {36867: "2019:06:21 10:11:12", 36868: "2019:06:22 09:00:00"},
     ("2019-06-21T10:11:12", "exif-original")),
    ({306: "2020:01:01 00:00:01"}, {36868: "2019:06:22 09:00:00"},
     ("2019-06-22T09:00:00", "exif-digitized")),
    ({306: "2020:01:01 00:00:01"}, {36867: "0000:00:00 00:00:00"},
     ("2020-01-01T00:00:01", "exif")),
    ({}, {36867: "    "}, (None, None)),
])
def test_the_taken_date_is_the_best_exif_date_there_is(
        tmp_path: Path, ifd0: dict[int, str], exif_ifd: dict[int, str],
        expected: tuple[str | None, str | None]) -> None:
    opened = open_photo(_jpeg_with(tmp_path, "a.jpg", ifd0, exif_ifd), draft_size=None)
    assert (opened.taken_at, opened.taken_source) == expected


def test_a_raw_thumbnail_is_made_again_in_the_decode_workers(tmp_path: Path) -> None:
    from photofind.core.thumbs import ThumbStore, make_thumbnails

    path = write_dng(tmp_path / "a.dng", halves((400, 300), RED, BLUE), orientation=6)
    store = ThumbStore(tmp_path / "thumbs.sqlite3")
    assert make_thumbnails(store, [(7, str(path))]) == 1
    jpeg = store.get(7)
    assert jpeg is not None
    thumb = Image.open(io.BytesIO(jpeg))
    assert thumb.height > thumb.width and colour_of(thumb.convert("RGB"), TOP) == "red"
