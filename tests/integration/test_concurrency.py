"""Queries in several threads while the index grows, shrinks, resizes and
saves: every answer is valid, and without the lock the same run fails."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


def stress(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.stress_vectors", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_queries_stay_valid_under_concurrent_writes_for_a_minute() -> None:
    proc = stress("--seconds", "60", "--readers", "4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[]" in proc.stdout  # no problem reported
    assert "'saves': 0" not in proc.stdout


def test_the_stress_test_fails_without_the_lock() -> None:
    proc = stress("--seconds", "20", "--readers", "4", "--no-lock")
    assert proc.returncode != 0, proc.stdout
