"""DNG files made for the tests with pidng: a picture as a camera's sensor saw it
(an RGGB mosaic), with or without an embedded JPEG preview, an orientation
and an EXIF date.

With a preview the layout is a camera's: IFD0 is the preview (NewSubfileType
1), the sensor data is in a SubIFD. pidng writes SubIFDs but cannot build
their tag (its IFD type packs a str), so the tag is made as a LONG pointing to
the IFD, which is what the tag is on disk.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from pidng import dng
from pidng.core import RAW2DNG, DNGTags, Tag
from pidng.defs import (
    CalibrationIlluminant,
    CFAPattern,
    Compression,
    DNGVersion,
    PhotometricInterpretation,
)
from PIL import Image

WHITE = 4095  # 12-bit sensor values in 16-bit samples


# XYZ to linear sRGB: the camera's colour matrix when its sensor sees linear sRGB.
XYZ_TO_SRGB = ((3.2406, -1.5372, -0.4986), (-0.9689, 1.8758, 0.0415),
               (0.0557, -0.2040, 1.0570))


def mosaic(picture: Image.Image) -> np.ndarray:
    """The picture's RGB as an RGGB Bayer mosaic of linear light (what a sensor
    that sees linear sRGB records)."""
    srgb = np.asarray(picture.convert("RGB"), dtype=np.float64) / 255.0
    rgb = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    h, w = rgb.shape[:2]
    raw = np.zeros((h, w), np.uint16)
    raw[0::2, 0::2] = rgb[0::2, 0::2, 0] * WHITE
    raw[0::2, 1::2] = rgb[0::2, 1::2, 1] * WHITE
    raw[1::2, 0::2] = rgb[1::2, 0::2, 1] * WHITE
    raw[1::2, 1::2] = rgb[1::2, 1::2, 2] * WHITE
    return raw


def _sensor_tags(w: int, h: int) -> DNGTags:
    t = DNGTags()
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)
    t.set(Tag.TileLength, h)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, 16)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, CFAPattern.RGGB)
    t.set(Tag.BlackLevel, 0)
    t.set(Tag.WhiteLevel, WHITE)
    t.set(Tag.ColorMatrix1, [[round(v * 10000), 10000] for row in XYZ_TO_SRGB for v in row])
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    t.set(Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]])
    return t


def write_dng(path: Path, picture: Image.Image, *, preview: Image.Image | None = None,
              orientation: int = 1, date: str | None = None) -> Path:
    """Write ``picture`` (as stored, before ``orientation``) as a DNG.

    ``preview``: an embedded JPEG preview (stored like the sensor data, before
    the orientation). ``date``: EXIF DateTimeOriginal, "YYYY:MM:DD HH:MM:SS".
    """
    w, h = picture.size
    raw = mosaic(picture)
    tags = _sensor_tags(w, h)
    if preview is None:
        tags.set(Tag.Orientation, orientation)
        tags.set(Tag.DNGVersion, DNGVersion.V1_4)
        tags.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)
        tags.set(Tag.Make, "photofind")
        tags.set(Tag.Model, "test camera")
        if date:
            tags.set(Tag.DateTimeOriginal, date)
        writer = RAW2DNG()
        writer.options(tags, path="", compress=False)
        path.write_bytes(bytes(writer.convert(raw)))
        return path
    path.write_bytes(_with_preview(raw, tags, preview, orientation, date))
    return path


def _with_preview(raw: np.ndarray, tags: DNGTags, preview: Image.Image, orientation: int,
                  date: str | None) -> bytes:
    buf = io.BytesIO()
    preview.convert("RGB").save(buf, "JPEG", quality=92)
    jpeg, tile = buf.getvalue(), raw.astype("<u2").tobytes()
    doc = dng.DNG()
    doc.ImageDataStrips += [tile, jpeg]
    sensor = dng.dngIFD()
    tile_at = dng.dngTag(Tag.TileOffsets, [0])
    sensor.tags += [tile_at, dng.dngTag(Tag.NewSubfileType, [0]),
                    dng.dngTag(Tag.TileByteCounts, [len(tile)]),
                    dng.dngTag(Tag.Compression, [Compression.Uncompressed]), *tags.list()]
    subifd = dng.dngTag((Tag.SubIFD[0], dng.Type.Long), [0])
    subifd.subIFD = sensor
    main = dng.dngIFD()
    jpeg_at = dng.dngTag(Tag.StripOffsets, [0])
    main.tags += [
        dng.dngTag(Tag.NewSubfileType, [1]), dng.dngTag(Tag.ImageWidth, [preview.width]),
        dng.dngTag(Tag.ImageLength, [preview.height]), dng.dngTag(Tag.BitsPerSample, [8, 8, 8]),
        dng.dngTag(Tag.Compression, [7]),  # JPEG
        dng.dngTag(Tag.PhotometricInterpretation, [6]),  # YCbCr
        dng.dngTag(Tag.SamplesPerPixel, [3]), jpeg_at,
        dng.dngTag(Tag.RowsPerStrip, [preview.height]),
        dng.dngTag(Tag.StripByteCounts, [len(jpeg)]),
        dng.dngTag(Tag.Orientation, [orientation]), dng.dngTag(Tag.Make, "photofind"),
        dng.dngTag(Tag.Model, "test camera"), dng.dngTag(Tag.DNGVersion, [1, 4, 0, 0]),
        dng.dngTag(Tag.DNGBackwardVersion, [1, 2, 0, 0]), subifd]
    if date:
        main.tags.append(dng.dngTag(Tag.DateTimeOriginal, date))
    doc.IFDs.append(main)
    out = bytearray(doc.dataLen())  # places the strips: their offsets are known now
    tile_at.setValue([doc.StripOffsets[0]])
    jpeg_at.setValue([doc.StripOffsets[1]])
    doc.setBuffer(out)
    doc.write()
    return bytes(out)
