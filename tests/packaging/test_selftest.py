"""``photofind --self-test``: one line, ok on a working install, the failure otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from photofind import selftest
from photofind.testing.toyclip import toy_model_dir

REPO = Path(__file__).resolve().parents[2]


def test_self_test_prints_ok_in_one_line_and_exits_0(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "photofind", "--self-test"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("photofind self-test: ok"), proc.stdout
    assert "40 photos indexed" in lines[0]


def test_a_model_that_ranks_at_chance_fails_the_text_search(tmp_path: Path) -> None:
    """A broken text tower (here: its projection scrambled) is caught by the answers."""
    from safetensors.numpy import load_file, save_file

    broken = tmp_path / "broken-model"
    shutil.copytree(toy_model_dir(), broken)
    weights_file = broken / "open_clip_model.safetensors"
    weights = load_file(str(weights_file))
    rng = np.random.default_rng(0)
    weights["text_projection"] = rng.standard_normal(
        weights["text_projection"].shape).astype(weights["text_projection"].dtype)
    save_file(weights, str(weights_file))
    with pytest.raises(selftest.SelfTestFailed, match="text search found the wrong photos"):
        selftest.run(tmp_path / "work", broken)
