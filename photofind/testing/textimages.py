"""Pictures with known words in them, drawn with Pillow, to test reading text.

Each ``Sample`` is one picture and the words printed on it, under one
condition: a font, a size, a rotation (0/90/180/270), a noisy photo-like
background, a receipt-like layout or a screenshot-like one. The fonts are
Pillow's own (always there) and the DejaVu faces where the system has them.
Pictures are small (the reader is slow on two cores).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/TTF",
             "/Library/Fonts", "C:/Windows/Fonts")
FACES = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")
WORDS = ("harbor", "lantern", "velvet", "orchard", "granite", "meadow", "copper", "falcon",
         "winter", "basket", "marble", "candle", "saddle", "timber", "garden", "violin",
         "rocket", "pepper", "bridge", "silver")
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class Sample:
    name: str  # a file name stem
    condition: str  # "font:serif", "size:18", "rotate:90", "noisy", "receipt", "screenshot"
    image: Image.Image
    words: tuple[str, ...]  # the words printed on it


def font(size: int, face: str | None = None) -> Font:
    """A TrueType face by file name where the system has it, else Pillow's own."""
    for folder in FONT_DIRS if face else ():
        path = Path(folder) / str(face)
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def faces() -> dict[str, str | None]:
    """Condition name -> face file (None: Pillow's built-in font)."""
    found: dict[str, str | None] = {"pillow": None}
    for face in FACES:
        if any((Path(d) / face).is_file() for d in FONT_DIRS):
            found[face.removesuffix(".ttf").removeprefix("DejaVu").lower()] = face
    return found


def plain(words: list[str], size: int = 30, face: str | None = None,
          background: tuple[int, int, int] = (235, 232, 222)) -> Image.Image:
    """Two lines of words, dark on a light card."""
    img = Image.new("RGB", (520, 200), background)
    draw = ImageDraw.Draw(img)
    f = font(size, face)
    half = (len(words) + 1) // 2
    draw.text((24, 40), " ".join(words[:half]).upper(), font=f, fill=(25, 25, 30))
    draw.text((24, 40 + int(size * 1.8)), " ".join(words[half:]), font=f, fill=(25, 25, 30))
    return img


def photo_like(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A noisy, blurred background with blobs of colour, like a photo's."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([90 + 80 * np.sin(x / w * 3 + c) * np.cos(y / h * 2 - c)
                     for c in (0.0, 1.3, 2.6)], axis=-1)
    img = Image.fromarray(np.clip(base + 60, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        cx, cy, r = rng.randrange(w), rng.randrange(h), rng.randrange(15, 60)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r),
                     fill=tuple(rng.randrange(40, 220) for _ in range(3)))
    img = img.filter(ImageFilter.GaussianBlur(3))
    noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 14, (h, w, 3))
    return Image.fromarray(np.clip(np.asarray(img) + noise, 0, 255).astype(np.uint8))


def sign_on_photo(words: list[str], rng: random.Random) -> Image.Image:
    """A sign (a light panel with the words) in a noisy, photo-like scene."""
    img = photo_like((560, 380), rng)
    draw = ImageDraw.Draw(img)
    draw.rectangle((60, 110, 500, 270), fill=(240, 236, 214), outline=(60, 50, 40), width=4)
    f = font(34, "DejaVuSans-Bold.ttf")
    draw.text((84, 130), words[0].upper(), font=f, fill=(30, 60, 30))
    draw.text((84, 200), " ".join(words[1:]).upper(), font=f, fill=(30, 60, 30))
    noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 10, (380, 560, 3))
    return Image.fromarray(np.clip(np.asarray(img) + noise, 0, 255).astype(np.uint8))


