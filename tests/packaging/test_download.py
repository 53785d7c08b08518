"""The first model download, against a hub on localhost: stopped part-way (Cancel, or
Ctrl-C on the command line), the next download fetches only the rest, and the model
loads from the Hugging Face cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from photofind.core.config import Settings
from photofind.core.model.download import ModelDownload, plan_download
from photofind.core.model.sources import (
    ONNX_ALLOW,
    ONNX_IGNORE,
    cached_onnx_folder,
    weights_download,
)
from photofind.testing.samples import make_sample_library
from tests.packaging.fakehub import FakeHub
from tests.packaging.test_firstrun import IMMICH_REPO, NO_TORCH, REPO


def _wait_for(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (callable(condition) and condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_cancelled_download_goes_on_from_where_it_stopped(hub: FakeHub) -> None:
    plan = plan_download(IMMICH_REPO, ONNX_ALLOW, ONNX_IGNORE)
    assert plan.total == hub.size and plan.done() == 0
    first = ModelDownload(plan, "offline")
    first.start()
    _wait_for(lambda: plan.done() > plan.total // 3)  # type: ignore[operator]
    first.cancel()  # returns once the process is gone, even mid-read
    assert not first.running
    kept = plan.done()
    assert 0 < kept < hub.size
    time.sleep(0.3)
    assert plan.done() == kept, "nothing is written after Cancel"
    assert list(Path(plan.folder, "blobs").glob("*.incomplete")), "the partial file is kept"
    assert cached_onnx_folder(f"hf-hub:{IMMICH_REPO}") is None

    before = len(hub.gets)
    second = ModelDownload(plan, "offline")
    second.start()
    _wait_for(lambda: second.wait(0.1))
    assert second.error is None
    assert hub.served_since(before) == hub.size - kept, "only the rest is fetched"
    assert any(wanted.startswith("bytes=") for wanted, _ in hub.gets[before:])

    from photofind.core.model.loading import load_encoder

    folder = cached_onnx_folder(f"hf-hub:{IMMICH_REPO}")
    assert folder is not None and Path(plan.folder, "refs", "main").read_text() == plan.commit
    encoder = load_encoder(Settings.resolve(None, f"hf-hub:{IMMICH_REPO}", "cpu"))
    assert encoder.text_vector("a red circle").shape[-1] > 0


def test_a_download_the_network_drops_says_what_to_do_and_resumes(hub: FakeHub) -> None:
    download = weights_download(f"hf-hub:{IMMICH_REPO}")
    assert isinstance(download, ModelDownload) and download.total == hub.size
    assert f"https://huggingface.co/{IMMICH_REPO}" in download.failure  # the offline sentence
    download.start()
    _wait_for(lambda: download.done() > hub.size // 3)
    hub.down = True
    _wait_for(lambda: download.wait(0.1))
    assert download.error is not None
    kept = download.done()
    assert 0 < kept < hub.size

    hub.down = False
    before = len(hub.gets)
    again = ModelDownload(download.plan, download.failure)
    again.start()
    _wait_for(lambda: again.wait(0.1))
    assert again.error is None and hub.served_since(before) == hub.size - kept
    assert cached_onnx_folder(f"hf-hub:{IMMICH_REPO}") is not None


@pytest.mark.slow
def test_command_line_first_run_survives_ctrl_c_and_resumes(hub: FakeHub, tmp_path: Path
                                                          ) -> None:
    """The installed app (no torch) indexing for the first time: the default model
    downloads with a progress bar; Ctrl-C stops it without a traceback, and the next
    run fetches only the rest and indexes."""
    photos = make_sample_library(tmp_path / "photos", per_class=1, large=0)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PHOTOFIND_LIBRARY": str(tmp_path / "lib")}
    env.pop("PHOTOFIND_MODEL", None)
    env.pop("HF_HUB_OFFLINE", None)
    command = [sys.executable, "-c", NO_TORCH, "index", str(tmp_path / "photos"), "--json"]
    proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    blobs = Path(tmp_path / "hf" / ("models--" + IMMICH_REPO.replace("/", "--")) / "blobs")

    def on_disk() -> int:
        return sum(p.stat().st_size for p in blobs.glob("*")) if blobs.is_dir() else 0
    _wait_for(lambda: on_disk() > hub.size // 3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "Traceback" not in err, err
    assert "Downloading" in err  # the progress bar
    kept = on_disk()
    assert 0 < kept < hub.size

    before = len(hub.gets)
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["embedded"] == len(photos)
    assert hub.served_since(before) == hub.size - kept
