"""The model's input geometry (``Preprocess``), with no numpy and no model code.

It is what a decode worker needs to turn a photo into model-ready pixels
(imaging.model_image), and it travels to the workers pickled: defined here, it
costs them no more than this module to import (preprocess.py, which turns
those pixels into model input, needs numpy).
"""

from __future__ import annotations

from dataclasses import dataclass

RESIZE_MODES = ("shortest", "squash")


@dataclass(frozen=True)
class Preprocess:
    """The model's input geometry, taken from open_clip's preprocess config."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"  # or "squash"; "fit" keeps the whole picture
