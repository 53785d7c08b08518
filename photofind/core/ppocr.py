"""PP-OCR's three ONNX models (detection, 0/180 direction, recognition) run with
ONNX Runtime, numpy and Pillow only: the pre- and post-processing of
rapidocr-onnxruntime 1.4 (PaddleOCR's own defaults), without OpenCV.

``Pipeline(det, cls, rec, threads)(rgb)`` returns the ``Found`` lines of an RGB
picture, top to bottom: the corner points of each line (pixels of the picture),
its text and score, and each character with its box (four corner points).

Detection: the picture read at most 2000 px on its long side (at least 30 on
its short side where one scale allows both), then enlarged to 736 px on its
short side unless that takes its long side past 4000 (a thin picture stays
thinner: its memory is bounded), sides a multiple of 32, normalised to [-1, 1] in BGR order; the
probability map's bitmap (above 0.3, dilated 2x2) is split into blobs, each
becomes its smallest rotated rectangle, kept when its mean probability is at
least 0.5, grown by area * 1.6 / perimeter and at least 5 px on its short side
(see ocrgeometry). Each box is cut out upright (a perspective map: Pillow's
QUAD transform, bicubic), turned 90 degrees when 1.5 times as tall as wide,
turned 180 when the direction model says so (above 0.9), and read by the
recogniser in batches of 6 at height 48 (width by the widest aspect ratio of
the batch, at least 320). CTC greedy decoding gives the text, the mean of its
characters' probabilities its score (lines under 0.5 are dropped), and the
columns where each character was read place it along the line. Unlike rapidocr,
a space the recogniser dropped but still gave some probability between two
characters is put back, and the character boxes of a crop turned 180 degrees
are turned back with it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from photofind.core import ocrgeometry as geo

Pixels = npt.NDArray[np.uint8]
Tensor = npt.NDArray[np.float32]

DET_SHORT_SIDE = 736  # the detector sees at least this short side ...
DET_MAX_SIDE = 4000  # ... where its long side stays within this
MAX_SIDE = 2000
MIN_SIDE = 30
PAD_HEIGHT = 30  # a picture this low, or wider than PAD_RATIO heights, is padded
PAD_RATIO = 8
BIN_THRESHOLD = 0.3
BOX_THRESHOLD = 0.5
UNCLIP_RATIO = 1.6
MAX_CANDIDATES = 1000
MIN_BOX = 3  # px, on the detector's map
TALL = 1.5  # a crop this many times as tall as wide is turned upright
CLS_SHAPE = (48, 192)
CLS_THRESHOLD = 0.9
REC_HEIGHT = 48
REC_MIN_WIDTH = 320
BATCH = 6
TEXT_SCORE = 0.5
REC_STRIDE = 8  # input pixels per output column of the recogniser
SPACE_PROB = 0.02  # a space this likely between two characters is one


@dataclass(frozen=True)
class Found:
    quad: geo.Points  # top-left, top-right, bottom-right, bottom-left, in picture pixels
    text: str
    score: float
    chars: tuple[str, ...]
    char_quads: tuple[geo.Points, ...]


@dataclass(frozen=True)
class Decoded:
    text: str
    score: float
    columns: tuple[float, ...]  # where each character was read, in output columns
    width: int  # the columns that cover the crop itself (not the batch's padding)


def _session(path: Path, threads: int) -> Any:  # onnxruntime has no type hints
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    opts.enable_cpu_mem_arena = False
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = max(1, min(threads, os.cpu_count() or 1))
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts,
                                providers=["CPUExecutionProvider"])


class _Model:
    def __init__(self, path: Path, threads: int) -> None:
        self.session = _session(path, threads)
        self.input = self.session.get_inputs()[0].name

    def __call__(self, batch: Tensor) -> Tensor:
        out = self.session.run(None, {self.input: batch})
        return np.asarray(out[0], dtype=np.float32)

    def metadata(self, key: str) -> str | None:
        meta = self.session.get_modelmeta().custom_metadata_map
        value = meta.get(key)
        return str(value) if value is not None else None


def characters(rec: _Model, keys: Path | None) -> list[str]:
    """The recogniser's character list: CTC's blank first, a space last."""
    if keys is not None:
        text = keys.read_bytes().decode("utf-8-sig")
    else:
        found = rec.metadata("character")
        if found is None:
            raise ValueError("the recognition model has no character list; give its keys file")
        text = found
    return ["blank", *key_lines(text), " "]


def key_lines(text: str) -> list[str]:
    """One character a line, the lines split at "\n" only (a character list may
    hold \x0b, \x85 or \u2028, which str.splitlines would split at)."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


