"""The model's input geometry read from its config, and pixel normalisation, in numpy.

``Preprocess`` (geometry.py) is what the decode workers need to turn a photo into
model-ready pixels (imaging.model_image); ``normalize`` is the step that follows
on the embedding side, the same for both runtimes. Settings come from the model's own
config (open_clip's ``preprocess_cfg``, or the ``preprocess_cfg.json`` of an
ONNX folder), never from hard-coded constants.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from photofind.core.errors import PhotofindError
from photofind.core.model.geometry import RESIZE_MODES, Preprocess

__all__ = ["RESIZE_MODES", "Preprocess", "normalize", "preprocess_from_config", "unit_rows"]


def preprocess_from_config(size: object, cfg: Mapping[str, object], what: str) -> Preprocess:
    """open_clip's preprocess settings (its defaults where a key is missing).

    ``size`` is an int or [h, w]; ``what`` names the model in the error a user
    sees when it asks for a resize mode photofind does not reproduce.
    """
    side = size[0] if isinstance(size, list | tuple) else size
    mean, std = cfg.get("mean"), cfg.get("std")
    if not isinstance(side, int | float) or not isinstance(mean, list | tuple) \
            or not isinstance(std, list | tuple) or len(mean) != 3 or len(std) != 3:
        raise PhotofindError(f"The model {what} has no usable preprocessing settings.")
    pre = Preprocess(size=int(side),
                     mean=(float(mean[0]), float(mean[1]), float(mean[2])),
                     std=(float(std[0]), float(std[1]), float(std[2])),
                     interpolation=str(cfg.get("interpolation") or "bicubic"),
                     resize_mode=str(cfg.get("resize_mode") or "shortest"))
    if pre.resize_mode not in RESIZE_MODES:
        raise PhotofindError(f"Model {what} uses resize mode {pre.resize_mode!r},"
                             " which photofind does not support yet.")
    return pre


def normalize(pixels: npt.NDArray[np.uint8], pre: Preprocess) -> npt.NDArray[np.float32]:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32, scaled and standardised as
    torchvision's ToTensor + Normalize do: each channel through a table of its
    256 values (the same float32 arithmetic, one pass instead of four)."""
    pixels = np.asarray(pixels, dtype=np.uint8)
    table = _table(pre.mean, pre.std)
    n, h, w, _ = pixels.shape
    out = np.empty((n, 3, h, w), np.float32)
    for c in range(3):
        np.take(table[c], pixels[..., c], out=out[:, c])
    return out


@functools.lru_cache(maxsize=8)
def _table(mean: tuple[float, float, float], std: tuple[float, float, float]
           ) -> npt.NDArray[np.float32]:
    """(3, 256): channel value v as (v / 255 - mean) / std, in float32."""
    v = np.arange(256, dtype=np.float32) * np.float32(1.0 / 255.0)
    table: npt.NDArray[np.float32] = ((v[None, :] - np.asarray(mean, np.float32)[:, None])
                                      / np.asarray(std, np.float32)[:, None])
    return table


def unit_rows(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Rows scaled to length 1 (a zero row stays zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: npt.NDArray[np.float32] = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out
