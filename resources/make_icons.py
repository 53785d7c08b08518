"""Render the application icon from its SVG source into every size a package needs.

Writes, under the output folder (default ``build/icons``):
``hicolor/<n>x<n>/apps/<APP_ID>.png`` for n in SIZES plus ``hicolor/scalable/apps/<APP_ID>.svg``
(the freedesktop icon theme layout the .deb installs), ``photofind.ico`` (Windows) and
``photofind.icns`` (macOS). Qt's SVG renderer draws each size from the vector source, so
no size is drawn by hand; Pillow packs the .ico and .icns.

    python resources/make_icons.py [OUT_DIR]
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from photofind.bundle import APP_ID  # noqa: E402  (the checkout's package, by path)

SOURCE = HERE / "photofind.svg"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render_png(size: int) -> bytes:
    """The icon as PNG bytes, ``size`` pixels square."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        raise SystemExit(f"{SOURCE} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data.data())


def build(out: Path) -> list[Path]:
    from PIL import Image

    written: list[Path] = []
    images: dict[int, Image.Image] = {}
    for size in SIZES:
        png = render_png(size)
        images[size] = Image.open(io.BytesIO(png)).convert("RGBA")
        path = out / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        written.append(path)
    scalable = out / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SOURCE, scalable)
    written.append(scalable)
    ico = out / "photofind.ico"
    images[256].save(ico, format="ICO", sizes=[(s, s) for s in ICO_SIZES],
                     append_images=[images[s] for s in ICO_SIZES if s != 256])
    icns = out / "photofind.icns"
    images[512].save(icns, format="ICNS",
                     append_images=[images[s] for s in (16, 32, 64, 128, 256)])
    written += [ico, icns]
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "build" / "icons"
    for written_path in build(target):
        print(written_path)
