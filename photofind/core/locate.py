"""Where is it: zero-shot detection with sliding square patches.

The photo is decoded in a worker process (it is as untrusted as any photo)
to at most LOCATE_SIDE pixels, oriented as displayed. Square patches at a few
scales, overlapping by half, are encoded in batches and scored against the
query vector (the usual query syntax: a ``- term`` lowers the score where
that term matches). Each patch spreads its weight (a softmax over the
photo's patches at the model's temperature) over the pixels it covers; the
summed map, divided by how many patches cover each pixel, is the heatmap.
The box bounds the region around the map's peak that stays above BOX_LEVEL
of it (on the toy model's composites that box's centre fell inside the
shape more often than the peak cell itself did).

``locate`` is a generator: it yields progress between batches, and closing
it (or just dropping it) cancels the work; ``run_locate`` drives it with a
cancel callback.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from photofind.core.decodepool import DecodePool
from photofind.core.errors import PhotofindError
from photofind.core.imaging import Failed, Preprocess

if TYPE_CHECKING:
    from photofind.core.library import Library

# The working picture's long side. 720 keeps a 4:3 12 MP JPEG at a quarter
# scale in the DCT (1000 x 750, the fastest draft decode that covers it).
LOCATE_SIDE = 720
# Patch sides as fractions of the picture's short side; neighbours overlap by half.
SCALES = (1.0, 0.6)  # 14 patches for a 4:3 photo (see benchmarks/bench_locate.py)
OVERLAP = 0.5
BOX_LEVEL = 0.3  # the box holds the map's peak and its neighbours above this share of it
GRID_ROWS = 24  # the heatmap's rows for a landscape picture (cells are square)
BATCH = 8


@dataclass(frozen=True)
class LocateProgress:
    done: int  # patches encoded
    total: int


@dataclass(frozen=True)
class Located:
    """Where the query matches: in the photo's pixels, after EXIF orientation."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1
    score: float  # the best patch's cosine to the query
    grid: npt.NDArray[np.float32]  # (rows, cols) in [0, 1], spanning the whole photo
    width: int
    height: int


def patch_boxes(width: int, height: int, scales: tuple[float, ...] = SCALES,
                overlap: float = OVERLAP) -> list[tuple[int, int, int, int]]:
    """Square patches covering a width x height picture at each scale."""
    boxes: list[tuple[int, int, int, int]] = []
    short = min(width, height)
    for scale in scales:
        side = max(1, round(short * scale))
        step = side * (1 - overlap)
        xs = _positions(width, side, step)
        ys = _positions(height, side, step)
        boxes += [(x, y, x + side, y + side) for y in ys for x in xs]
    return boxes


def _positions(length: int, side: int, step: float) -> list[int]:
    """Evenly spread starts from 0 to length - side, about ``step`` apart."""
    if length <= side:
        return [0]
    count = int(np.ceil((length - side) / step)) + 1
    return [round(v) for v in np.linspace(0, length - side, count)]


def decode_for_locate(path: str) -> tuple[npt.NDArray[np.uint8], int, int]:
    """(pixels at most LOCATE_SIDE, full width, full height), decoded in a worker."""
    pre = Preprocess(LOCATE_SIDE, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), resize_mode="fit")
    with DecodePool(pre, workers=1) as pool:
        ((_, decoded),) = list(pool.run([path], str))
    if isinstance(decoded, Failed):
        raise PhotofindError(f"Cannot read {path} as an image ({decoded.reason}).")
    return decoded.pixels, decoded.width, decoded.height


def locate(lib: Library, path: str, query: str) -> Generator[LocateProgress, None, Located]:
    """Score patches of the photo at ``path`` against ``query``; see the module."""
    from photofind.core.search import parse_query

    parse_query(query)  # a bad query fails before the decode
    pixels, width, height = decode_for_locate(path)
    return (yield from locate_pixels(lib, pixels, width, height, query))


def locate_pixels(lib: Library, pixels: npt.NDArray[np.uint8], width: int, height: int,
                  query: str) -> Generator[LocateProgress, None, Located]:
    """``locate`` on a picture decode_for_locate gave (a photo of width x height)."""
    from photofind.core.search import Searcher, parse_query

    vector, _ = Searcher(lib).query_vector(parse_query(query))
    encoder = lib.embedder()
    boxes = patch_boxes(pixels.shape[1], pixels.shape[0])
    picture = Image.fromarray(pixels)
    size = encoder.preprocess.size
    scores = np.empty(len(boxes), np.float32)
    yield LocateProgress(0, len(boxes))
    for start in range(0, len(boxes), BATCH):
        part = boxes[start:start + BATCH]
        batch = np.stack([np.asarray(picture.resize((size, size), Image.Resampling.BICUBIC,
                                                    box=b)) for b in part])
        scores[start:start + len(part)] = encoder.encode_images(batch) @ vector
        yield LocateProgress(start + len(part), len(boxes))
    return heatmap(boxes, scores, pixels.shape[1], pixels.shape[0], width, height,
                   encoder.logit_scale)


