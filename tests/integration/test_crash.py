"""Kill photofind again and again, at start-up and in the middle of its work:
nothing is lost, nothing is duplicated, the index agrees with the catalog, and
every run resumes where the last one died instead of starting over.

The decoders are paced by a gate (photofind.testing.hostile.gated_decoder):
each run is given a number of decodes and killed once the batches they fill
are committed, so what every kill may cost is known exactly, on a fast
machine as on a slow one.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from photofind.core.indexer import FIRST_BATCH
from photofind.core.vectors import VectorIndex
from photofind.testing.hostile import GATE_ENV, GATE_HOOK, LOG_ENV
from photofind.testing.samples import make_sample_library
from tests.conftest import REPO, Cli

BATCH = FIRST_BATCH  # photos per committed batch (the toy model runs on the CPU)


def stored(catalog: Path, check: bool = False) -> int:
    """Embeddings in the catalog, read as any other process would read it."""
    db = sqlite3.connect(catalog, timeout=30)
    try:
        if check:
            assert db.execute("PRAGMA quick_check").fetchone() == ("ok",)
        count: int = db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        return count
    finally:
        db.close()


def without_thumbnail(library: Path) -> int:
    """Indexed photos whose thumbnail a kill kept from being stored."""
    db = sqlite3.connect(library / "catalog.sqlite3")
    ids = {i for (i,) in db.execute("SELECT id FROM photos WHERE status = 'ok'")}
    db.close()
    db = sqlite3.connect(library / "thumbs.sqlite3")
    ids -= {i for (i,) in db.execute("SELECT photo_id FROM thumbs")}
    db.close()
    return len(ids)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL photofind alone (as a crash would), then wait for its orphaned
    decoders to finish the file they hold and go."""
    assert proc.poll() is None, "the run ended before its kill"
    workers = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    proc.wait(30)
    _, alive = psutil.wait_procs(workers, timeout=60)
    assert not alive, f"decoders outlived the killed photofind: {alive}"


@pytest.mark.slow
def test_sigkill_at_start_up_and_mid_work_loses_nothing_and_redoes_nothing(
        cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    photos = make_sample_library(root, per_class=16, large=0)  # 320 photos
    log, gate = tmp_path / "decodes.log", tmp_path / "gate"
    log.touch()
    gate.write_text("0")
    env = {**cli.env, "PHOTOFIND_DECODE_HOOK": GATE_HOOK, LOG_ENV: str(log),
           GATE_ENV: str(gate), "PHOTOFIND_SAVE_EVERY": "32",
           "PHOTOFIND_DECODE_TIMEOUT": "900"}  # a decoder waiting at the gate is not hung
    cli.run("add", str(root))
    catalog = cli.library / "catalog.sqlite3"

    def decodes() -> int:
        return len(log.read_text().splitlines())

    rng = random.Random(42)
    # Nine kills mid-work (each given one or two batches of decodes, and often part of
    # one more), three in start-up (no decodes: imports, model load, scan, waiting).
    schedule = ["work"] * 9 + ["start-up"] * 3
    rng.shuffle(schedule)
    for kind in schedule:
        before, decoded = stored(catalog), decodes()
        given = 0 if kind == "start-up" else BATCH * rng.choice((1, 2)) + rng.choice(
            (0, rng.randrange(1, BATCH)))
        gate.write_text(str(decoded + given))
        proc = subprocess.Popen([sys.executable, "-m", "photofind", "index"], env=env,
                                cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        if kind == "start-up":
            time.sleep(rng.uniform(0.2, 3.0))
        else:  # killed right after a commit (saving, catching up) or while decoders wait
            committed = before + given // BATCH * BATCH
            deadline = time.monotonic() + 300
            while stored(catalog) < committed and proc.poll() is None:
                assert time.monotonic() < deadline, "the run never committed its batches"
                time.sleep(0.05)
            time.sleep(rng.choice((0.0, rng.uniform(0.0, 1.0))))
        kill(proc)
        after = stored(catalog, check=True)
        # Each kill cost at most the batch in flight: what was committed stays, and
        # what the run was given beyond its whole batches is all it lost.
        assert decodes() - decoded == given, kind
        assert after - before == given // BATCH * BATCH, (kind, given, before, after)

    assert stored(catalog) < len(photos)  # the kills, not a run, left work to do
    left, decoded = len(photos) - stored(catalog), decodes()
    thumbnails = without_thumbnail(cli.library)
    gate.write_text(str(10**9))
    final = subprocess.run([sys.executable, "-m", "photofind", "index", "--json"], env=env,
                           cwd=REPO, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    report = json.loads(final.stdout)
    # The last run adds only what the kills left undone, and decodes nothing twice
    # (but the photos whose thumbnail a kill lost, once each, for their thumbnail).
    assert (report["added"], report["embedded"], report["unchanged"]) == (
        left, left, len(photos) - left), report
    assert decodes() - decoded == left + thumbnails
    assert without_thumbnail(cli.library) == 0

    db = sqlite3.connect(catalog)
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
    doctor = cli.run("doctor", check=False)  # thumbnails lost to a kill were made again
    assert doctor.returncode == 0, doctor.stdout
