"""Build photofind's installers for this system from a clean checkout.

Steps (each printed with its time): the icons from the SVG; the self-test model (the toy
CLIP, trained if not cached, exported to an ONNX folder as ``photofind model export`` does;
it needs the torch extra on the build machine, never in the bundle); the PyInstaller
onedir bundle; the installer for this system (Linux: .deb and .tar.gz; Windows: NSIS;
macOS: .app in a DMG); the smoke test on it.

    python packaging/build.py [--out dist] [--no-smoke]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from photofind import __version__  # noqa: E402


def step(name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
    start = time.perf_counter()
    print(f"== {name}: {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, **(env or {})})
    print(f"== {name}: {time.perf_counter() - start:.1f} s", flush=True)


def export_model(build: Path) -> Path:
    """The toy CLIP as an ONNX folder (exported with torch, parity-checked, and cached by
    the model package, so a rebuild reuses it)."""
    from photofind.core.model.export import exported_folder
    from photofind.testing.toyclip import toy_model_dir

    start = time.perf_counter()
    out = build / "selftest-model"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(exported_folder(f"local-dir:{toy_model_dir()}"), out)
    print(f"== self-test model: {time.perf_counter() - start:.1f} s ({out})", flush=True)
    return out


def installers(bundle: Path, icons: Path, out: Path, build: Path) -> list[Path]:
    if sys.platform.startswith("linux"):
        step("linux packages", [sys.executable, "packaging/linux/build_packages.py",
                                "--bundle", str(bundle), "--icons", str(icons), "--out", str(out),
                                "--work", str(build / "linux")])
        return sorted(out.glob(f"photofind_{__version__}_*.deb"))
    if sys.platform == "win32":
        setup = out / f"photofind-{__version__}-windows-x64-setup.exe"
        step("nsis", ["makensis", f"/DPAYLOAD={bundle}", f"/DVERSION={__version__}",
                      f"/DICON={icons / 'photofind.ico'}", f"/DOUTFILE={setup}",
                      "packaging/windows/photofind.nsi"])
        return [setup]
    if sys.platform == "darwin":
        dmg = out / f"photofind-{__version__}-macos.dmg"
        step("dmg", ["sh", "packaging/macos/make_dmg.sh", str(out / "photofind.app"), str(dmg)])
        return [dmg]
    raise SystemExit(f"no installer recipe for {sys.platform}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument("--build", type=Path, default=REPO / "build")
    parser.add_argument("--no-smoke", action="store_true", help="build, do not smoke-test")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out, build = args.out.resolve(), args.build.resolve()
    icons = build / "icons"
    step("icons", [sys.executable, "resources/make_icons.py", str(icons)])
    model = export_model(build)
    shutil.rmtree(out / "photofind", ignore_errors=True)
    step("bundle", [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean",
                    "--log-level", "WARN", "--distpath", str(out), "--workpath",
                    str(build / "pyinstaller"), "packaging/pyinstaller/photofind.spec"],
         {"PHOTOFIND_SELFTEST_MODEL": str(model), "PHOTOFIND_ICONS": str(icons)})
    built = installers(out / "photofind", icons, out, build)
    if not args.no_smoke:
        for installer in built:
            step("smoke test", [sys.executable, "packaging/smoke_test.py", str(installer),
                                "--shots", str(build / "smoke")])
    print(f"== build: {time.perf_counter() - start:.1f} s in all; "
          + ", ".join(str(p) for p in built))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
