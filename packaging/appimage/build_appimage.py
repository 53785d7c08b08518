"""An AppImage of photofind, for maintainers: an AppDir from the PyInstaller bundle,
packed by appimagetool when it is installed.

The AppDir holds the bundle under usr/lib/photofind with a usr/bin/photofind link, the
desktop entry, AppStream metainfo and icons under usr/share (the same files as the .deb),
the desktop entry and icon again at its top as the AppImage format wants them, and an
AppRun that starts the bundled executable with the arguments it was given (``photofind``
opens the window; ``photofind search ...`` works from a terminal).

appimagetool is not part of this build (it is fetched from
https://github.com/AppImage/appimagetool/releases, which the build machine cannot reach);
without it the AppDir is left ready and the command that packs it is printed.

    python packaging/appimage/build_appimage.py --bundle dist/photofind --icons build/icons \\
        --out dist [--appimagetool PATH]
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "packaging" / "linux"))
from build_packages import bundle_parser, parse_bundle_args, stage_share  # noqa: E402

from photofind import __version__  # noqa: E402
from photofind.bundle import APP_ID  # noqa: E402

APPRUN = """#!/bin/sh
# Start the bundled photofind with the arguments given to the AppImage.
HERE="$(dirname "$(readlink -f "$0")")"
exec "$HERE/usr/lib/photofind/photofind" "$@"
"""


def build_appdir(bundle: Path, icons: Path, appdir: Path) -> Path:
    """The AppDir for ``bundle`` (made anew)."""
    shutil.rmtree(appdir, ignore_errors=True)
    shutil.copytree(bundle, appdir / "usr" / "lib" / "photofind", symlinks=True)
    (appdir / "usr" / "bin").mkdir(parents=True)
    (appdir / "usr" / "bin" / "photofind").symlink_to("../lib/photofind/photofind")
    stage_share(appdir / "usr" / "share", icons)
    share = appdir / "usr" / "share"
    shutil.copy2(share / "applications" / f"{APP_ID}.desktop", appdir / f"{APP_ID}.desktop")
    icon = share / "icons" / "hicolor" / "256x256" / "apps" / f"{APP_ID}.png"
    shutil.copy2(icon, appdir / f"{APP_ID}.png")
    (appdir / ".DirIcon").symlink_to(f"{APP_ID}.png")
    apprun = appdir / "AppRun"
    apprun.write_text(APPRUN)
    apprun.chmod(0o755)
    return appdir


def pack_command(tool: str, appdir: Path, out: Path) -> tuple[list[str], dict[str, str], Path]:
    """appimagetool's command line, its environment and the AppImage it writes."""
    arch = platform.machine()
    image = out / f"photofind-{__version__}-{arch}.AppImage"
    return [tool, str(appdir), str(image)], {"ARCH": arch}, image


def main(argv: list[str] | None = None) -> int:
    parser = bundle_parser(__doc__.splitlines()[0], "appimage")
    parser.add_argument("--appimagetool", default=shutil.which("appimagetool"),
                        help="appimagetool's path (default: the one on PATH)")
    args = parse_bundle_args(parser, argv)
    appdir = build_appdir(args.bundle, args.icons, args.work / "photofind.AppDir")
    args.out.mkdir(parents=True, exist_ok=True)
    command, env, image = pack_command(args.appimagetool or "appimagetool", appdir, args.out)
    if not args.appimagetool:
        print(f"{appdir} is ready; appimagetool is not installed, so pack it with:\n"
              f"  ARCH={env['ARCH']} {' '.join(command)}")
        return 0
    subprocess.run(command, check=True, env={**os.environ, **env})
    print(image)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
