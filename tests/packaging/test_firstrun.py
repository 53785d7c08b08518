"""First run of an install without torch (the packaged app): the default model comes from
Immich's ONNX export of it on the hub, under the default model's own id; offline, the
command line says in one sentence what to download and where it goes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from photofind.core.config import DEFAULT_MODEL
from photofind.testing.samples import make_sample_library

REPO = Path(__file__).resolve().parents[2]
IMMICH_REPO = "immich-app/ViT-B-32__laion2b_s34b_b79k"
# The installed app has no torch: hide it from this process the way a missing package is.
NO_TORCH = ("import sys; sys.modules.update(torch=None, torchvision=None, open_clip=None);"
            " from photofind.cli import main; raise SystemExit(main(sys.argv[1:]))")


def _photofind(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_CACHE": str(tmp / "hf"),
           "HF_HUB_OFFLINE": "1", "PHOTOFIND_LIBRARY": str(tmp / "library")}
    env.pop("PHOTOFIND_MODEL", None)
    return subprocess.run([sys.executable, "-c", NO_TORCH, *args], env=env, cwd=tmp,
                          capture_output=True, text=True, timeout=600)


def _hub_cache_with(folder: Path, cache: Path, repo: str) -> None:
    """``folder`` placed in a Hugging Face cache as the snapshot of ``repo``."""
    base = cache / ("models--" + repo.replace("/", "--"))
    commit = "0" * 40
    shutil.copytree(folder, base / "snapshots" / commit)
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)


def test_offline_first_run_says_what_to_download_in_one_sentence(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    make_sample_library(photos, per_class=1, large=0)
    proc = _photofind(tmp_path, "index", str(photos))
    assert proc.returncode == 1
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert f"https://huggingface.co/{IMMICH_REPO}" in message and "local-dir:" in message


def test_default_model_without_torch_is_immichs_onnx_folder_under_the_same_id(
        tmp_path: Path, toy_onnx: str) -> None:
    """The ONNX folder stands in for the default model; vectors are stored under the
    default model's id, the one a torch install stores them under, so a library indexed
    with either keeps its vectors in the other."""
    _hub_cache_with(Path(toy_onnx.removeprefix("local-dir:")), tmp_path / "hf", IMMICH_REPO)
    photos = make_sample_library(tmp_path / "photos", per_class=2, large=0)
    proc = _photofind(tmp_path, "index", str(tmp_path / "photos"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["embedded"] == len(photos)
    proc = _photofind(tmp_path, "search", "a red circle", "-n", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert all("red-circle" in Path(r["path"]).name for r in json.loads(proc.stdout))
    status = json.loads(_photofind(tmp_path, "status", "--json").stdout)
    assert status["model"] == DEFAULT_MODEL
    assert "ONNX Runtime" in status["engine"]
