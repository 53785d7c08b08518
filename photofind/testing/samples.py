"""Sample libraries: drawn pictures saved as real photo files.

``make_sample_library`` writes colour-shape pictures into nested folders in
JPEG, PNG, WebP and HEIC, with a non-ASCII file name, an EXIF-rotated JPEG
and a few 12-megapixel JPEGs, and returns what each file shows, so tests can
check search results against the truth.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from photofind.testing.shapes import CLASSES, draw_picture

FORMATS = (("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP"), ("heic", "HEIF"), ("jpg", "JPEG"))
FOLDERS = ("", "2023/summer", "2023/winter/trip", "misc", "phone/DCIM/100APPLE")


@dataclass(frozen=True)
class SamplePhoto:
    path: Path
    colour: str
    shape: str


def save_picture(img: Image.Image, path: Path, fmt: str, **extra: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "HEIF":
        from photofind.core.imaging import register_heif

        register_heif()
    options: dict[str, object] = {"quality": 90} if fmt in ("JPEG", "WEBP", "HEIF") else {}
    options.update(extra)
    img.save(path, fmt, **options)


def make_sample_library(dest: Path, per_class: int = 5, seed: int = 7, large: int = 3,
                        formats: tuple[tuple[str, str], ...] = FORMATS) -> list[SamplePhoto]:
    """Draw ``per_class`` pictures of every colour-shape pair into ``dest``."""
    rng = random.Random(seed)
    photos: list[SamplePhoto] = []
    n = 0
    for round_ in range(per_class):
        for colour, shape in CLASSES:
            ext, fmt = formats[n % len(formats)]
            folder = dest / FOLDERS[n % len(FOLDERS)]
            size = rng.choice([(400, 300), (300, 400), (360, 360), (480, 320)])
            name = f"{colour}-{shape}-{round_}.{ext}"
            if n == 3:
                name = f"café-ünïcødé-{colour}-{shape}.{ext}"
            path = folder / name
            img = draw_picture(colour, shape, size, rng)
            if n == 5 and fmt == "JPEG":
                # Stored sideways with an orientation tag, as cameras do.
                exif = Image.Exif()
                exif[0x0112] = 6
                save_picture(img.transpose(Image.Transpose.ROTATE_90), path, fmt,
                             exif=exif.tobytes())
            elif n < large * 10 and n % 10 == 0 and fmt == "JPEG":
                big = draw_picture(colour, shape, (4000, 3000), rng)
                save_picture(big, path, fmt)
            else:
                save_picture(img, path, fmt)
            photos.append(SamplePhoto(path, colour, shape))
            n += 1
    return photos
