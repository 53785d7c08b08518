"""Linux packages from the PyInstaller bundle: a .deb (dpkg-deb) and a .tar.gz.

The .deb installs the bundle under /opt/photofind with a /usr/bin/photofind link, the
desktop entry, AppStream metainfo and icons in their freedesktop places; every file is
the package's, so `dpkg -r photofind` leaves nothing behind. The .tar.gz holds the same
tree under photofind-<version>/ for machines without dpkg.

    python packaging/linux/build_packages.py --bundle dist/photofind --icons build/icons \\
        --out dist
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from photofind import __version__  # noqa: E402
from photofind.bundle import APP_ID  # noqa: E402

# System libraries the bundled Qt (xcb platform plugin) and onnxruntime load.
DEPENDS = ("libc6 (>= 2.31), libstdc++6, libgl1, libegl1, libfontconfig1, libfreetype6,"
           " libdbus-1-3, libglib2.0-0 | libglib2.0-0t64, libx11-6, libx11-xcb1, libxkbcommon0,"
           " libxkbcommon-x11-0, libxcb-cursor0, libxcb-icccm4, libxcb-image0,"
           " libxcb-keysyms1, libxcb-randr0, libxcb-render-util0, libxcb-shape0,"
           " libxcb-xinerama0, libxcb-xkb1")
REFRESH = """#!/bin/sh
set -e
if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q /usr/share/applications || true
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -t /usr/share/icons/hicolor || true
fi
"""


def architecture() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()


def _copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, symlinks=True)


def stage_share(share: Path, icons: Path) -> None:
    """Desktop entry, metainfo and icon theme files under a ``share/`` folder."""
    resources = REPO / "resources"
    (share / "applications").mkdir(parents=True)
    shutil.copy2(resources / f"{APP_ID}.desktop", share / "applications")
    (share / "metainfo").mkdir()
    shutil.copy2(resources / f"{APP_ID}.metainfo.xml", share / "metainfo")
    _copy_tree(icons / "hicolor", share / "icons" / "hicolor")


def _size_kib(root: Path) -> int:
    total = sum(p.lstat().st_size for p in root.rglob("*") if not p.is_dir())
    return (total + 1023) // 1024


def build_deb(bundle: Path, icons: Path, out: Path, work: Path) -> Path:
    root = work / "deb-root"
    shutil.rmtree(root, ignore_errors=True)
    _copy_tree(bundle, root / "opt" / "photofind")
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "photofind").symlink_to("/opt/photofind/photofind")
    stage_share(root / "usr" / "share", icons)
    debian = root / "DEBIAN"
    debian.mkdir()
    arch = architecture()
    (debian / "control").write_text(
        f"Package: photofind\nVersion: {__version__}\nArchitecture: {arch}\n"
        "Maintainer: The photofind developers <photofind@users.noreply.github.com>\n"
        f"Installed-Size: {_size_kib(root)}\nDepends: {DEPENDS}\nSection: graphics\n"
        "Priority: optional\n"
        "Description: search your own photo folders by meaning\n"
        " photofind finds photos by what they show: type words or give it a picture.\n"
        " The model runs locally (ONNX Runtime on the CPU); nothing leaves the machine.\n")
    for script in ("postinst", "postrm"):
        path = debian / script
        path.write_text(REFRESH)
        path.chmod(0o755)
    deb = out / f"photofind_{__version__}_{arch}.deb"
    # xz -9: 120 MB where -3 gave 132 MB (the ONNX models hardly compress either way);
    # it costs about a minute and a half more of build time on 2 cores.
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "-z9", "--build", str(root),
                    str(deb)], check=True, stdout=subprocess.DEVNULL)
    return deb


def build_tarball(bundle: Path, icons: Path, out: Path, work: Path) -> Path:
    top = f"photofind-{__version__}"
    stage = work / "tar-root" / top
    shutil.rmtree(stage.parent, ignore_errors=True)
    _copy_tree(bundle, stage)
    stage_share(stage / "share", icons)
    tarball = out / f"photofind-{__version__}-linux-{os.uname().machine}.tar.gz"
    with tarfile.open(tarball, "w:gz", compresslevel=3) as tar:
        tar.add(stage, arcname=top)
    return tarball


def bundle_parser(description: str, work: str) -> argparse.ArgumentParser:
    """The options every Linux packager takes: the bundle, the icons, where to write
    and a scratch folder (``build/<work>``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bundle", type=Path, default=REPO / "dist" / "photofind")
    parser.add_argument("--icons", type=Path, default=REPO / "build" / "icons")
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument("--work", type=Path, default=REPO / "build" / work)
    return parser


def parse_bundle_args(parser: argparse.ArgumentParser,
                      argv: list[str] | None) -> argparse.Namespace:
    """The options, refused in one sentence when the bundle is not built yet."""
    args = parser.parse_args(argv)
    if not (args.bundle / "photofind").is_file():
        parser.error(f"{args.bundle} holds no photofind executable: build the bundle first")
    return args


def main(argv: list[str] | None = None) -> int:
    parser = bundle_parser(__doc__.splitlines()[0], "linux")
    parser.add_argument("--no-tarball", action="store_true")
    args = parse_bundle_args(parser, argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    print(build_deb(args.bundle, args.icons, args.out, args.work))
    if not args.no_tarball:
        print(build_tarball(args.bundle, args.icons, args.out, args.work))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
