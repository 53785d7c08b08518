"""Safe image decoding: one file in, model-ready pixels, a thumbnail and metadata out.

This module runs inside decode worker processes, so it imports only Pillow,
pillow-heif, xxhash and (for camera RAW files, rawfiles.py) rawpy, never torch;
numpy only where a picture needs it (16-bit greyscale, RAW files, the ``pixels``
of a result), so a worker starts without it.
A multi-picture JPEG (.mpo) is read as its first picture. JPEGs decode in draft mode (a DCT-domain
downscale) at the smallest scale that still covers the model input and the
thumbnail; EXIF orientation is applied; every mode becomes RGB (alpha over
white, 16-bit scaled down). Resizing and cropping reproduce open_clip's eval
transform exactly (bicubic shortest-side resize, centre crop), so the pixels
match ``preprocess(Image.open(path))`` when draft mode is off.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import xxhash
from PIL import Image, ImageOps, UnidentifiedImageError

# The decode path reads the model's geometry from the model package (no numpy).
from photofind.core.model.geometry import Preprocess as Preprocess
from photofind.core.records import RAW_EXTENSIONS, TakenSource

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

THUMB_SIZE = 256
PARTIAL_HASH_CHUNK = 64 * 1024
CONTENT_HASH = "xxh3-128:"  # the prefix of content_hash's digests
# Only photo formats: never EPS, PDF, PSD or fonts, whatever the file claims.
# (Pillow opens multi-picture JPEGs as MPO through its JPEG opener.)
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "HEIF", "AVIF")

_formats: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decoded:
    rgb: bytes  # the model's pixels, 8-bit RGB rows (model_image), before normalisation
    rgb_size: tuple[int, int]  # their width and height
    thumbnail: bytes  # JPEG
    width: int
    height: int
    taken_at: str | None  # from EXIF; None when the file has no date (see taken_source)
    taken_source: TakenSource | None
    quick_hash: str  # partial_hash
    content_hash: str = ""  # filled in by the decode worker (content_hash)

    @property
    def pixels(self) -> npt.NDArray[np.uint8]:
        """The model's pixels as a new (height, width, 3) array at each call."""
        import numpy as np

        w, h = self.rgb_size
        return np.frombuffer(self.rgb, np.uint8).reshape(h, w, 3).copy()


@dataclass(frozen=True)
class Failed:
    reason: str


