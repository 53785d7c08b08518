"""Procedurally drawn pictures: a coloured shape on a varied background.

Both the toy CLIP trainer and the sample-library maker draw with this, so the
toy model sees at training time what the tests later index as files.
"""

from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "purple": (140, 40, 170),
}
SHAPES = ("circle", "square", "triangle", "star")
CLASSES = [(c, s) for c in COLOURS for s in SHAPES]
# Radius factors that give every shape about the area of the circle, so the
# amount of colour says nothing about the shape (the model must learn shapes).
_EQUAL_AREA = {"circle": 1.0, "square": math.sqrt(math.pi / 2),
               "triangle": math.sqrt(math.pi / (3 * math.sqrt(3) / 4)), "star": 1.45}


def caption(colour: str, shape: str) -> str:
    return f"a {colour} {shape}"


def make_background(w: int, h: int, rng: random.Random) -> Image.Image:
    kind = rng.randrange(3)
    base = rng.randrange(60, 200)
    if kind == 0:  # flat grey, slightly tinted
        tint = [max(0, min(255, base + rng.randrange(-15, 16))) for _ in range(3)]
        return Image.new("RGB", (w, h), tuple(tint))
    nprng = np.random.default_rng(rng.randrange(1 << 30))
    if kind == 1:  # grey gradient
        lo, hi = sorted((base, rng.randrange(40, 220)))
        ramp = np.linspace(lo, hi, w if rng.random() < 0.5 else h, dtype=np.float64)
        grid = np.broadcast_to(ramp[None, :], (h, w)) if len(ramp) == w \
            else np.broadcast_to(ramp[:, None], (h, w))
        arr = np.repeat(grid[:, :, None], 3, axis=2).astype(np.float64)
    else:  # grey noise texture
        arr = base + nprng.normal(0, 25, (h, w, 1)).repeat(3, axis=2)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def draw_picture(colour: str, shape: str, size: tuple[int, int], rng: random.Random
                 ) -> Image.Image:
    """One picture; the shape stays inside the central square (the model's crop)."""
    w, h = size
    img = make_background(w, h, rng)
    m = min(w, h)
    r = min(rng.uniform(0.22, 0.34) * _EQUAL_AREA[shape], 0.45) * m
    cx = w / 2 + rng.uniform(-1, 1) * (m / 2 - r * 1.05)
    cy = h / 2 + rng.uniform(-1, 1) * (m / 2 - r * 1.05)
    draw_shape(img, colour, shape, (cx, cy), r, rng)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2) * m / 200))
    return img


def draw_shape(img: Image.Image, colour: str, shape: str, centre: tuple[float, float],
               r: float, rng: random.Random) -> None:
    """Draw one shape of radius ``r`` (its area about a circle's of that radius)."""
    draw = ImageDraw.Draw(img)
    cx, cy = centre
    fill = tuple(max(0, min(255, v + rng.randrange(-25, 26))) for v in COLOURS[colour])
    angle = rng.uniform(0, 2 * math.pi)
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        tilt = (angle - math.pi) * 0.06  # nearly upright, as squares in photos are
        pts = [(cx + r * math.cos(tilt + k * math.pi / 2 + math.pi / 4),
                cy + r * math.sin(tilt + k * math.pi / 2 + math.pi / 4)) for k in range(4)]
        draw.polygon(pts, fill=fill)
    elif shape == "triangle":
        pts = [(cx + r * math.cos(angle * 0.2 - math.pi / 2 + k * 2 * math.pi / 3),
                cy + r * math.sin(angle * 0.2 - math.pi / 2 + k * 2 * math.pi / 3))
               for k in range(3)]
        draw.polygon(pts, fill=fill)
    else:  # five-pointed star
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.42
            a = angle + k * math.pi / 5
            pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
        draw.polygon(pts, fill=fill)