def finish(steps: Generator[LocateProgress, None, Located],
           cancelled: Callable[[], bool] = lambda: False) -> Located | None:
    """Run ``locate`` steps to the end, or None as soon as ``cancelled()`` says so."""
    try:
        while True:
            next(steps)
            if cancelled():
                steps.close()
                return None
    except StopIteration as stop:
        result: Located = stop.value
        return result


def run_locate(lib: Library, path: str, query: str,
               cancelled: Callable[[], bool] = lambda: False) -> Located | None:
    """``locate`` to the end, or None when cancelled between batches."""
    return finish(locate(lib, path, query), cancelled)


def heatmap(boxes: list[tuple[int, int, int, int]], scores: npt.NDArray[np.float32],
            work_w: int, work_h: int, width: int, height: int, logit_scale: float
            ) -> Located:
    """Accumulate patch scores into a map over the picture and find the box."""
    # A patch's weight: its probability of being the one the query describes,
    # a softmax over the photo's patches with the model's own temperature.
    weights = np.exp(logit_scale * (scores.astype(np.float64) - float(scores.max())))
    total = np.zeros((work_h, work_w), np.float64)
    cover = np.zeros((work_h, work_w), np.float64)
    for (x0, y0, x1, y1), w in zip(boxes, weights, strict=True):
        total[y0:y1, x0:x1] += w
        cover[y0:y1, x0:x1] += 1.0
    grid, ys, xs = _pool(total / np.maximum(cover, 1.0))
    grid /= float(grid.max())
    rows, cols = _region(grid >= BOX_LEVEL, np.unravel_index(int(grid.argmax()), grid.shape))
    sx, sy = width / work_w, height / work_h
    box = (round(xs[cols[0]] * sx), round(ys[rows[0]] * sy),
           round(xs[cols[1] + 1] * sx), round(ys[rows[1] + 1] * sy))
    return Located(box, float(scores.max()), grid, width, height)


def _pool(heat: npt.NDArray[np.float64]
          ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The map averaged into square cells (GRID_ROWS along the short side), with
    the cells' edges in the picture's pixels (rows + 1 and cols + 1 of them)."""
    work_h, work_w = heat.shape
    cell = max(1, min(work_w, work_h) // GRID_ROWS)
    rows, cols = max(1, work_h // cell), max(1, work_w // cell)
    ys = np.linspace(0, work_h, rows + 1).astype(np.int64)
    xs = np.linspace(0, work_w, cols + 1).astype(np.int64)
    sums = np.add.reduceat(np.add.reduceat(heat, ys[:-1], axis=0), xs[:-1], axis=1)
    areas = np.diff(ys)[:, None] * np.diff(xs)[None, :]
    return (sums / areas).astype(np.float32), ys, xs


def _region(mask: npt.NDArray[np.bool_], seed: tuple[np.intp, ...]
            ) -> tuple[tuple[int, int], tuple[int, int]]:
    """(first, last) row and column of the 4-connected part of ``mask`` that
    holds ``seed`` (a flood fill over a few hundred cells)."""
    seen = {(int(seed[0]), int(seed[1]))}
    todo = list(seen)
    while todo:
        r, c = todo.pop()
        for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if (0 <= nr < mask.shape[0] and 0 <= nc < mask.shape[1] and mask[nr, nc]
                    and (nr, nc) not in seen):
                seen.add((nr, nc))
                todo.append((nr, nc))
    rs = [r for r, _ in seen]
    cs = [c for _, c in seen]
    return (min(rs), max(rs)), (min(cs), max(cs))


def overlay(picture: Image.Image, located: Located) -> Image.Image:
    """The picture with the heatmap (red, stronger where it matches) and the box."""
    grid = Image.fromarray((located.grid * 255).astype(np.uint8), "L").resize(
        picture.size, Image.Resampling.BILINEAR)
    red = Image.new("RGB", picture.size, (255, 40, 0))
    alpha = grid.point(lambda v: int(v * 0.6))
    out = Image.composite(red, picture.convert("RGB"), alpha)
    sx, sy = picture.width / located.width, picture.height / located.height
    x0, y0, x1, y1 = located.box
    line = max(2, round(min(picture.size) / 150))
    ImageDraw.Draw(out).rectangle((x0 * sx, y0 * sy, x1 * sx - 1, y1 * sy - 1),
                                  outline=(255, 255, 0), width=line)
    return out
