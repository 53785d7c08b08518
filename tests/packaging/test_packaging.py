"""The packaging recipes stay in step with the code: the spec's entry point and excludes,
the NSIS script (compiled here against a stub payload), the release workflow (actionlint)
and the .deb layout (built from a stub bundle)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from photofind.bundle import APP_ID

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail(f"{name} is not installed")
    return path


def _spec_list(name: str) -> list[str]:
    tree = ast.parse((PACKAGING / "pyinstaller" / "photofind.spec").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"the spec has no {name} list")


def test_spec_excludes_torch_and_every_test_tool() -> None:
    excludes = set(_spec_list("EXCLUDES"))
    assert {"torch", "torchvision", "open_clip", "tests", "pytest", "_pytest", "pytestqt",
            "mypy", "photofind.testing.toyclip", "pandas", "pyarrow"} <= excludes


def test_frozen_entry_runs_freeze_support_before_the_cli() -> None:
    source = (PACKAGING / "pyinstaller" / "entry.py").read_text()
    assert source.index("multiprocessing.freeze_support()") < source.index(
        "from photofind.cli import main")
    spec = (PACKAGING / "pyinstaller" / "photofind.spec").read_text()
    assert '"entry.py"' in spec and 'collect_submodules(\n    "photofind"' in spec


def test_the_bundled_code_needs_nothing_the_spec_excludes() -> None:
    """Everything the bundle runs (the window, the CLI on ONNX Runtime, the self-test and
    onnxruntime's int8 quantiser) imports with every excluded module made unimportable."""
    excludes = [m for m in _spec_list("EXCLUDES") if not m.startswith("photofind.")]
    code = ("import sys\n"
            f"sys.modules.update(dict.fromkeys({excludes!r}))\n"
            "import onnxruntime.quantization, tokenizers, hnswlib, pillow_heif\n"
            "import photofind.selftest, photofind.cli, photofind.gui.mainwindow\n"
            "import photofind.core.model.onnx_runtime, photofind.core.indexer\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                                            "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_nsis_script_compiles_a_per_user_installer_from_a_stub(tmp_path: Path) -> None:
    payload = tmp_path / "payload"
    (payload / "_internal").mkdir(parents=True)
    for name in ("photofind.exe", "photofindw.exe", "_internal/base_library.zip"):
        (payload / name).write_bytes(b"stub")
    setup = tmp_path / "photofind-setup.exe"
    proc = subprocess.run([_tool("makensis"), "-V2", f"-DPAYLOAD={payload}", "-DVERSION=0.1.0",
                           f"-DOUTFILE={setup}", str(PACKAGING / "windows" / "photofind.nsi")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert setup.read_bytes()[:2] == b"MZ"
    script = (PACKAGING / "windows" / "photofind.nsi").read_text()
    assert "RequestExecutionLevel user" in script and "$SMPROGRAMS\\photofind.lnk" in script


def test_nsis_script_without_a_payload_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run([_tool("makensis"), "-V2", f"-DOUTFILE={tmp_path / 's.exe'}",
                           str(PACKAGING / "windows" / "photofind.nsi")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Define PAYLOAD" in proc.stdout + proc.stderr


def test_release_workflow_passes_actionlint_and_builds_every_system() -> None:
    workflow = REPO / ".github" / "workflows" / "release.yml"
    proc = subprocess.run([_tool("actionlint"), str(workflow)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = workflow.read_text()
    assert all(os in text for os in ("ubuntu-", "windows-", "macos-"))
    assert "packaging/build.py" in text


def test_deb_installs_under_opt_with_a_link_desktop_entry_and_icons(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "photofind").write_text("#!/bin/sh\necho stub\n")
    (bundle / "photofind").chmod(0o755)
    icons = tmp_path / "icons"
    proc = subprocess.run([sys.executable, str(REPO / "resources" / "make_icons.py"),
                           str(icons)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(PACKAGING / "linux" / "build_packages.py"),
                           "--bundle", str(bundle), "--icons", str(icons), "--out", str(out),
                           "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    deb = next(out.glob("photofind_*.deb"))
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True,
                             text=True, check=True).stdout
    assert "./usr/bin/photofind -> /opt/photofind/photofind" in listing
    for path in ("./opt/photofind/photofind", f"./usr/share/applications/{APP_ID}.desktop",
                 f"./usr/share/metainfo/{APP_ID}.metainfo.xml",
                 f"./usr/share/icons/hicolor/48x48/apps/{APP_ID}.png",
                 f"./usr/share/icons/hicolor/scalable/apps/{APP_ID}.svg"):
        assert path in listing, path
    assert " root/root " in listing and "/home" not in listing
    fields = subprocess.run(["dpkg-deb", "--field", str(deb), "Package", "Installed-Size"],
                            capture_output=True, text=True, check=True).stdout
    assert "Package: photofind" in fields
    tarball = next(out.glob("photofind-*-linux-*.tar.gz"))
    names = subprocess.run(["tar", "-tzf", str(tarball)], capture_output=True, text=True,
                           check=True).stdout.split()
    assert any(n.endswith("/photofind") for n in names)
    assert any(n.endswith(f"share/applications/{APP_ID}.desktop") for n in names)


def test_the_bundle_carries_the_package_data_the_code_reads() -> None:
    """What pyproject ships as package data (the smart albums' vocabulary, read on
    every index) must be in the frozen bundle too: PyInstaller does not read
    package-data, so the spec collects it."""
    import tomllib

    from PyInstaller.utils.hooks import collect_data_files

    spec = (PACKAGING / "pyinstaller" / "photofind.spec").read_text()
    declared = tomllib.loads((PACKAGING.parent / "pyproject.toml").read_text())
    globs = declared["tool"]["setuptools"]["package-data"]
    for package, patterns in globs.items():
        for pattern in patterns:
            sub = "/".join([*package.split(".")[1:], pattern])
            assert f'"{sub.rsplit("/", 1)[0]}/*"' in spec, f"the spec does not collect {sub}"
            found = collect_data_files("photofind", includes=[sub.rsplit("/", 1)[0] + "/*"])
            assert found, f"nothing to collect for {sub}"


def test_the_bundle_carries_rawpy_and_its_libraw() -> None:
    """RAW files decode in the installed app: rawpy is imported only by the decode
    workers when a RAW file comes, so the spec names it, and collects LibRaw."""
    from PyInstaller.utils.hooks import collect_dynamic_libs

    spec = (PACKAGING / "pyinstaller" / "photofind.spec").read_text()
    assert 'HIDDEN += ["rawpy"]' in spec
    assert 'BINARIES = collect_dynamic_libs("rawpy")' in spec and "binaries=BINARIES" in spec
    assert any(Path(src).name.startswith("libraw") for src, _ in collect_dynamic_libs("rawpy"))