def ctc_decode(probs: Tensor, chars: Sequence[str], space: int | None = None
               ) -> tuple[str, float, tuple[float, ...]]:
    """Greedy CTC: the best class per column, repeats merged, blanks (0) dropped;
    the score is the mean probability of the characters kept. Each character sits
    at the centre of its class's probability over the columns nearer to it than to
    its neighbours (finer than the one column that emitted it). With ``space`` (the
    space's class), a space goes between two characters where a column between them
    gives it at least SPACE_PROB though blank won there (the recogniser often drops
    the space between English words, but seldom all trace of it)."""
    best = probs.argmax(axis=1)
    keep = best != 0
    keep[1:] &= best[1:] != best[:-1]
    columns = np.flatnonzero(keep)
    score = float(probs.max(axis=1)[columns].mean()) if len(columns) else 0.0
    starts = np.flatnonzero(np.r_[True, best[1:] != best[:-1]])  # each run of one class
    last = (np.r_[starts[1:], len(best)] - 1)[np.searchsorted(starts, columns)]
    bounds = np.r_[0, (last[:-1] + columns[1:] + 1) // 2, len(best)]  # between neighbours
    text, centres = [], []
    for i, c in enumerate(columns):
        if space is not None and i and best[columns[i - 1]] != space and best[c] != space:
            gap = probs[last[i - 1] + 1:c, space]
            if gap.size and gap.max() >= SPACE_PROB:
                text.append(chars[space])
                centres.append(float(last[i - 1] + 1 + gap.argmax()))
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        weight = probs[lo:hi, best[c]]
        text.append(chars[best[c]])
        centres.append(float((weight * np.arange(lo, hi)).sum() / weight.sum()))
    return "".join(text), score, tuple(centres)


def _normalised(img: Image.Image) -> Tensor:
    """(3, h, w) in BGR order, scaled to [-1, 1] (PaddleOCR reads with OpenCV)."""
    arr = np.asarray(img, dtype=np.float32)[:, :, ::-1]
    return np.ascontiguousarray(arr.transpose(2, 0, 1)) / 127.5 - 1.0


def _fit(size: tuple[int, int], ratio: float) -> tuple[int, int]:
    w, h = size
    return (max(32, round(int(w * ratio) / 32) * 32), max(32, round(int(h * ratio) / 32) * 32))


def as_rgb(pixels: Pixels) -> Image.Image | None:
    """An RGB picture of an (h, w), (h, w, 1), RGB or RGBA array (the alpha
    composited onto white); None when it has no pixels."""
    arr = np.asarray(pixels)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or arr.size == 0:
        return None
    img = Image.fromarray(np.ascontiguousarray(arr))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img.convert("RGBA")).convert("RGB")
    return img.convert("RGB")


