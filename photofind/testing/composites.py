"""Composite pictures for detection tests: one target shape among others.

The target covers a chosen share of the canvas at a random place; the other
shapes have other colours (so only the target matches "a <colour> <shape>")
and do not overlap it. Returns the picture, the target's caption and its
bounding box, so a test can check where ``locate`` points.
"""

from __future__ import annotations

import random

from PIL import Image

from photofind.testing.shapes import CLASSES, COLOURS, SHAPES, draw_shape, make_background


def composite(rng: random.Random, size: tuple[int, int] = (480, 360),
              share: tuple[float, float] = (0.05, 0.2), others: tuple[int, int] = (2, 4)
              ) -> tuple[Image.Image, str, tuple[float, float, float, float]]:
    """(picture, "a red circle", (x0, y0, x1, y1) of the red circle)."""
    w, h = size
    img = make_background(w, h, rng)
    colour, shape = rng.choice(CLASSES)
    r = (rng.uniform(*share) * w * h) ** 0.5 / 2  # half the side of the target's box
    cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
    placed = [(cx, cy, r)]
    for _ in range(rng.randint(*others)):
        other = rng.choice([c for c in COLOURS if c != colour])
        radius = rng.uniform(0.6, 1.0) * r
        for _attempt in range(50):
            x, y = rng.uniform(radius, w - radius), rng.uniform(radius, h - radius)
            if all((x - px) ** 2 + (y - py) ** 2 > 1.1 * (radius + pr) ** 2
                   for px, py, pr in placed):
                placed.append((x, y, radius))
                draw_shape(img, other, rng.choice(SHAPES), (x, y), radius, rng)
                break
    draw_shape(img, colour, shape, (cx, cy), r, rng)
    return img, f"a {colour} {shape}", (cx - r, cy - r, cx + r, cy + r)
