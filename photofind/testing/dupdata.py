"""Duplicate test data: copies of pictures, exact and transformed, bursts, and
unrelated distractors, written as files with the truth about each.

Every original is a "scene". Its exact copy is the same bytes; its near
copies are the same picture resized, recompressed, re-encoded as HEIC,
cropped by 4%, turned by 90 degrees, or colour-shifted; its burst shots are
the same scene reframed (shifted by 15%) a few seconds later. Distractors are
other scenes, hours apart. File times say when a picture was taken (no EXIF):
copies are made a day later, bursts within a minute.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageEnhance

from photofind.testing.samples import save_picture

BASE_TIME = 1_600_000_000  # seconds; scene i is taken at BASE_TIME + i * SCENE_GAP
SCENE_GAP = 3 * 3600
COPY_DELAY = 86_400  # copies are exported a day after the scene


@dataclass(frozen=True)
class DupFile:
    path: Path
    scene: str
    kind: str  # "original" | "exact" | "near" | "burst" | "distractor"
    how: str = ""  # the transform of a near copy or burst


def _resize(img: Image.Image) -> Image.Image:
    return img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)


def _crop(img: Image.Image) -> Image.Image:
    dx, dy = img.width // 25, img.height // 25
    return img.crop((dx, dy, img.width - dx, img.height - dy))


def _colour(img: Image.Image) -> Image.Image:
    warmer = img.convert("RGB").point(lambda v: min(255, int(v * 1.08 + 6)))
    return ImageEnhance.Color(warmer).enhance(1.25)


def _turn(img: Image.Image) -> Image.Image:
    return img.rotate(-90, expand=True)


# name -> (transform, file suffix, Pillow format, save options)
NEAR: dict[str, tuple[Callable[[Image.Image], Image.Image], str, str, dict[str, object]]] = {
    "resize": (_resize, "jpg", "JPEG", {"quality": 90}),
    "recompress": (lambda img: img, "jpg", "JPEG", {"quality": 35}),
    "heic": (lambda img: img, "heic", "HEIF", {"quality": 70}),
    "crop": (_crop, "jpg", "JPEG", {"quality": 90}),
    "rotate": (_turn, "png", "PNG", {}),
    "colour": (_colour, "jpg", "JPEG", {"quality": 90}),
}


def _reframe(img: Image.Image, step: int) -> Image.Image:
    """The scene framed again: a 15% shift, as a hand-held burst moves."""
    dx, dy = img.width * 15 // 100, img.height * 15 // 100
    box = ((dx, 0, img.width, img.height - dy) if step % 2
           else (0, dy, img.width - dx, img.height))
    return img.crop(box).resize(img.size, Image.Resampling.BICUBIC)


def write_scenes(dest: Path, scenes: list[tuple[str, Image.Image]], distractors:
                 list[tuple[str, Image.Image]], seed: int = 3, bursts: int = 2
                 ) -> list[DupFile]:
    """Each scene as an original (JPEG) with an exact copy, every near copy and
    ``bursts`` burst shots; the distractors as originals alone."""
    rng = random.Random(seed)
    files: list[DupFile] = []
    dest.mkdir(parents=True, exist_ok=True)
    for n, (name, img) in enumerate(scenes + distractors):
        taken = BASE_TIME + n * SCENE_GAP
        kind = "original" if n < len(scenes) else "distractor"
        original = dest / f"{name}.jpg"
        save_picture(img.convert("RGB"), original, "JPEG", quality=92)
        os.utime(original, (taken, taken))
        files.append(DupFile(original, name, kind))
        if kind == "distractor":
            continue
        copy = dest / "backup" / f"{name}.jpg"
        copy.parent.mkdir(exist_ok=True)
        shutil.copy2(original, copy)
        files.append(DupFile(copy, name, "exact"))
        for how, (transform, suffix, fmt, options) in NEAR.items():
            path = dest / "exports" / how / f"{name}.{suffix}"
            save_picture(transform(img.convert("RGB")), path, fmt, **options)
            os.utime(path, (taken + COPY_DELAY, taken + COPY_DELAY))
            files.append(DupFile(path, name, "near", how))
        for step in range(1, bursts + 1):
            path = dest / "burst" / f"{name}-{step}.jpg"
            save_picture(_reframe(img.convert("RGB"), step), path, "JPEG", quality=90)
            when = taken + 5 * step + rng.randint(0, 20)
            os.utime(path, (when, when))
            files.append(DupFile(path, name, "burst", f"shot {step}"))
    return files


def truth_tier(a: DupFile, b: DupFile) -> str | None:
    """The strictest tier the pair belongs to, or None when unrelated."""
    if a.scene != b.scene or "distractor" in (a.kind, b.kind):
        return None
    kinds = {a.kind, b.kind}
    if kinds <= {"original", "exact"}:
        return "exact"
    if "burst" in kinds:
        return "similar"
    return "near"
