"""Camera files are photos like any other: RAW files (with and without a preview),
multi-picture JPEGs and RAW+JPEG pairs are indexed, found by what they show,
upright, sized as displayed and dated; a RAW+JPEG shot shows once.

Through the real CLI (decode workers and all) with the toy CLIP; the RAW files
are DNGs the test writes (tests/rawfiles.py).
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from pathlib import Path

from PIL import Image

from photofind.core.catalog import Catalog
from photofind.testing.samples import save_picture
from photofind.testing.shapes import caption, draw_picture
from tests.conftest import Cli
from tests.rawfiles import write_dng

FILLERS = (("purple", "square"), ("red", "star"), ("green", "circle"), ("blue", "triangle"),
           ("yellow", "square"))


def _rows(cli: Cli) -> dict[str, tuple[int, int, str, str, str | None]]:
    db = sqlite3.connect(cli.library / "catalog.sqlite3")
    try:
        return {Path(r[0]).name: r[1:] for r in db.execute(
            "SELECT path, width, height, taken_at, taken_source, siblings FROM photos"
            " WHERE status = 'ok'")}
    finally:
        db.close()


def test_raw_mpo_and_raw_jpeg_pairs_are_found_upright_sized_and_dated(cli: Cli,
                                                                      tmp_path: Path) -> None:
    rng = random.Random(11)
    root = tmp_path / "Pictures"
    root.mkdir()

    def picture(colour: str, shape: str, size: tuple[int, int] = (400, 300)) -> Image.Image:
        return draw_picture(colour, shape, size, rng)

    # Fillers, so a search has other photos to rank below the right one.
    for colour, shape in FILLERS:
        save_picture(picture(colour, shape), root / f"{colour}-{shape}.jpg", "JPEG")
    # A portrait JPEG stored sideways, as phones do (orientation 6).
    exif = Image.Exif()
    exif[0x0112] = 6
    save_picture(picture("purple", "star", (300, 400)).transpose(Image.Transpose.ROTATE_90),
                 root / "portrait.jpg", "JPEG", exif=exif.tobytes())
    # A DNG stored sideways with orientation 6 (turn a quarter clockwise), dated,
    # without a preview: demosaiced.
    write_dng(root / "IMG_0001.dng",
              picture("red", "circle").transpose(Image.Transpose.ROTATE_90),
              orientation=6, date="2019:06:21 10:11:12")
    # A DNG with a preview large enough for the model, undated: its file time dates it.
    square = picture("blue", "square", (600, 400))
    write_dng(root / "IMG_0002.dng", square, preview=square.resize((450, 300)))
    os.utime(root / "IMG_0002.dng", (1_500_000_000, 1_500_000_000))
    # RAW+JPEG: one shot, two files.
    triangle = picture("green", "triangle")
    save_picture(triangle, root / "DSC_0003.JPG", "JPEG")
    write_dng(root / "DSC_0003.DNG", triangle)
    # A 3DS-style multi-picture JPEG: its first picture is the photo.
    star = picture("yellow", "star")
    star.save(root / "stereo.mpo", "MPO", save_all=True,
              append_images=[picture("purple", "circle")])

    report = cli.index(str(root))
    assert report["added"] == len(FILLERS) + 5 and report["failed"] == 0, report

    def top(colour: str, shape: str) -> list[str]:
        return [Path(r["path"]).name for r in cli.search(caption(colour, shape), limit=3)]

    assert top("red", "circle")[0] == "IMG_0001.dng"
    assert top("blue", "square")[0] == "IMG_0002.dng"
    assert top("yellow", "star")[0] == "stereo.mpo"
    assert top("green", "triangle")[0] == "DSC_0003.JPG"
    every = [Path(r["path"]).name for r in cli.search("a photo", limit=100)]
    assert "DSC_0003.DNG" not in every and every.count("DSC_0003.JPG") == 1

    rows = _rows(cli)
    mtime_date = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(1_500_000_000))
    assert rows["IMG_0001.dng"][:4] == (400, 300, "2019-06-21T10:11:12", "exif-original")
    assert rows["IMG_0002.dng"][:4] == (600, 400, mtime_date, "mtime")
    assert rows["stereo.mpo"][:2] == (400, 300)
    assert rows["portrait.jpg"][:2] == (300, 400)  # as displayed: a portrait
    assert rows["DSC_0003.JPG"][4] == f'["{root / "DSC_0003.DNG"}"]'

    # The preview names the RAW beside the JPEG.
    from photofind.gui.data import Hit
    from photofind.gui.models import describe

    catalog = Catalog(cli.library / "catalog.sqlite3", read_only=True)
    try:
        jpeg = catalog.photo_by_path(str(root / "DSC_0003.JPG"))
        assert jpeg is not None
        info = catalog.photo_info([jpeg.id])[jpeg.id]
    finally:
        catalog.close()
    assert "DSC_0003.DNG" in describe(Hit(info, None))

    # Without its JPEG the RAW is a photo of its own; nothing else is read again.
    (root / "DSC_0003.JPG").unlink()
    again = cli.index()
    assert (again["added"], again["removed"], again["embedded"]) == (1, 1, 1), again
    assert top("green", "triangle")[0] == "DSC_0003.DNG"
    assert _rows(cli)["DSC_0003.DNG"][4] is None
