"""The files that ship with the app: where they are, from a checkout or a frozen bundle.

A PyInstaller bundle unpacks its data next to the code (``sys._MEIPASS``); a checkout
keeps the same files under the repository's ``resources/`` folder. The bundled toy model
(written at build time by ``packaging/build.py``) is only in a bundle; a checkout finds
the trainer's cache instead (see ``photofind.testing.toyclip``).
"""

from __future__ import annotations

import sys
from pathlib import Path

APP_ID = "io.github.photofind.photofind"


def bundle_root() -> Path | None:
    """The folder a frozen app unpacked its data into, or None when not frozen."""
    meipass = getattr(sys, "_MEIPASS", None)
    return Path(meipass) if getattr(sys, "frozen", False) and meipass else None


def resources_dir() -> Path:
    frozen = bundle_root()
    return frozen / "resources" if frozen else Path(__file__).resolve().parents[1] / "resources"


def icon_path() -> Path | None:
    """The application icon's SVG source, or None when this install has none (a wheel)."""
    path = resources_dir() / "photofind.svg"
    return path if path.is_file() else None


def bundled_model_dir() -> Path | None:
    """The small self-test model shipped inside a frozen bundle, or None."""
    frozen = bundle_root()
    path = frozen / "selftest-model" if frozen else None
    return path if path and path.is_dir() else None


def bundled_ocr_models() -> Path | None:
    """The text reader's three PP-OCR models inside a frozen bundle, or None."""
    frozen = bundle_root()
    path = frozen / "ocr-models" if frozen else None
    return path if path and path.is_dir() else None