def bounded_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size a picture is read at: one scale for both sides, so that the long
    side is at most MAX_SIDE and, where that allows, the short side at least
    MIN_SIDE (sides a multiple of 32 when resized); unchanged when it fits."""
    w, h = size
    ratio = min(MAX_SIDE / max(w, h), max(1.0, MIN_SIDE / min(w, h)))
    return size if ratio == 1.0 else _fit(size, ratio)


def padding(size: tuple[int, int]) -> int:
    """The black band above and below a very low or very wide picture."""
    w, h = size
    if h > PAD_HEIGHT and w / h <= PAD_RATIO:
        return 0
    return int(abs(max(int(w / PAD_RATIO), PAD_HEIGHT) * 2 - h) / 2)


def detector_size(size: tuple[int, int]) -> tuple[int, int]:
    """The detector's input for a (padded) picture: its short side enlarged to
    DET_SHORT_SIDE, but its long side never past DET_MAX_SIDE (a thin picture
    keeps a short side under DET_SHORT_SIDE); sides a multiple of 32."""
    w, h = size
    return _fit(size, min(max(1.0, DET_SHORT_SIDE / min(w, h)), DET_MAX_SIDE / max(w, h)))


def detector_input(size: tuple[int, int]) -> tuple[int, int]:
    """The detector's input size for a picture of ``size`` (what ``Pipeline``
    computes before it runs the detector)."""
    w, h = bounded_size(size)
    return detector_size((w, h + 2 * padding((w, h))))


class Pipeline:
    """The three models loaded (``threads`` for ONNX Runtime's intra-op pool)."""

    def __init__(self, det: Path, cls: Path, rec: Path, threads: int = 1,
                 keys: Path | None = None) -> None:
        self.det, self.cls, self.rec = (_Model(p, threads) for p in (det, cls, rec))
        self.chars = characters(self.rec, keys)

    def __call__(self, rgb: Pixels) -> list[Found]:
        picture = as_rgb(rgb)
        if picture is None:
            return []
        sized, scale = self._bounded(picture)
        padded, top = self._padded(sized)
        quads = self.detect(padded)
        if not quads:
            return []
        crops = [self._crop(padded, q) for q in quads]
        turned = self.classify([c for c, _ in crops])
        decoded = self.recognise([c.rotate(180) if t else c for (c, _), t in
                                  zip(crops, turned, strict=True)])
        found = []
        for quad, (_, tall), flip, dec in zip(quads, crops, turned, decoded, strict=True):
            if dec.score < TEXT_SCORE:
                continue
            back = self._back(quad, top, scale, rgb.shape)
            char_quads = _char_quads(back, dec, tall, flip)
            found.append(Found(back, dec.text, dec.score, tuple(dec.text), char_quads))
        return found

    @staticmethod
    def _bounded(img: Image.Image) -> tuple[Image.Image, tuple[float, float]]:
        """At most MAX_SIDE, at least MIN_SIDE where that fits (see bounded_size)."""
        w, h = img.size
        size = bounded_size(img.size)
        if size != img.size:
            img = img.resize(size, Image.Resampling.BILINEAR)
        return img, (w / img.size[0], h / img.size[1])

    @staticmethod
    def _padded(img: Image.Image) -> tuple[Image.Image, int]:
        """A very low or very wide picture gets black bands above and below."""
        w, h = img.size
        pad = padding(img.size)
        if not pad:
            return img, 0
        out = Image.new("RGB", (w, h + 2 * pad))
        out.paste(img, (0, pad))
        return out, pad

    @staticmethod
    def _back(quad: geo.Points, top: int, scale: tuple[float, float],
              shape: tuple[int, ...]) -> geo.Points:
        pts = (quad - [0, top]) * scale
        return np.clip(pts, 0, [shape[1], shape[0]])

    def detect(self, img: Image.Image) -> list[geo.Points]:
        """The text boxes of a picture (in its pixels), top to bottom, left to right."""
        w, h = img.size
        size = detector_size(img.size)
        prob = self.det(_normalised(img.resize(size, Image.Resampling.BILINEAR))[None])[0, 0]
        quads = boxes_from_map(prob, (w, h))
        return sorted_boxes(quads)

    @staticmethod
    def _crop(img: Image.Image, quad: geo.Points) -> tuple[Image.Image, bool]:
        """The box cut out upright (turned when tall), and whether it was turned."""
        width = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3])))
        height = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
        # Pillow's pixel centres sit at +0.5, OpenCV's at whole numbers
        corners = quad + 0.5
        data = tuple(float(v) for i in (0, 3, 2, 1) for v in corners[i])
        crop = img.transform((max(width, 1), max(height, 1)), Image.Transform.QUAD, data,
                             Image.Resampling.BICUBIC)
        if height >= TALL * width:
            return crop.transpose(Image.Transpose.ROTATE_90), True
        return crop, False

    def classify(self, crops: list[Image.Image]) -> list[bool]:
        """Which crops the direction model reads as upside down."""
        turned = [False] * len(crops)
        h, w = CLS_SHAPE
        for batch in _batches(crops):
            tensor = np.zeros((len(batch), 3, h, w), dtype=np.float32)
            for row, i in enumerate(batch):
                width = min(w, math.ceil(h * crops[i].width / crops[i].height))
                tensor[row, :, :, :width] = _normalised(
                    crops[i].resize((width, h), Image.Resampling.BILINEAR))
            probs = self.cls(tensor)
            for row, i in enumerate(batch):
                turned[i] = int(probs[row].argmax()) == 1 and probs[row, 1] > CLS_THRESHOLD
        return turned

    def recognise(self, crops: list[Image.Image]) -> list[Decoded]:
        out: dict[int, Decoded] = {}  # crop -> its reading (every crop is in a batch)
        for batch in _batches(crops):
            ratio = max([REC_MIN_WIDTH / REC_HEIGHT,
                         *(crops[i].width / crops[i].height for i in batch)])
            full = int(REC_HEIGHT * ratio)
            tensor = np.zeros((len(batch), 3, REC_HEIGHT, full), dtype=np.float32)
            widths = []
            for row, i in enumerate(batch):
                width = min(full, math.ceil(REC_HEIGHT * crops[i].width / crops[i].height))
                tensor[row, :, :, :width] = _normalised(
                    crops[i].resize((width, REC_HEIGHT), Image.Resampling.BILINEAR))
                widths.append(width)
            probs = self.rec(tensor)
            for row, i in enumerate(batch):
                text, score, columns = ctc_decode(probs[row], self.chars, len(self.chars) - 1)
                out[i] = Decoded(text, score, columns, max(1, math.ceil(widths[row] / REC_STRIDE)))
        return [out[i] for i in range(len(crops))]


