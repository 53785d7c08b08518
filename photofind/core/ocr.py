"""The text-reading engine: PaddleOCR's PP-OCR models on ONNX Runtime (core/ppocr.py).

Three ONNX models (Apache-2.0, about 16 MB): PP-OCRv4 detection, PP-OCR's
direction classifier (0/180 degrees) and PP-OCRv4 recognition, which reads
Chinese and English (Latin letters, digits, punctuation). They are run with
ONNX Runtime, numpy and Pillow only (no OpenCV). The installers bundle the
models; a pip install reads text only with the ``ocr`` extra (which carries
them) or a folder of them named by ``PHOTOFIND_OCR_MODELS``. The model files
are found, in this order, in the folder named by
``PHOTOFIND_OCR_MODELS``, in a frozen bundle's ``ocr-models`` resource, or in
the ``models/`` folder of an installed rapidocr-onnxruntime package (the
``ocr`` extra, which carries them in its wheel; it is located, never imported).

``Reader.read`` takes an upright RGB picture and returns its lines with their
confidence and boxes, and a box per word, in fractions of the picture's width
and height. The recognition model often drops the space between English words
("TOTAL42.50"); the pipeline puts back those it still gave some probability to,
and the per-character positions put the others back in a line of eight or more
characters without any space, where the step between two characters is clearly
wider than the line's usual step.

Another language: PaddleOCR publishes PP-OCR recognition models per script
(latin, cyrillic, arabic, devanagari, korean, japanese ...) with a character
list each; ``PHOTOFIND_OCR_REC_MODEL`` (its ONNX file) and
``PHOTOFIND_OCR_REC_KEYS`` (its character list) replace the recogniser.

``engine_id()`` names the engine, its version and its models without loading
them: stored text made by another engine id (another recogniser too) is read
again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from photofind.core.errors import PhotofindError

ENGINE = "photofind-ppocr 1"  # the pipeline's own version: a change re-reads libraries
MODELS_ENV = "PHOTOFIND_OCR_MODELS"
MODELS_PACKAGE = "rapidocr_onnxruntime"  # located for its models/ folder, never imported
ROLES = ("det", "cls", "rec")  # the file of each: *_det_*.onnx, *_cls_*.onnx, *_rec_*.onnx
LONG_SIDE = 1280  # pictures are read at this long side (small text in 12 MP photos)
SPACE_GAP = 1.4  # a character step this many times the line's median step is a space
MIN_RUN = 8  # characters without a space before a line is split at its gaps
REC_MODEL_ENV = "PHOTOFIND_OCR_REC_MODEL"
REC_KEYS_ENV = "PHOTOFIND_OCR_REC_KEYS"
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of width and height


class EngineMissing(PhotofindError):
    """The OCR models, or a recogniser named in the environment, are missing."""


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


def model_files() -> dict[str, Path] | None:
    """The detection, direction and recognition models of the first place that
    has all three, or None."""
    for folder in _model_folders():
        found = {role: _choose(folder, role) for role in ROLES}
        if all(found.values()):
            return {role: path for role, path in found.items() if path is not None}
    return None


def _choose(folder: Path, role: str) -> Path | None:
    """A folder's model for a role: the one rapidocr's config.yaml names (in its
    package, above ``models/``), else the highest version in the name (PP-OCRv4
    over v3), else the first by name."""
    paths = sorted(folder.glob(f"*_{role}_*.onnx"))
    named = _configured(folder)
    for path in paths:
        if path.name in named:
            return path
    return max(paths, key=_version, default=None)


def _configured(folder: Path) -> set[str]:
    """The model files rapidocr's config.yaml names (``model_path: models/NAME``)."""
    config = folder.parent / "config.yaml"
    if folder.name != "models" or not config.is_file():
        return set()
    try:
        text = config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return set(re.findall(r"^\s*model_path:\s*['\"]?models/([^'\"\s]+)", text, re.MULTILINE))


def _version(path: Path) -> tuple[int, ...]:
    """The highest version a file name carries: ``ch_PP-OCRv4_det`` -> (4,)."""
    found = re.findall(r"v(\d+(?:\.\d+)*)", path.name, re.IGNORECASE)
    return max((tuple(int(p) for p in v.split(".")) for v in found), default=())


def _model_folders() -> list[Path]:
    from photofind.bundle import bundled_ocr_models

    folders = []
    if value := os.environ.get(MODELS_ENV, "").strip():
        folders.append(Path(value).expanduser())
    if bundled := bundled_ocr_models():
        folders.append(bundled)
    try:
        spec = importlib.util.find_spec(MODELS_PACKAGE)  # finds, does not import
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        folders.extend(Path(p) / "models" for p in spec.submodule_search_locations)
    return [f for f in folders if f.is_dir()]


def installed() -> bool:
    return model_files() is not None


def engine_id() -> str:
    """``photofind-ppocr 1 <digest of its model files' names and sizes>``."""
    models = model_files()
    if models is None:
        raise EngineMissing("the OCR models are not installed (pip install 'photofind[ocr]')")
    files = {**models, **_custom_recogniser()}  # another recogniser (and keys) in its place
    digest = hashlib.blake2b(digest_size=6)
    for path in (files[role] for role in sorted(files)):
        digest.update(f"{path.name}:{path.stat().st_size};".encode())
    return f"{ENGINE} {digest.hexdigest()}"


class Reader:
    """One loaded OCR engine (about 0.5 s to make); ``threads`` pins ONNX Runtime."""

    def __init__(self, threads: int = 1) -> None:
        from photofind.core.ppocr import Pipeline

        models = model_files()
        if models is None:
            raise EngineMissing("the OCR models are not installed")
        custom = _custom_recogniser()
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        self._pipeline = Pipeline(models["det"], models["cls"], custom.get("rec", models["rec"]),
                                  threads, keys=custom.get("keys"))

    def read(self, rgb: npt.NDArray[np.uint8]) -> list[Line]:
        height, width = rgb.shape[:2]
        lines = []
        for found in self._pipeline(rgb):
            box = _bounds(found.quad, width, height)
            words = _words(found.text, list(found.chars), list(found.char_quads), box,
                           width, height)
            text = " ".join(w.text for w in words) if words else found.text
            if text.strip():
                lines.append(Line(text, found.score, box, words))
        return lines


def _custom_recogniser() -> dict[str, Path]:
    """A recogniser for another language, from the environment (files that exist)."""
    found = {}
    for key, env in (("rec", REC_MODEL_ENV), ("keys", REC_KEYS_ENV)):
        value = os.environ.get(env, "").strip()
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise EngineMissing(f"{env} names {value}, which is not a file")
            found[key] = path
    return found


def _bounds(points: npt.ArrayLike, width: int, height: int) -> Box:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return (_clip(x0 / width), _clip(y0 / height), _clip(x1 / width), _clip(y1 / height))


def _clip(v: float) -> float:
    return round(min(max(float(v), 0.0), 1.0), 4)


def _words(text: str, chars: list[str], char_boxes: list[npt.ArrayLike], line: Box, width: int,
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