def receipt(items: list[tuple[str, str]], shop: str, total: str) -> Image.Image:
    """A till receipt: a shop name, items with prices, a total, on a table."""
    img = Image.new("RGB", (420, 560), (92, 70, 52))
    draw = ImageDraw.Draw(img)
    draw.rectangle((70, 20, 350, 540), fill=(246, 244, 238))
    mono = font(20, "DejaVuSansMono.ttf")
    draw.text((95, 45), shop.upper(), font=font(24, "DejaVuSansMono-Bold.ttf"), fill=(20, 20, 20))
    y = 110
    for name, price in items:
        draw.text((95, y), name.upper(), font=mono, fill=(30, 30, 30))
        draw.text((330 - draw.textlength(price, font=mono), y), price, font=mono,
                  fill=(30, 30, 30))
        y += 40
    draw.line((95, y + 5, 330, y + 5), fill=(60, 60, 60), width=2)
    draw.text((95, y + 20), "TOTAL", font=mono, fill=(10, 10, 10))
    draw.text((330 - draw.textlength(total, font=mono), y + 20), total, font=mono,
              fill=(10, 10, 10))
    return img


def screenshot(title: str, menu: list[str], body: list[str]) -> Image.Image:
    """A window: a title bar, a menu row, a side bar and lines of text."""
    img = Image.new("RGB", (640, 400), (250, 250, 252))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 640, 36), fill=(48, 52, 64))
    draw.text((16, 7), title, font=font(20, "DejaVuSans.ttf"), fill=(235, 235, 240))
    draw.rectangle((0, 36, 640, 66), fill=(226, 228, 234))
    x = 16
    small = font(17, "DejaVuSans.ttf")
    for item in menu:
        draw.text((x, 42), item, font=small, fill=(30, 30, 40))
        x += int(draw.textlength(item, font=small)) + 28
    draw.rectangle((0, 66, 130, 400), fill=(238, 240, 245))
    for i, line in enumerate(body):
        draw.text((150, 90 + i * 34), line, font=small, fill=(20, 20, 30))
    return img


def samples(seed: int = 0, rotations: tuple[int, ...] = (0, 90, 180, 270)) -> list[Sample]:
    """One picture per condition, each with words of its own."""
    rng = random.Random(seed)
    words = list(WORDS)
    rng.shuffle(words)
    out: list[Sample] = []

    def take(n: int) -> list[str]:
        picked = [words[(len(out) * 3 + i) % len(words)] for i in range(n)]
        return picked

    for name, face in faces().items():
        w = take(4)
        out.append(Sample(f"font-{name}", f"font:{name}", plain(w, 30, face), tuple(w)))
    for size in (18, 44):
        w = take(4)
        out.append(Sample(f"size-{size}", f"size:{size}", plain(w, size, "DejaVuSans.ttf"),
                          tuple(w)))
    for angle in rotations:
        w = take(4)
        img = plain(w, 30, "DejaVuSans.ttf").rotate(angle, expand=True)
        out.append(Sample(f"rotate-{angle}", f"rotate:{angle}", img, tuple(w)))
    w = take(3)
    out.append(Sample("noisy-sign", "noisy", sign_on_photo(w, rng), tuple(w)))
    items = [("hammer", "12.99"), ("nails", "3.50"), ("paint", "26.01")]
    shop = "Hardware Store"
    out.append(Sample("receipt", "receipt", receipt(items, shop, "42.50"),
                      ("hardware", "store", "hammer", "12.99", "nails", "3.50", "paint",
                       "26.01", "total", "42.50")))
    body = ["Quarterly revenue grew", "Meeting notes for Tuesday", "Budget review pending"]
    menu = ["File", "Edit", "View", "Help"]
    out.append(Sample("screenshot", "screenshot", screenshot("Report Editor", menu, body),
                      tuple(" ".join(["Report Editor", *menu, *body]).lower().split())))
    return out


def save(samples_: list[Sample], folder: Path) -> dict[str, Path]:
    """Write the samples as JPEGs (quality 92) into folder; name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for s in samples_:
        path = folder / f"{s.name}.jpg"
        s.image.save(path, quality=92)
        paths[s.name] = path
    return paths
