"""Smoke test of a built installer, run the way a user runs the installed app.

The app is installed without touching the machine (a .deb with ``dpkg -x`` into a
temporary root, a Windows installer silently into a temporary folder, a DMG's .app copied
out) and run from a folder outside the checkout, with a clean HOME and only the system's
PATH (no Python environment of ours):

- ``photofind --version`` and ``photofind --self-test`` exit 0, and the self-test's text
  reader (the bundled PP-OCR models) reads a drawn receipt's total;
- with no model yet and no network, indexing says in one sentence what to download;
- with no model yet and a hub (a local one serving the bundled toy model as the default
  model's ONNX repo), indexing downloads it into the Hugging Face cache and goes on;
- ``index`` a drawn sample library with the bundled toy model, then ``search`` it: the
  top answers for a caption show that caption;
- on Linux, the window opens under Xvfb with its icon, downloads the default model from
  the local hub in its download process and loads it (a screenshot is saved), and closes
  cleanly when asked to by the window manager protocol;
- no file of the bundle is or imports torch.

It prints the installer's size, the installed size, the time of a cold ``photofind search``
and the time to a shown window. Exit status 0 when every check passed.

    python packaging/smoke_test.py dist/photofind_0.1.0_amd64.deb [--shots DIR]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from photofind import __version__  # noqa: E402
from photofind.bundle import APP_ID  # noqa: E402

if TYPE_CHECKING:
    from tests.packaging.fakehub import FakeHub

FORBIDDEN = ("torch", "torchvision", "open_clip", "pytest", "_pytest")


class Failed(Exception):
    pass


def install(installer: Path, root: Path) -> tuple[Path, Path]:
    """Unpack ``installer`` under ``root``; return (the app's executable, its install dir)."""
    name = installer.name
    if name.endswith(".deb"):
        subprocess.run(["dpkg-deb", "-x", str(installer), str(root)], check=True)
        link = root / "usr" / "bin" / "photofind"
        if os.readlink(link) != "/opt/photofind/photofind":
            raise Failed(f"/usr/bin/photofind points at {os.readlink(link)}")
        for part in (f"usr/share/applications/{APP_ID}.desktop",
                     f"usr/share/metainfo/{APP_ID}.metainfo.xml",
                     f"usr/share/icons/hicolor/256x256/apps/{APP_ID}.png"):
            if not (root / part).is_file():
                raise Failed(f"the package has no {part}")
        return root / "opt" / "photofind" / "photofind", root / "opt" / "photofind"
    if name.endswith(".tar.gz"):
        subprocess.run(["tar", "-xzf", str(installer), "-C", str(root)], check=True)
        top = next(root.iterdir())
        return top / "photofind", top
    if name.endswith(".exe"):
        target = root / "photofind"
        subprocess.run([str(installer), "/S", f"/D={target}"], check=True)
        return target / "photofind.exe", target
    if name.endswith(".dmg"):
        mount = root / "mnt"
        subprocess.run(["hdiutil", "attach", "-nobrowse", "-mountpoint", str(mount),
                        str(installer)], check=True, stdout=subprocess.DEVNULL)
        try:
            shutil.copytree(mount / "photofind.app", root / "photofind.app", symlinks=True)
        finally:
            subprocess.run(["hdiutil", "detach", str(mount)], check=False)
        app = root / "photofind.app"
        return app / "Contents" / "MacOS" / "photofind", app
    raise Failed(f"do not know how to install {name}")


def clean_env(home: Path) -> dict[str, str]:
    system_path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep)
        if p and not any(s in p for s in (".venv", "venv", "conda", "pyenv", "hostedtoolcache",
                                          str(REPO)))) or "/usr/bin:/bin"
    env = {"HOME": str(home), "USERPROFILE": str(home), "PATH": system_path,
           "LANG": "C.UTF-8", "PHOTOFIND_DECODE_TIMEOUT": "120"}
    for key in ("SYSTEMROOT", "WINDIR", "TEMP", "TMP", "LOCALAPPDATA", "APPDATA"):
        if key in os.environ:
            env[key] = os.environ[key]
    if sys.platform.startswith("linux"):
        env["XDG_CACHE_HOME"] = str(home / ".cache")
        env["XDG_DATA_HOME"] = str(home / ".local" / "share")
        env["XDG_CONFIG_HOME"] = str(home / ".config")
    return env


