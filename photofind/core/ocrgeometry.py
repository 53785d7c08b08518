"""The plane geometry of reading text, in numpy: what OpenCV, shapely and pyclipper
did for PP-OCR's detector.

The detector gives a probability map; its bitmap (probability above a threshold)
is split into connected blobs (``components``: runs of set pixels per row, joined
by union-find where runs of adjacent rows touch, 8-connected), each blob's
smallest rotated rectangle is found from its convex hull (``min_area_rect``:
monotone chain, then each hull edge as a side), scored by the mean probability
inside it (``mean_inside``), grown by a margin (``unclip``) and put in a fixed
corner order (``ordered``). Points are (x, y) with x to the right and y down, in
pixels, a pixel's centre at its integer coordinates.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Points = npt.NDArray[np.float64]  # (n, 2): x, y
Bitmap = npt.NDArray[np.bool_]


def dilate(mask: Bitmap) -> Bitmap:
    """The mask grown by a 2x2 square: a pixel is set when it, the one on its left,
    the one above or the one above-left is (OpenCV's dilate with a 2x2 kernel)."""
    out = mask.copy()
    out[1:, :] |= mask[:-1, :]
    grown = out.copy()
    grown[:, 1:] |= out[:, :-1]
    return grown


def _runs(mask: Bitmap) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                                 npt.NDArray[np.int64]]:
    """Every horizontal run of set pixels: its row, first and last column."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # same row-major order as the starts
    return rows.astype(np.int64), starts.astype(np.int64), ends.astype(np.int64) - 1


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def components(mask: Bitmap) -> list[Points]:
    """The 8-connected blobs of set pixels, each as the end points of its runs
    (enough for its convex hull), in the order of their first (top-left) pixel."""
    rows, starts, ends = _runs(mask)
    if not len(rows):
        return []
    parent = list(range(len(rows)))
    first = np.searchsorted(rows, np.arange(mask.shape[0] + 1))  # row r: first[r]:first[r + 1]
    for r in range(1, mask.shape[0]):
        above, here = range(first[r - 1], first[r]), range(first[r], first[r + 1])
        if not above or not here:
            continue
        a = above.start
        for h in here:
            # skip runs above that end left of this run's reach (diagonals touch)
            while a < above.stop and ends[a] < starts[h] - 1:
                a += 1
            b = a
            while b < above.stop and starts[b] <= ends[h] + 1:
                ra, rb = _find(parent, b), _find(parent, h)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
                b += 1
    roots = np.array([_find(parent, i) for i in range(len(rows))])
    order = np.argsort(roots, kind="stable")  # a blob's runs together, roots by first run
    cuts = np.flatnonzero(np.diff(roots[order])) + 1
    blobs = []
    for pick in np.split(order, cuts):
        ys = rows[pick].astype(np.float64)
        blobs.append(np.concatenate([np.stack([starts[pick], ys], axis=1),
                                     np.stack([ends[pick], ys], axis=1)]).astype(np.float64))
    return blobs


def convex_hull(points: Points) -> Points:
    """The convex hull, counter-clockwise in x-right/y-up terms (monotone chain)."""
    pts = np.unique(points, axis=0)  # sorted by x, then y
    if len(pts) <= 2:
        return pts

    def half(seq: Points) -> list[npt.NDArray[np.float64]]:
        chain: list[npt.NDArray[np.float64]] = []
        for p in seq:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _cross(o: npt.NDArray[np.float64], a: npt.NDArray[np.float64],
           b: npt.NDArray[np.float64]) -> float:
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def min_area_rect(points: Points) -> tuple[Points, float]:
    """The smallest rectangle around the points (one side on a hull edge) as its
    four corners, and its shorter side."""
    hull = convex_hull(points)
    if len(hull) == 1:
        return np.repeat(hull, 4, axis=0), 0.0
    edges = np.roll(hull, -1, axis=0) - hull
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    keep = lengths > 0
    units = edges[keep] / lengths[keep, None]  # each edge's direction
    normals = np.stack([-units[:, 1], units[:, 0]], axis=1)
    along = hull @ units.T  # (points, edges)
    across = hull @ normals.T
    lo_a, hi_a = along.min(axis=0), along.max(axis=0)
    lo_c, hi_c = across.min(axis=0), across.max(axis=0)
    best = int(np.argmin((hi_a - lo_a) * (hi_c - lo_c)))
    u, n = units[best], normals[best]
    corners = np.array([lo_a[best] * u + lo_c[best] * n, hi_a[best] * u + lo_c[best] * n,
                        hi_a[best] * u + hi_c[best] * n, lo_a[best] * u + hi_c[best] * n])
    return corners, float(min(hi_a[best] - lo_a[best], hi_c[best] - lo_c[best]))


def ordered(corners: Points) -> Points:
    """A rectangle's corners as PP-OCR orders them: of the two leftmost, the upper
    one first, then the upper and lower of the two rightmost, then the lower left."""
    by_x = corners[np.argsort(corners[:, 0], kind="stable")]
    left, right = by_x[:2], by_x[2:]
    tl, bl = (left[0], left[1]) if left[1][1] > left[0][1] else (left[1], left[0])
    tr, br = (right[0], right[1]) if right[1][1] > right[0][1] else (right[1], right[0])
    return np.array([tl, tr, br, bl])


def unclip(corners: Points, ratio: float) -> Points:
    """The rectangle grown on every side by area * ratio / perimeter (what a
    rounded offset of the polygon gives, after its smallest rectangle is taken)."""
    side_a = float(np.linalg.norm(corners[1] - corners[0]))
    side_b = float(np.linalg.norm(corners[3] - corners[0]))
    if side_a == 0 or side_b == 0:
        return corners.copy()
    grow = side_a * side_b * ratio / (2 * (side_a + side_b))
    u = (corners[1] - corners[0]) / side_a
    n = (corners[3] - corners[0]) / side_b
    return np.array([corners[0] - grow * (u + n), corners[1] + grow * (u - n),
                     corners[2] + grow * (u + n), corners[3] - grow * (u - n)])


def mean_inside(prob: npt.NDArray[np.float32], quad: Points) -> float:
    """The mean of ``prob`` over the pixels whose centres lie in the convex quad
    (corners rounded down to whole pixels, edges included)."""
    h, w = prob.shape
    box = np.floor(quad).astype(np.int64).astype(np.float64)
    x0, x1 = (int(np.clip(v, 0, w - 1)) for v in (box[:, 0].min(), box[:, 0].max()))
    y0, y1 = (int(np.clip(v, 0, h - 1)) for v in (box[:, 1].min(), box[:, 1].max()))
    ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1]
    inside = np.ones(xs.shape, dtype=bool)
    sign = np.sign(sum(_cross(box[i], box[(i + 1) % 4], box[(i + 2) % 4]) for i in range(4)))
    if sign != 0:
        for i in range(4):
            a, b = box[i], box[(i + 1) % 4]
            side = (b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0])
            inside &= side * sign >= -0.5 * np.hypot(*(b - a))  # edge pixels count
    values = prob[y0:y1 + 1, x0:x1 + 1][inside]
    return float(values.mean()) if values.size else 0.0


def quad_point(quad: Points, u: float, v: float) -> npt.NDArray[np.float64]:
    """The point at fractions (u along the top edge, v down the left edge) of a
    quad given as top-left, top-right, bottom-right, bottom-left."""
    top = quad[0] + (quad[1] - quad[0]) * u
    bottom = quad[3] + (quad[2] - quad[3]) * u
    return np.asarray(top + (bottom - top) * v, dtype=np.float64)
