"""The icon, desktop entry and AppStream metainfo that the installers ship."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from photofind.bundle import APP_ID, icon_path

REPO = Path(__file__).resolve().parents[2]
RESOURCES = REPO / "resources"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian: see the README's packaging section)")
    return path


def test_desktop_entry_is_valid_and_names_the_icon_and_command() -> None:
    entry = RESOURCES / f"{APP_ID}.desktop"
    proc = subprocess.run([_tool("desktop-file-validate"), str(entry)], capture_output=True,
                          text=True)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr
    text = entry.read_text()
    assert f"Icon={APP_ID}\n" in text and "Exec=photofind" in text


def test_metainfo_is_valid_and_launches_the_desktop_entry() -> None:
    meta = RESOURCES / f"{APP_ID}.metainfo.xml"
    proc = subprocess.run([_tool("appstreamcli"), "validate", "--no-net", str(meta)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f'<launchable type="desktop-id">{APP_ID}.desktop</launchable>' in meta.read_text()


def test_icons_are_generated_at_every_size_from_the_svg(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(RESOURCES / "make_icons.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for size in (16, 32, 48, 128, 256, 512):
        png = Image.open(tmp_path / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png")
        assert png.size == (size, size)
        alpha = png.convert("RGBA").getchannel("A")
        corner, centre = alpha.getpixel((0, size - 1)), alpha.getpixel((size // 2, size // 2))
        assert corner == 0 and centre == 255, "the picture is drawn, the corner is transparent"
    ico = Image.open(tmp_path / "photofind.ico")
    assert {(16, 16), (32, 32), (256, 256)} <= set(ico.info["sizes"])
    icns = Image.open(tmp_path / "photofind.icns")
    assert {(16, 16, 2), (128, 128, 1), (512, 512, 1)} <= set(icns.info["sizes"])


def test_window_icon_is_the_svg_and_renders(qapp: object) -> None:
    from PySide6.QtGui import QIcon

    path = icon_path()
    assert path is not None and path.parent == RESOURCES
    assert not QIcon(str(path)).pixmap(64, 64).toImage().isNull()