def run(exe: Path, args: list[str], env: dict[str, str], cwd: Path,
        timeout: float = 600) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.perf_counter()
    proc = subprocess.run([str(exe), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise Failed(f"photofind {' '.join(args)} exited {proc.returncode}:\n"
                     f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc, took


def bundle_files(install_dir: Path) -> Iterator[Path]:
    yield from (p for p in install_dir.rglob("*") if p.is_file())


def check_no_torch(exe: Path, install_dir: Path) -> None:
    """No torch file on disk, and no torch module in the frozen archive."""
    for path in bundle_files(install_dir):
        parts = {part.lower().split(".")[0] for part in path.relative_to(install_dir).parts}
        if parts & {"torch", "torchvision", "open_clip", "libtorch", "libtorch_cpu"}:
            raise Failed(f"the bundle holds {path.relative_to(install_dir)}")
    from PyInstaller.archive.readers import CArchiveReader

    archive = CArchiveReader(str(exe))
    modules = list(archive.open_embedded_archive("PYZ.pyz").toc)
    bad = [m for m in modules if m.split(".")[0] in FORBIDDEN]
    if bad:
        raise Failed(f"the frozen archive holds {', '.join(sorted(bad)[:5])}")


def check_offline_first_run(exe: Path, env: dict[str, str], work: Path) -> None:
    """No model yet and no network: one sentence naming what to download, exit 1."""
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([str(exe), "--library", str(work / "first-run"), "index",
                           str(work / "photos")], env=offline, cwd=work, capture_output=True,
                          text=True, timeout=300)
    message = proc.stderr.strip()
    if proc.returncode != 1 or "Traceback" in message or len(message.splitlines()) != 1 \
            or "immich-app/" not in message:
        raise Failed(f"offline first run exited {proc.returncode} with: {message[-2000:]}")


def default_repo() -> str:
    """The hub repo the installed app downloads its default model from."""
    from photofind.core.config import DEFAULT_MODEL, parse_model_spec
    from photofind.core.model.sources import immich_repo

    return immich_repo(parse_model_spec(DEFAULT_MODEL)) or ""


def local_hub(model: Path) -> FakeHub:
    """A hub on localhost serving ``model`` as the default model's ONNX repo."""
    from tests.packaging.fakehub import FakeHub

    return FakeHub(default_repo(), model, bytes_per_s=200_000_000)


def check_first_download(exe: Path, env: dict[str, str], work: Path, model: Path) -> float:
    """No model yet, a hub to download it from: the first index fetches the default
    model's ONNX folder into the Hugging Face cache and indexes; returns its time."""
    with local_hub(model) as hub:
        start = time.perf_counter()
        run(exe, ["--library", str(work / "downloaded"), "index", str(work / "photos")],
            {**env, "HF_ENDPOINT": hub.url}, work)
        took = time.perf_counter() - start
        if hub.served != hub.size:
            raise Failed(f"the first download fetched {hub.served:,} of {hub.size:,} bytes")
    repo = default_repo().replace("/", "--")
    if not list(Path(env["HOME"]).rglob(f"models--{repo}/snapshots/*")):
        raise Failed("the downloaded model is not in the Hugging Face cache")
    return took


def draw_photos(dest: Path) -> dict[str, str]:
    from photofind.testing.samples import make_sample_library
    from photofind.testing.shapes import caption

    photos = make_sample_library(dest, per_class=2, large=1)
    return {str(p.path.resolve()): caption(p.colour, p.shape) for p in photos}


def index_and_search(exe: Path, env: dict[str, str], work: Path, model: Path
                     ) -> list[float]:
    """Index drawn photos, search them in new processes; return each search's time."""
    truth = draw_photos(work / "photos")
    options = ["--library", str(work / "library"), "--model", f"local-dir:{model}"]
    run(exe, [*options, "index", str(work / "photos")], env, work)
    times = []
    for query in sorted(set(truth.values()))[:3]:
        proc, took = run(exe, [*options, "search", query, "-n", "2", "--json"], env, work)
        times.append(took)
        top = [truth.get(str(Path(r["path"]).resolve())) for r in json.loads(proc.stdout)]
        if top.count(query) < 1:
            raise Failed(f"search {query!r} answered {top}")
    return times


class _XClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
                ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _XClientMessage), ("pad", ctypes.c_long * 24)]


def ask_to_close(display: str, window: int) -> None:
    """Send WM_DELETE_WINDOW, as a window manager's close button does."""
    x11 = ctypes.CDLL("libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                               ctypes.POINTER(_XEvent)]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = x11.XOpenDisplay(display.encode())
    if not dpy:
        raise Failed(f"cannot open display {display}")
    event = _XEvent()
    event.xclient.type = 33  # ClientMessage
    event.xclient.window = window
    event.xclient.message_type = x11.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
    event.xclient.format = 32
    event.xclient.data[0] = x11.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
    x11.XSendEvent(dpy, window, 0, 0, ctypes.byref(event))
    x11.XFlush(dpy)
    x11.XCloseDisplay(dpy)


def window_check(exe: Path, env: dict[str, str], work: Path, shots: Path, model: Path
                 ) -> float:
    """Open the window under Xvfb with no model yet and a local hub: it shows, downloads
    the default model (in its download process) and loads it; return the seconds until
    it was shown."""
    display = f":{90 + os.getpid() % 100}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten",
                             "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hub = local_hub(model).__enter__()
    cache = work / "window-hub"
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{display[1:]}").exists():
            if time.monotonic() > deadline:
                raise Failed("Xvfb did not start")
            time.sleep(0.05)
        genv = {**env, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "HF_ENDPOINT": hub.url,
                "HF_HUB_CACHE": str(cache)}
        start = time.perf_counter()
        app = subprocess.Popen([str(exe), "--library", str(work / "library")], env=genv,
                               cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
        windows: list[str] = []
        while not windows and app.poll() is None and time.perf_counter() - start < 60:
            windows = subprocess.run(["xdotool", "search", "--onlyvisible", "--class",
                                      "photofind"], env=genv, capture_output=True,
                                     text=True).stdout.split()
            time.sleep(0.02)
        shown = time.perf_counter() - start
        if not windows:
            app.kill()
            raise Failed(f"no window appeared: {app.communicate()[0][-2000:]}")
        window = int(windows[-1])
        refs = cache / f"models--{default_repo().replace('/', '--')}" / "refs" / "main"
        while not refs.exists() and app.poll() is None and time.perf_counter() - start < 120:
            time.sleep(0.1)
        if not refs.exists() or hub.served != hub.size:
            app.kill()
            raise Failed(f"the window's first download did not finish ({hub.served:,} of"
                         f" {hub.size:,} bytes): {app.communicate()[0][-2000:]}")
        time.sleep(2.0)  # the model loads; let it paint before the picture is taken
        props = subprocess.run(["xprop", "-id", str(window), "_NET_WM_ICON"], env=genv,
                               capture_output=True, text=True).stdout
        if "not found" in props or "=" not in props:
            raise Failed("the window has no icon")
        shots.mkdir(parents=True, exist_ok=True)
        subprocess.run(["import", "-display", display, "-window", "root",
                        str(shots / "window.png")], check=True)
        ask_to_close(display, window)
        try:
            output = app.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            app.kill()
            raise Failed("the window did not close when asked to") from None
        if app.returncode != 0 or "Traceback" in output:
            raise Failed(f"the window closed with {app.returncode}: {output[-2000:]}")
        return shown
    finally:
        hub.__exit__(None, None, None)
        xvfb.terminate()
        xvfb.wait()


def tree_size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("installer", type=Path)
    parser.add_argument("--shots", type=Path, default=REPO / "build" / "smoke")
    parser.add_argument("--no-window", action="store_true", help="skip the window check")
    args = parser.parse_args(argv)
    installer = args.installer.resolve()
    with tempfile.TemporaryDirectory(prefix="photofind-smoke-") as tmp:
        work = Path(tmp)
        (work / "home").mkdir()
        env = clean_env(work / "home")
        try:
            exe, install_dir = install(installer, work / "root")
            check_no_torch(exe, install_dir)
            proc, _ = run(exe, ["--version"], env, work)
            if __version__ not in proc.stdout:
                raise Failed(f"--version printed {proc.stdout!r}")
            proc, _ = run(exe, ["--self-test"], env, work)
            print(f"self-test: {proc.stdout.strip()}")
            if "text reader ok" not in proc.stdout:  # it read a drawn receipt's total
                raise Failed("the bundled text reader did not read the self-test's receipt")
            model = next(install_dir.rglob("selftest-model"), None)
            if model is None:
                raise Failed("the bundle has no selftest-model folder")
            searches = index_and_search(exe, env, work, model)
            check_offline_first_run(exe, env, work)
            downloaded = check_first_download(exe, env, work, model)
            window = None
            if sys.platform.startswith("linux") and not args.no_window:
                window = window_check(exe, env, work, args.shots.resolve(), model)
        except Failed as exc:
            print(f"smoke test FAILED: {exc}", file=sys.stderr)
            return 1
        mb = 1024 * 1024
        print(f"installer size:      {installer.stat().st_size / mb:.1f} MB  ({installer.name})")
        print(f"installed size:      {tree_size(install_dir) / mb:.1f} MB")
        print(f"first search:        {searches[0]:.2f} s  (whole process; makes the int8 text"
              " tower once)")
        print(f"cold search:         {min(searches[1:]):.2f} s  (a new process, later searches)")
        print(f"first download+index: {downloaded:.2f} s  (the toy model from a local hub)")
        if window is not None:
            print(f"time to window:      {window:.2f} s  (screenshot: {args.shots}/window.png)")
        print("smoke test ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
