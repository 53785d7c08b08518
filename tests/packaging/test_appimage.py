"""The AppImage recipe's AppDir, built from a stub bundle (appimagetool itself cannot be
fetched here, so packing the AppImage is not tested)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from photofind.bundle import APP_ID

REPO = Path(__file__).resolve().parents[2]
STUB = '#!/bin/sh\necho "photofind stub: $*"\n'


def test_appdir_runs_the_bundle_with_its_arguments_and_carries_the_desktop_files(
        tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "photofind").write_text(STUB)
    (bundle / "photofind").chmod(0o755)
    icons = tmp_path / "icons"
    subprocess.run([sys.executable, str(REPO / "resources" / "make_icons.py"), str(icons)],
                   check=True, capture_output=True, timeout=120)
    proc = subprocess.run([sys.executable, str(REPO / "packaging" / "appimage"
                                               / "build_appimage.py"),
                           "--bundle", str(bundle), "--icons", str(icons), "--out",
                           str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                           "--appimagetool", ""], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    appdir = tmp_path / "work" / "photofind.AppDir"
    assert "appimagetool" in proc.stdout and str(appdir) in proc.stdout

    # AppRun, started from elsewhere through a link (as the AppImage runtime mounts it)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "AppRun").symlink_to(appdir / "AppRun")
    ran = subprocess.run([str(elsewhere / "AppRun"), "search", "a red car"], cwd=elsewhere,
                         capture_output=True, text=True, timeout=30)
    assert ran.stdout.strip() == "photofind stub: search a red car"
    assert os.path.realpath(appdir / "usr" / "bin" / "photofind") == str(
        (appdir / "usr" / "lib" / "photofind" / "photofind").resolve())

    desktop = appdir / f"{APP_ID}.desktop"
    assert f"Icon={APP_ID}" in desktop.read_text()
    validate = shutil.which("desktop-file-validate")
    assert validate, "desktop-file-validate is not installed"
    checked = subprocess.run([validate, str(desktop)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (appdir / ".DirIcon").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for part in (f"usr/share/applications/{APP_ID}.desktop",
                 f"usr/share/metainfo/{APP_ID}.metainfo.xml",
                 f"usr/share/icons/hicolor/256x256/apps/{APP_ID}.png"):
        assert (appdir / part).is_file(), part
