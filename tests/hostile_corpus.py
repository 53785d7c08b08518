"""A generated corpus of hostile files (nothing downloaded).

``make_hostile_corpus(folder)`` writes at least 150 files of the kinds people
meet in 20 years of photos and returns, for each, what photofind must do:
``("ok", None)`` index it, ``("failed", reasons)`` list it as failed with one
of those reasons, or ``("skipped", None)`` pass it by without blocking.
"""

from __future__ import annotations

import io
import os
import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from photofind.core.imaging import register_heif
from photofind.core.scanner import NOT_A_FILE

TRUNCATED = {"truncated", "not an image"}
Expect = tuple[str, "set[str] | None"]


def _photo(w: int = 320, h: int = 240, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], axis=2)
    noise = rng.normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def _encoded(img: Image.Image, fmt: str, **options: object) -> bytes:
    register_heif()
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def _png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge picture."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + \
        chunk(b"IEND", b"")


def _corrupt_huffman(jpeg: bytes) -> bytes:
    """Overwrite the code counts of every Huffman table (DHT) with garbage."""
    data = bytearray(jpeg)
    i = 0
    while (i := data.find(b"\xff\xc4", i)) != -1:
        data[i + 5:i + 21] = bytes([255] * 16)
        i += 2
    return bytes(data)


def make_hostile_corpus(folder: Path, seed: int = 1) -> dict[Path, Expect]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    expect: dict[Path, Expect] = {}

    def put(name: str | bytes, data: bytes, outcome: Expect) -> None:
        path = folder / os.fsdecode(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expect[path] = outcome

    jpeg = _encoded(_photo(), "JPEG", quality=90)
    png = _encoded(_photo(seed=2), "PNG")
    heic = _encoded(_photo(seed=3), "HEIF", quality=80)
    for ext in ("jpg", "png", "heic", "webp"):
        put(f"empty/zero.{ext}", b"", ("failed", {"empty file"}))
    put("tiny/one-byte.jpg", b"\xff", ("failed", {"not an image"}))
    put("tiny/one-byte.png", b"\x89", ("failed", {"not an image"}))
    for i in range(30):
        ext = ("jpg", "jpeg", "png", "heic", "webp", "gif", "tif", "bmp")[i % 8]
        put(f"random/noise-{i}.{ext}", rng.randbytes(rng.randrange(10, 5000)),
            ("failed", {"not an image"}))
    for kind, data in (("jpg", jpeg), ("png", png), ("heic", heic)):
        for i, frac in enumerate(np.linspace(0.02, 0.97, 35)):
            put(f"truncated/{kind}-{i:02d}.{kind}", data[: int(len(data) * frac)],
                ("failed", TRUNCATED))
    put("bomb/huge.png", _png_bomb(50_000, 50_000), ("failed", {"too large"}))
    put("corrupt/huffman.jpg", _corrupt_huffman(jpeg), ("failed", {"corrupt image",
                                                                   "truncated"}))
    put("corrupt/postscript.jpg", _encoded(_photo(seed=9), "EPS"),
        ("failed", {"unsupported format (EPS)"}))

    ok: Expect = ("ok", None)
    put("odd/png-named.jpg", png, ok)
    put("odd/jpeg-named.png", jpeg, ok)
    put("odd/cmyk.jpg", _encoded(_photo(seed=4).convert("CMYK"), "JPEG"), ok)
    sixteen = Image.fromarray(np.asarray(_photo(seed=5).convert("L"), np.uint16) * 257)
    put("odd/sixteen-bit.png", _encoded(sixteen, "PNG"), ok)
    palette = _photo(seed=6).convert("P", palette=Image.Palette.ADAPTIVE)
    put("odd/palette-transparent.png", _encoded(palette, "PNG", transparency=0), ok)
    put("odd/grey-alpha.png", _encoded(_photo(seed=7).convert("LA"), "PNG"), ok)
    frames = [_photo(seed=s).convert("P") for s in range(3)]
    put("odd/animated.gif", _encoded(frames[0], "GIF", save_all=True,
                                     append_images=frames[1:], loop=0), ok)
    put("odd/one-pixel.png", _encoded(Image.new("RGB", (1, 1), "red"), "PNG"), ok)
    put("odd/strip.png", _encoded(Image.new("RGB", (1, 10_000), "blue"), "PNG"), ok)
    exif = Image.Exif()
    exif[0x0112] = 77  # no such orientation
    put("odd/bad-orientation.jpg", _encoded(_photo(seed=8), "JPEG", exif=exif.tobytes()), ok)
    put("names/line\nbreak.jpg", jpeg, ok)
    put("names/" + "x" * 251 + ".jpg", jpeg, ok)
    put(b"names/caf\xe9-latin1.jpg", jpeg, ("failed", {"file name is not valid UTF-8; rename it"}))

    locked = folder / "perm" / "locked.jpg"
    # (Indexed by a process that permissions bind, root's included: test_faults.py.)
    put("perm/locked.jpg", jpeg, ("failed", {"permission denied"}))
    locked.chmod(0)
    (folder / "special").mkdir()
    os.mkfifo(folder / "special" / "pipe.jpg")
    expect[folder / "special" / "pipe.jpg"] = ("failed", {NOT_A_FILE})
    (folder / "special" / "zero.jpg").symlink_to("/dev/zero")
    expect[folder / "special" / "zero.jpg"] = ("failed", {NOT_A_FILE})
    (folder / "loop-a").mkdir()
    (folder / "loop-b").mkdir()
    (folder / "loop-a" / "to-b").symlink_to(folder / "loop-b")
    (folder / "loop-b" / "to-a").symlink_to(folder / "loop-a")
    return expect
