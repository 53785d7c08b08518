"""Shared fixtures: the cached toy CLIP (and its ONNX export), sample libraries,
and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Every Qt test runs offscreen, whichever file it lives in (tests/promises has window tests).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from photofind.testing.samples import SamplePhoto, make_sample_library
from photofind.testing.toyclip import toy_model_dir

REPO = Path(__file__).resolve().parents[1]
# Reading text costs a second a photo on two cores: only the tests of it turn it on.
NO_OCR = {"PHOTOFIND_OCR": "0"}
os.environ.update(NO_OCR)


@pytest.fixture(scope="session")
def toy_model() -> str:
    """A ``local-dir:`` spec for the toy CLIP (trained once, then cached)."""
    return f"local-dir:{toy_model_dir()}"


@pytest.fixture(scope="session")
def toy_onnx(toy_model: str) -> str:
    """A ``local-dir:`` spec for the toy CLIP exported to ONNX (parity checked),
    exported once and cached like the toy model itself."""
    from photofind.core.model.export import exported_folder

    return f"local-dir:{exported_folder(toy_model)}"


@dataclass
class Cli:
    library: Path
    model: str
    env: dict[str, str]

    def run(self, *args: str, check: bool = True, timeout: float = 300,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **(extra_env or {})}
        proc = subprocess.run([sys.executable, "-m", "photofind", *args], env=env,
                              capture_output=True, text=True, timeout=timeout, cwd=REPO)
        if check and proc.returncode != 0:
            raise AssertionError(f"photofind {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stderr}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def search(self, *terms: str, limit: int = 20) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.json("search", *terms, "-n", str(limit))
        return result

    def index(self, *folders: str) -> dict[str, int]:
        result: dict[str, int] = self.json("index", *folders)
        return result


@pytest.fixture
def make_cli(toy_model: str) -> Callable[[Path], Cli]:
    def make(library: Path) -> Cli:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOFIND_")}
        env.update(PHOTOFIND_LIBRARY=str(library), PHOTOFIND_MODEL=toy_model,
                   PHOTOFIND_DEVICE="cpu", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **NO_OCR)
        return Cli(library, toy_model, env)

    return make


@pytest.fixture
def cli(tmp_path: Path, make_cli: Callable[[Path], Cli]) -> Cli:
    return make_cli(tmp_path / "library")


@dataclass
class IndexedLibrary:
    cli: Cli
    photos: list[SamplePhoto]
    root: Path


@pytest.fixture(scope="session")
def indexed(tmp_path_factory: pytest.TempPathFactory, toy_model: str) -> IndexedLibrary:
    """A sample library indexed once for the read-only tests (default runtime)."""
    return index_sample_library(tmp_path_factory, toy_model)


def index_sample_library(tmp_path_factory: pytest.TempPathFactory, model: str,
                         runtime: str | None = None) -> IndexedLibrary:
    base = tmp_path_factory.mktemp(f"indexed-{runtime or 'auto'}")
    photos = make_sample_library(base / "Pictures", per_class=6)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOFIND_")}
    env["PHOTOFIND_OCR"] = "0"  # reading text is tested on its own
    env.update(PHOTOFIND_LIBRARY=str(base / "library"), PHOTOFIND_MODEL=model,
               PHOTOFIND_DEVICE="cpu", HF_HUB_OFFLINE="1")
    if runtime:
        env["PHOTOFIND_RUNTIME"] = runtime
    cli = Cli(base / "library", model, env)
    report = cli.index(str(base / "Pictures"))
    assert report["added"] == len(photos), report
    return IndexedLibrary(cli, photos, base / "Pictures")
