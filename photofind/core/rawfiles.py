"""Camera RAW files (DNG, CR2, CR3, NEF, ARW, ORF, RW2, RAF, PEF, SRW) through rawpy.

A RAW file holds the sensor's data and, most often, a JPEG preview the
camera made. The preview is used when it covers what is asked (the model's
input, the thumbnail, the viewer's size) and has the picture's shape: it
decodes in milliseconds. Otherwise LibRaw demosaics at half size (one pixel
per 2x2 sensor block, no interpolation), still seconds faster than a full
demosaic and larger than any model input.

The orientation is the RAW's own (LibRaw's ``sizes.flip``; a camera's preview
is stored as the sensor saw it), the date the RAW's EXIF where it is a TIFF
(DNG, CR2, NEF, ARW, PEF, SRW, ORF, RW2), else the preview's. Runs in the
decode workers, under their memory cap: a sensor larger than Pillow's pixel
limit there fails as "too large" before anything is unpacked.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from photofind.core.imaging import Opened, capture_date, exif_date, to_rgb
from photofind.core.records import TakenSource

if TYPE_CHECKING:
    import rawpy

EXIF_HEAD = 512 * 1024  # bytes read for a TIFF-based RAW's EXIF (its IFDs come first)

# LibRaw's flip (bit 1: mirror, 2: upside down, 4: transposed) as a transpose.
_FLIPS = {1: (Image.Transpose.FLIP_LEFT_RIGHT,), 2: (Image.Transpose.FLIP_TOP_BOTTOM,),
          3: (Image.Transpose.ROTATE_180,), 4: (Image.Transpose.TRANSPOSE,),
          5: (Image.Transpose.ROTATE_90,), 6: (Image.Transpose.ROTATE_270,),
          7: (Image.Transpose.TRANSVERSE,)}
# A preview, its EXIF date and whether it is stored upright already.
_Preview = tuple[Image.Image, tuple[str, TakenSource] | None, bool]
# TIFF variants with their own magic number: Olympus ORF and Panasonic RW2.
_TIFF_LIKE = {b"IIRO": b"II*\x00", b"IIRS": b"II*\x00", b"MMOR": b"MM\x00*",
              b"IIU\x00": b"II*\x00"}


def open_raw(path: str, *, draft_size: int | None, min_side: int | None) -> Opened:
    """Open a RAW file as imaging.open_photo opens a picture; raises on bad input.

    The preview is used when both its sides reach ``min_side`` and its long
    side ``draft_size`` (never when ``draft_size`` is None: a full decode).
    """
    import rawpy

    with rawpy.imread(path) as raw:
        sizes = raw.sizes
        limit = Image.MAX_IMAGE_PIXELS
        if limit and sizes.raw_width * sizes.raw_height > limit:
            raise Image.DecompressionBombError(
                f"{sizes.raw_width} x {sizes.raw_height} sensor pixels exceed the limit")
        flip = sizes.flip if sizes.flip in _FLIPS else 0
        width, height = sizes.width, sizes.height
        if flip & 4:
            width, height = height, width
        taken = _tiff_date(path)
        aspect = sizes.width / max(1, sizes.height)
        preview = _preview(raw, aspect, bool(flip & 4), draft_size, min_side) \
            if draft_size else None
        if preview is not None:
            img, preview_taken, upright = preview
            for step in () if upright else _FLIPS.get(flip, ()):
                img = img.transpose(step)
            taken = taken or preview_taken
        else:  # LibRaw applies the flip itself
            pixels = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
            img = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    when, source = taken or (None, None)
    return Opened(to_rgb(img), width, height, when, source)


def _preview(raw: rawpy.RawPy, aspect: float, turned: bool, long_side: int,
             short_side: int | None) -> _Preview | None:
    """The embedded preview (draft-decoded), its EXIF date and whether it is
    stored upright already (its shape turned against the sensor's), if it is
    large enough and of the picture's shape; else None."""
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except rawpy.LibRawError:  # none, or damaged: the sensor data may still be good
        return None
    if isinstance(thumb.data, bytes):  # ThumbFormat.JPEG
        img: Image.Image = Image.open(io.BytesIO(thumb.data), formats=("JPEG",))
    else:  # ThumbFormat.BITMAP: RGB pixels
        img = Image.fromarray(np.ascontiguousarray(thumb.data))
    w, h = img.size
    if min(w, h) < (short_side or 0) or max(w, h) < long_side:
        return None
    upright = abs(w / h - aspect) > 0.02
    if upright and (not turned or abs(h / w - aspect) > 0.02):
        return None  # letterboxed or cropped: it would not embed as the picture
    taken = capture_date(img)
    if img.format == "JPEG":
        img.draft("RGB", (long_side, long_side))
    img.load()
    return img, taken, upright


def _tiff_date(path: str) -> tuple[str, TakenSource] | None:
    """The EXIF date of a TIFF-based RAW file (its IFDs), or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(EXIF_HEAD)
        head = _TIFF_LIKE.get(head[:4], head[:4]) + head[4:]
        if head[:4] not in (b"II*\x00", b"MM\x00*"):
            return None
        exif = Image.Exif()
        exif.load(head)
        return exif_date(exif)
    except Exception:  # not readable as a TIFF: the preview's date, else none
        return None


def raw_reason(reason: str, path: str) -> str:
    """LibRaw reports a file that is no RAW at all as an I/O error, as it does
    a cut one: only a file that starts like a RAW file is "truncated"."""
    if reason != "truncated":
        return reason
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return reason
    tiff = _TIFF_LIKE.get(head[:4], head[:4]) in (b"II*\x00", b"MM\x00*")
    if tiff or head.startswith(b"FUJIFILM") or head[4:12] == b"ftypcrx ":  # RAF, CR3
        return reason
    return "not an image"