def partial_hash(path: str, size: int | None = None) -> str:
    """Size plus the first and last 64 KiB: cheap, and stable across renames."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        if size is None:
            size = os.fstat(fh.fileno()).st_size
        h.update(str(size).encode())
        h.update(fh.read(PARTIAL_HASH_CHUNK))
        if size > 2 * PARTIAL_HASH_CHUNK:
            fh.seek(size - PARTIAL_HASH_CHUNK)
            h.update(fh.read(PARTIAL_HASH_CHUNK))
    return h.hexdigest()


def content_hash(path: str, like: str | None = None) -> str:
    """A hash of the whole file: what confirms that two files hold the same picture.

    xxh3-128, streamed, as ``xxh3-128:<hex>``: 0.5 ms for a 12 MP JPEG against
    blake2b's 3.8 (a tenth of its decode; benchmarks/bench_hash.py). Catalogs
    made before hold bare blake2b-160 digests, and they stay: ``like`` is a
    stored digest, and the file is hashed the way that one was, so the two
    compare (a moved file is still known, an unchanged one not re-embedded)."""
    with open(path, "rb") as fh:
        if like is not None and not is_current_hash(like):
            return hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=20)).hexdigest()
        return CONTENT_HASH + hashlib.file_digest(fh, xxhash.xxh3_128).hexdigest()


def is_current_hash(digest: str) -> bool:
    """Whether a stored content digest is of today's algorithm (not blake2b's)."""
    return digest.startswith(CONTENT_HASH)


def register_heif() -> tuple[str, ...]:
    """Register HEIC/HEIF with Pillow; returns the photo formats this Pillow opens."""
    global _formats
    if not _formats:
        import pillow_heif

        pillow_heif.register_heif_opener()
        Image.init()
        _formats = tuple(f for f in PHOTO_FORMATS if f in Image.OPEN)
    return _formats


@dataclass(frozen=True)
class Opened:
    image: Image.Image  # oriented, 8-bit RGB, possibly draft-reduced
    width: int  # full size as displayed (after EXIF orientation)
    height: int
    taken_at: str | None  # the EXIF date (ISO 8601), None without one
    taken_source: TakenSource | None = None


def open_photo(source: str | io.BytesIO, *, draft_size: int | None,
               min_side: int | None = None) -> Opened:
    """Open, draft-decode, orient and convert to RGB; raises on bad input.

    ``draft_size``: JPEGs decode at the smallest DCT scale whose both sides
    still reach it. ``min_side``: a HEIC/AVIF whose embedded thumbnail has a
    short side of at least this (and a long side of ``draft_size``) uses the
    thumbnail instead of decoding the full picture.
    """
    if isinstance(source, str) and is_raw(source):
        from photofind.core.rawfiles import open_raw

        return open_raw(source, draft_size=draft_size, min_side=min_side)
    formats = register_heif()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img: Image.Image = Image.open(source, formats=formats)
        width, height = img.size
        taken = capture_date(img) or (None, None)
        if draft_size and img.format in ("JPEG", "MPO"):
            img.draft("RGB", (draft_size, draft_size))
        small = _heif_thumbnail(img, draft_size, min_side) if draft_size and min_side else None
        if small is not None:
            return Opened(to_rgb(small), width, height, *taken)
        img.load()
    try:
        oriented = ImageOps.exif_transpose(img)
        if oriented is not None:
            if oriented.size != img.size:
                width, height = height, width
            img = oriented
    except Exception:  # a broken orientation tag must not fail the photo
        pass
    return Opened(to_rgb(img), width, height, *taken)


def _heif_thumbnail(img: Image.Image, long_side: int, short_side: int) -> Image.Image | None:
    """The largest embedded HEIF thumbnail that covers both sizes, or None.

    libheif applies the picture's rotation and mirroring to thumbnails too,
    as it does to the primary image, so the result is already upright.
    """
    heif = getattr(img, "_heif_file", None)  # pillow-heif's parsed container
    if img.format not in ("HEIF", "AVIF") or heif is None or not img.info.get("thumbnails"):
        return None
    try:
        primary = heif[heif.primary_index]
        best = None
        for index in range(len(img.info["thumbnails"])):
            thumb = primary.get_thumbnail(index)
            w, h = thumb.size
            if min(w, h) >= short_side and max(w, h) >= long_side and (
                    best is None or w * h > best.size[0] * best.size[1]):
                best = thumb
        if best is None:
            return None
        # A thumbnail of another shape than the picture would crop differently.
        if abs(best.size[0] / best.size[1] - img.size[0] / img.size[1]) > 0.02:
            return None
        out: Image.Image = best.to_pillow()
        return out
    except Exception:  # a broken thumbnail falls back to the full decode
        return None


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB: alpha over white, 16-bit scaled, CMYK converted."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max(initial=0) > 255 else 255.0
        img = Image.fromarray(np.clip(arr * (255.0 / peak), 0, 255).astype(np.uint8), "L")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def model_pixels(img: Image.Image, pre: Preprocess) -> npt.NDArray[np.uint8]:
    """``model_image`` as an (height, width, 3) array."""
    import numpy as np

    return np.asarray(model_image(img, pre), dtype=np.uint8)


def model_image(img: Image.Image, pre: Preprocess) -> Image.Image:
    """open_clip's eval geometry: shortest-side resize then centre crop (or squash;
    or "fit": the whole picture, its long side at most the model's size)."""
    resample = Image.Resampling.BILINEAR if pre.interpolation == "bilinear" \
        else Image.Resampling.BICUBIC
    s = pre.size
    w, h = img.size
    if pre.resize_mode == "fit":  # the whole picture, long side at most s (locate.py)
        if max(w, h) > s:
            img = img.resize((max(1, round(w * s / max(w, h))),
                              max(1, round(h * s / max(w, h)))), resample)
        return img
    if pre.resize_mode == "squash":
        return img.resize((s, s), resample)
    if max(w, h) > 16 * min(w, h):
        # A strip (1 x 10,000) would resize to gigabytes before the crop throws
        # most of it away: cut the middle out first (nearly the same pixels).
        keep = 16 * min(w, h)
        if w > h:
            img = img.crop(((w - keep) // 2, 0, (w - keep) // 2 + keep, h))
        else:
            img = img.crop((0, (h - keep) // 2, w, (h - keep) // 2 + keep))
        w, h = img.size
    # torchvision.transforms.Resize(int): the short side becomes s, the long side
    # int(s * long / short); CenterCrop rounds the offsets.
    if w <= h:
        new_w, new_h = s, int(s * h / w)
    else:
        new_w, new_h = int(s * w / h), s
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), resample)
    left = round((new_w - s) / 2.0)
    top = round((new_h - s) / 2.0)
    return img.crop((left, top, left + s, top + s))


def make_thumbnail(img: Image.Image, size: int = THUMB_SIZE) -> bytes:
    thumb = img.copy()
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.save(buf, "JPEG", quality=85, optimize=True)
    return buf.getvalue()


# EXIF dates, best first: DateTimeOriginal, DateTimeDigitized (in the Exif
# IFD; some writers put them in IFD0), DateTime (IFD0).
_DATE_TAGS: tuple[tuple[int, TakenSource], ...] = (
    (36867, "exif-original"), (36868, "exif-digitized"), (306, "exif"))


def capture_date(img: Image.Image) -> tuple[str, TakenSource] | None:
    """The picture's EXIF date as ISO 8601 and its source, or None."""
    try:
        return exif_date(img.getexif())
    except Exception:  # a broken EXIF block is no date, not a failed photo
        return None


def exif_date(exif: Image.Exif) -> tuple[str, TakenSource] | None:
    """The best date in an EXIF block (``_DATE_TAGS``) and its source, or None."""
    try:
        sub = exif.get_ifd(0x8769)
    except Exception:
        sub = {}
    for tag, source in _DATE_TAGS:
        when = _parse_date(sub.get(tag) or exif.get(tag))
        if when is not None:
            return when, source
    return None


def _parse_date(raw: object) -> str | None:
    """'2019:06:21 10:11:12' as '2019-06-21T10:11:12'; None for blanks, zeros
    and the Unix epoch (what a camera without a clock, or a tool, writes)."""
    if not raw:
        return None
    text = (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)).strip("\x00 ")
    for pattern in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            when = datetime.strptime(text[:19], pattern)
        except ValueError:
            continue
        return when.isoformat() if when.year > 1970 else None
    return None


def decode_file(path: str, pre: Preprocess, draft: bool = True) -> Decoded | Failed:
    """Decode one file for indexing; never raises for a bad file."""
    try:
        size = os.stat(path).st_size
        if size == 0:
            return Failed("empty file")
        quick_hash = partial_hash(path, size)
        opened = open_photo(path, draft_size=max(pre.size, THUMB_SIZE) if draft else None,
                            min_side=pre.size)
        pixels = model_image(opened.image, pre)
        return Decoded(
            rgb=pixels.tobytes(),
            rgb_size=pixels.size,
            thumbnail=make_thumbnail(opened.image),
            width=opened.width,
            height=opened.height,
            taken_at=opened.taken_at,
            taken_source=opened.taken_source,
            quick_hash=quick_hash,
        )
    except Exception as exc:  # every failure becomes a reason
        reason = failure_reason(exc)
        if is_raw(path):
            from photofind.core.rawfiles import raw_reason

            reason = raw_reason(reason, path)
        elif reason == "not an image":
            reason = _other_format(path) or reason
        return Failed(reason)


def failure_reason(exc: BaseException) -> str:
    """A short, stable reason a user can read in ``photofind failed``."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "file vanished"
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning
                  | MemoryError):
        return "too large"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image"
    if type(exc).__module__.startswith("rawpy"):
        return _raw_failure(type(exc).__name__)
    text = str(exc).lower()
    if any(s in text for s in ("truncated", "premature end", "broken data stream",
                               "unexpected end of file")):
        return "truncated"
    return "corrupt image"


def is_raw(path: str) -> bool:
    """Whether the file is a camera RAW file (by its extension)."""
    return os.path.splitext(path)[1].lower() in RAW_EXTENSIONS


def _raw_failure(error: str) -> str:
    """A reason for one of LibRaw's errors (rawpy.LibRaw...Error)."""
    if error == "LibRawFileUnsupportedError":
        return "not an image"
    if error in ("LibRawIOError", "LibRawInputClosedError"):
        return "truncated"
    if error in ("LibRawUnsufficientMemoryError", "LibRawTooBigError",
                 "LibRawMemPoolOverflowError"):
        return "too large"
    return "corrupt image"


def _other_format(path: str) -> str | None:
    """'unsupported format (EPS)' for a picture in a format photofind refuses."""
    try:
        with Image.open(path) as img:  # identification only: nothing is decoded
            return f"unsupported format ({img.format})"
    except Exception:
        return None
