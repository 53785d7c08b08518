"""The text-reading engine: PP-OCR on ONNX Runtime, through rapidocr-onnxruntime.

rapidocr-onnxruntime (Apache-2.0) carries PaddleOCR's PP-OCRv4 detection,
PP-OCR direction (0/180 degrees) and PP-OCRv4 recognition models (Apache-2.0,
about 16 MB of ONNX) inside its wheel; it reads Chinese and English (Latin
letters, digits, punctuation). It is imported only here and only when a
reader is made (it brings OpenCV), so nothing else pays for it.

``Reader.read`` takes an upright RGB picture and returns its lines with their
confidence and boxes, and a box per word, in fractions of the picture's width
and height. The recognition model often drops the space between English words
("TOTAL42.50"); its per-character positions put them back in a line of eight or
more characters without any space, where the step between two characters is
clearly wider than the line's usual step.

Another language: PaddleOCR publishes PP-OCR recognition models per script
(latin, cyrillic, arabic, devanagari, korean, japanese ...) with a character
list each; ``PHOTOFIND_OCR_REC_MODEL`` (its ONNX file) and
``PHOTOFIND_OCR_REC_KEYS`` (its character list) replace the recogniser.

``engine_id()`` names the engine, its version and its models without importing
them: stored text made by another engine id (another recogniser too) is read
again.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from photofind.core.errors import PhotofindError

PACKAGE = "rapidocr_onnxruntime"
DISTRIBUTION = "rapidocr-onnxruntime"
LONG_SIDE = 1280  # pictures are read at this long side (small text in 12 MP photos)
SPACE_GAP = 1.4  # a character step this many times the line's median step is a space
MIN_RUN = 8  # characters without a space before a line is split at its gaps
REC_MODEL_ENV = "PHOTOFIND_OCR_REC_MODEL"
REC_KEYS_ENV = "PHOTOFIND_OCR_REC_KEYS"
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of width and height


class EngineMissing(PhotofindError):
    """The OCR package, or a recogniser named in the environment, is missing."""


@dataclass(frozen=True)
class Word:
    text: str
    box: Box


@dataclass(frozen=True)
class Line:
    text: str
    confidence: float
    box: Box
    words: tuple[Word, ...]


def installed() -> bool:
    try:
        return importlib.util.find_spec(PACKAGE) is not None
    except (ImportError, ValueError):  # left out of a bundle on purpose
        return False


def engine_id() -> str:
    """``rapidocr-onnxruntime 1.4.4 <digest of its model files' names and sizes>``."""
    spec = importlib.util.find_spec(PACKAGE) if installed() else None
    if spec is None or not spec.submodule_search_locations:
        raise EngineMissing(f"{DISTRIBUTION} is not installed")
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    digest = hashlib.blake2b(digest_size=6)
    for path in [*sorted(models.glob("*.onnx")), *_custom_recogniser().values()]:
        digest.update(f"{path.name}:{path.stat().st_size};".encode())
    return f"{DISTRIBUTION} {importlib.metadata.version(DISTRIBUTION)} {digest.hexdigest()}"


class Reader:
    """One loaded OCR engine (about 0.5 s to make); ``threads`` pins ONNX Runtime."""

    def __init__(self, threads: int = 1) -> None:
        if not installed():
            raise EngineMissing(f"{DISTRIBUTION} is not installed")
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        from rapidocr_onnxruntime import RapidOCR

        custom = {key: str(path) for key, path in _custom_recogniser().items()}
        self._engine: Any = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1,
                                     print_verbose=False, **custom)

    def read(self, rgb: npt.NDArray[np.uint8]) -> list[Line]:
        height, width = rgb.shape[:2]
        # rapidocr wants OpenCV's channel order.
        found, _ = self._engine(np.ascontiguousarray(rgb[:, :, ::-1]), return_word_box=True)
        lines = []
        for item in found or []:
            quad, text, score = item[0], str(item[1]), float(item[2])
            chars = item[4] if len(item) > 4 else []
            char_boxes = item[3] if len(item) > 3 else []
            box = _bounds(quad, width, height)
            words = _words(text, chars, char_boxes, box, width, height)
            text = " ".join(w.text for w in words) if words else text
            if text.strip():
                lines.append(Line(text, score, box, words))
        return lines


def _custom_recogniser() -> dict[str, Path]:
    """A recogniser for another language, from the environment (files that exist)."""
    found = {}
    for key, env in (("rec_model_path", REC_MODEL_ENV), ("rec_keys_path", REC_KEYS_ENV)):
        value = os.environ.get(env, "").strip()
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise EngineMissing(f"{env} names {value}, which is not a file")
            found[key] = path
    return found


def _bounds(points: Any, width: int, height: int) -> Box:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return (_clip(x0 / width), _clip(y0 / height), _clip(x1 / width), _clip(y1 / height))


def _clip(v: float) -> float:
    return round(min(max(float(v), 0.0), 1.0), 4)


def _words(text: str, chars: list[str], char_boxes: list[Any], line: Box, width: int,
           height: int) -> tuple[Word, ...]:
    """Split a line into words: at the spaces it has, and where a gap between
    two characters shows a space the recogniser dropped."""
    if not chars or len(chars) != len(char_boxes):
        return tuple(Word(w, line) for w in text.split())
    boxes = [_bounds(b, width, height) for b in char_boxes]
    horizontal = (line[2] - line[0]) * width >= (line[3] - line[1]) * height
    axis = 0 if horizontal else 1
    centres = [(b[axis] + b[axis + 2]) / 2 for b in boxes]
    steps = [abs(b - a) for a, b, ca, cb in zip(centres, centres[1:], chars, chars[1:],
                                                strict=False) if ca.strip() and cb.strip()]
    # Only a long run without any space has lost some (a wide letter such as
    # "m" spreads the characters of a short word as much as a space does).
    lost_spaces = " " not in text and len(text) >= MIN_RUN and len(steps) >= 3
    typical = float(np.median(steps)) if lost_spaces else None
    groups: list[list[int]] = [[]]
    for i, ch in enumerate(chars):
        if not ch.strip():
            groups.append([])
            continue
        if (typical and groups[-1] and chars[i - 1].strip()
                and abs(centres[i] - centres[i - 1]) > SPACE_GAP * typical):
            groups.append([])
        groups[-1].append(i)
    words = []
    for group in (g for g in groups if g):
        word = "".join(chars[i] for i in group)
        xs0, ys0, xs1, ys1 = zip(*(boxes[i] for i in group), strict=True)
        words.append(Word(word, (min(xs0), min(ys0), max(xs1), max(ys1))))
    return tuple(words)
