"""Kill photofind at random moments, dozens of times: nothing is lost,
nothing is duplicated, the index agrees with the catalog, and work resumes
instead of starting over."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from photofind.core.vectors import VectorIndex
from photofind.testing.hostile import LOG_ENV, SLOW_HOOK
from photofind.testing.samples import make_sample_library
from tests.conftest import REPO, Cli


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    photos = make_sample_library(root, per_class=15, large=0)  # 300 photos
    log = tmp_path / "decodes.log"
    env = {**cli.env, "PHOTOFIND_DECODE_HOOK": SLOW_HOOK, LOG_ENV: str(log),
           "PHOTOFIND_SAVE_EVERY": "32"}
    cli.run("add", str(root))
    rng = random.Random(42)
    kills = attempts = 0
    while kills < 30 and attempts < 45:
        attempts += 1
        proc = subprocess.Popen([sys.executable, "-m", "photofind", "index"], env=env,
                                cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        # Some kills land in start-up, most in decoding, embedding, commits and saves.
        delay = rng.uniform(0.3, 3.5) if rng.random() < 0.25 else rng.uniform(3.0, 5.5)
        try:
            proc.wait(delay)  # it may finish first
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            kills += 1
    assert kills >= 30
    final = subprocess.run([sys.executable, "-m", "photofind", "index", "--json"], env=env,
                           cwd=REPO, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr

    db = sqlite3.connect(cli.library / "catalog.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = db.execute("SELECT path, status FROM photos").fetchall()
    assert sorted(p for p, _ in rows) == sorted(str(p.path) for p in photos)  # once each
    assert {s for _, s in rows} == {"ok"}
    embeddings = {pid: np.frombuffer(blob, np.float16).astype(np.float32) for pid, blob in
                  db.execute("SELECT photo_id, vec FROM embeddings")}
    generation, digest, dim = db.execute(
        "SELECT generation, sha256, dim FROM index_manifest").fetchone()
    db.close()
    index = VectorIndex.load(cli.library / f"vectors.{generation}.hnsw", dim, digest)
    assert index.ids() == set(embeddings) and len(embeddings) == len(photos)
    for pid, vec in embeddings.items():
        assert index.query(vec / np.linalg.norm(vec), 1)[0][0] == pid
    decoded = len(log.read_text().splitlines())
    # Work is resumed, not redone: each kill costs at most the batch in flight.
    assert decoded <= len(photos) + 40 * kills, (decoded, kills)
    print(f"{kills} kills, {decoded} decodes for {len(photos)} photos")