def _batches(crops: list[Image.Image]) -> list[list[int]]:
    """Crop indices by aspect ratio, in groups of BATCH (alike widths pad little)."""
    order = sorted(range(len(crops)), key=lambda i: crops[i].width / crops[i].height)
    return [order[i:i + BATCH] for i in range(0, len(order), BATCH)]


def boxes_from_map(prob: npt.NDArray[np.float32], size: tuple[int, int]) -> list[geo.Points]:
    """DB post-processing: the probability map's text boxes, in a picture of ``size``."""
    map_h, map_w = prob.shape
    width, height = size
    quads = []
    for blob in geo.components(geo.dilate(prob > BIN_THRESHOLD))[:MAX_CANDIDATES]:
        rect, short = geo.min_area_rect(blob)
        if short < MIN_BOX:
            continue
        rect = geo.ordered(rect)
        if geo.mean_inside(prob, rect) < BOX_THRESHOLD:
            continue
        grown, short = geo.min_area_rect(geo.unclip(rect, UNCLIP_RATIO))
        if short < MIN_BOX + 2:
            continue
        box = geo.ordered(grown)
        box[:, 0] = np.clip(np.round(box[:, 0] / map_w * width), 0, width)
        box[:, 1] = np.clip(np.round(box[:, 1] / map_h * height), 0, height)
        box = geo.ordered(np.trunc(box))
        box = np.clip(box, 0, [width - 1, height - 1]).astype(np.int64).astype(np.float64)
        if (int(np.linalg.norm(box[0] - box[1])) <= MIN_BOX
                or int(np.linalg.norm(box[0] - box[3])) <= MIN_BOX):
            continue
        quads.append(box)
    return quads


def sorted_boxes(quads: list[geo.Points]) -> list[geo.Points]:
    """Top to bottom; boxes within 10 px of height, left to right (PaddleOCR's order)."""
    out = sorted(quads, key=lambda q: (q[0][1], q[0][0]))
    for i in range(len(out) - 1):
        for j in range(i, -1, -1):
            if abs(out[j + 1][0][1] - out[j][0][1]) < 10 and out[j + 1][0][0] < out[j][0][0]:
                out[j], out[j + 1] = out[j + 1], out[j]
            else:
                break
    return out


def _char_quads(quad: geo.Points, dec: Decoded, tall: bool, flip: bool
                ) -> tuple[geo.Points, ...]:
    """Each character's box in the picture: centred on the column it was read at,
    as wide as the line's mean step between characters, the line's full height."""
    if not dec.columns:
        return ()
    cols = np.asarray(dec.columns, dtype=np.float64)
    steps = np.diff(cols)
    steps = steps[steps <= 4]  # within a word
    step = float(steps.mean()) if len(steps) else dec.width / len(dec.columns)
    out = []
    for c in cols:
        lo, hi = (max(0.0, (c + 0.5 - step / 2) / dec.width),
                  min(1.0, (c + 0.5 + step / 2) / dec.width))
        if flip:
            lo, hi = 1 - hi, 1 - lo
        # a turned crop reads down the box: its width runs along the box's height
        spans = ((0.0, lo), (1.0, lo), (1.0, hi), (0.0, hi)) if tall else \
            ((lo, 0.0), (hi, 0.0), (hi, 1.0), (lo, 1.0))
        out.append(np.array([geo.quad_point(quad, u, v) for u, v in spans]))
    return tuple(out)
