"""Promises of the Ray path, on a local Ray cluster (two CPUs, started once for the
module) and the toy CLIP as ONNX: a killed `photofind cluster embed` finishes on
the next run without duplicates, and its shards hold the vectors, records and
failure reasons that `photofind index` makes; a library that imports the
shards answers queries like one that indexed the photos itself, without
re-embedding; an export imports back, and a file changed since keeps no stale
vector.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from photofind.core import parquetio
from photofind.core.catalog import Catalog
from photofind.core.config import Settings
from photofind.core.library import Library
from photofind.core.records import mtime_date
from photofind.core.search import Searcher, parse_query
from photofind.core.thumbs import ThumbStore
from photofind.testing.samples import SamplePhoto, make_sample_library
from tests.conftest import REPO, Cli

ray = pytest.importorskip("ray", reason="the cluster extra (ray[data]) is not installed")
pytestmark = pytest.mark.slow

QUERIES = ("a red circle", "a blue square", "a green triangle", "a yellow star")
# Everywhere here a file named segfault.jpg crashes the decoder that opens it.
HOOK = {"PHOTOFIND_DECODE_HOOK": "photofind.testing.hostile:evil_decoder"}


def cli_for(library: Path, model: str) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOFIND_")}
    env.update(PHOTOFIND_LIBRARY=str(library), PHOTOFIND_MODEL=model, PHOTOFIND_DEVICE="cpu",
               HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **HOOK)
    return Cli(library, model, env)


def top_results(cli: Cli, limit: int = 5) -> dict[str, list[str]]:
    """The best paths for each query, searched in this process (one model load)."""
    with Library.open(Settings.resolve(str(cli.library), cli.model, "cpu")) as lib:
        searcher = Searcher(lib)
        return {q: [r.path for r in searcher.search(parse_query(q), limit)] for q in QUERIES}


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """One local Ray cluster for the module; the CLI connects to it with --address."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SamplePhoto]]:
    """20 drawn photos, a file that is no image, a truncated JPEG and a JPEG that
    crashes its decoder."""
    root = tmp_path_factory.mktemp("archive") / "Pictures"
    photos = make_sample_library(root, per_class=1, large=1)
    (root / "misc" / "notes.jpg").write_bytes(b"not a picture at all" * 50)
    whole = next(p.path for p in photos if p.path.suffix == ".jpg").read_bytes()
    (root / "misc" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "misc" / "segfault.jpg").write_bytes(whole)
    return root, photos


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, archive: tuple[Path, list[SamplePhoto]],
          toy_onnx: str) -> Cli:
    """The archive indexed here, the usual way."""
    cli = cli_for(tmp_path_factory.mktemp("local") / "library", toy_onnx)
    report = cli.index(str(archive[0]))
    assert (report["added"], report["failed"]) == (20, 3), report
    return cli


@dataclass
class Resumed:
    out: Path
    written_before: int  # shards on disk when the first run was killed
    report: dict[str, int]  # the second run's


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory, archive: tuple[Path, list[SamplePhoto]],
            ray_address: str, toy_onnx: str) -> Resumed:
    """`cluster embed` of the archive, killed (SIGKILL) once its first shard is
    written, then run again to the end: the shards every test here reads."""
    out = tmp_path_factory.mktemp("shards") / "out"
    cli = cli_for(tmp_path_factory.mktemp("unused") / "library", toy_onnx)
    args = ["cluster", "embed", str(archive[0]), "--out", str(out), "--address", ray_address,
            "--shard-size", "2", "--batch-size", "2", "--actors", "1"]
    driver = subprocess.Popen([sys.executable, "-m", "photofind", *args], env=cli.env,
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not list(out.glob("part-*.parquet")) and driver.poll() is None:
            assert time.monotonic() < deadline, "no shard written in three minutes"
            time.sleep(0.01)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.wait()
    written = len(list(out.glob("part-*.parquet")))  # whole files: written, then renamed
    assert 1 <= written < 12, written
    assert not parquetio.read_manifest(out).complete
    return Resumed(out, written, json.loads(cli.run(*args, "--json").stdout))


@pytest.fixture(scope="module")
def shards(resumed: Resumed) -> Path:
    return resumed.out


def archive_root(shards: Path) -> Path:
    return Path(parquetio.read_manifest(shards).roots[0])


def rows_of(folder: Path) -> list[parquetio.Record]:
    manifest = parquetio.read_manifest(folder)
    return [r for s in manifest.shards for r in parquetio.read_shard(folder / s.file)]


def test_cluster_vectors_and_records_equal_local_indexing(local: Cli, shards: Path) -> None:
    rows = {r.path: r for r in rows_of(shards)}
    catalog = Catalog(local.library / "catalog.sqlite3", read_only=True)
    try:
        for path, row in rows.items():
            known = catalog.photo_by_path(path)
            assert known is not None, path
            if known.status == "failed":
                assert row.embedding is None and row.reason == known.reason, path
                continue
            vec = catalog.embedding(known.id, local.model)
            assert vec is not None and row.embedding is not None
            cosine = float(vec @ row.embedding / np.linalg.norm(row.embedding))
            assert cosine >= 0.9999, (path, cosine)
            info = catalog.photo_info([known.id])[known.id]
            assert (row.size, row.quick_hash, row.content_hash) == (
                known.size, known.quick_hash, known.content_hash), path
            # a shard keeps the EXIF date only; the catalog dates the others by file time
            assert (row.width, row.height, row.taken_at or mtime_date(row.mtime_ns)) == (
                info.width, info.height, info.taken_at), path
    finally:
        catalog.close()
    assert len(rows) == 23
    assert rows[str(archive_root(shards) / "misc" / "segfault.jpg")].reason == "crashed decoder"
    manifest = parquetio.read_manifest(shards)
    assert manifest.complete and manifest.counts() == {"rows": 23, "embedded": 20, "failed": 3}
    assert [s.file for s in manifest.shards] == [f"part-{i:05d}.parquet" for i in range(12)]


def test_killed_run_finishes_on_the_next_without_duplicates(resumed: Resumed) -> None:
    report = resumed.report
    assert (report["files"], report["shards"], report["embedded"], report["failed"]) == (
        23, 12, 20, 3), report
    assert (report["skipped"], report["written"]) == (resumed.written_before,
                                                      12 - resumed.written_before), report
    paths = [r.path for r in rows_of(resumed.out)]
    assert len(paths) == len(set(paths)) == 23
    assert parquetio.read_manifest(resumed.out).complete
    assert not list(resumed.out.glob(".*.tmp"))


def test_an_imported_library_answers_like_a_local_one(
        tmp_path: Path, archive: tuple[Path, list[SamplePhoto]], local: Cli, shards: Path,
        toy_onnx: str) -> None:
    cli = cli_for(tmp_path / "library", toy_onnx)
    report = cli.json("import", str(shards), "--root", str(archive[0]))
    assert (report["attached"], report["unreadable"]) == (20, 3), report
    assert top_results(cli) == top_results(local)
    thumbs = ThumbStore(tmp_path / "library" / "thumbs.sqlite3", read_only=True)
    assert len(thumbs.photo_ids()) == 20
    thumbs.close()
    again = cli.index()  # nothing was left to embed; the unreadable ones are read here
    assert (again["embedded"], again["added"], again["failed"]) == (0, 0, 3), again


def test_export_imports_back_and_changed_files_keep_no_stale_vector(
        tmp_path: Path, archive: tuple[Path, list[SamplePhoto]], local: Cli,
        toy_onnx: str) -> None:
    exported = tmp_path / "exported"
    local.run("export", "--parquet", str(exported))
    assert parquetio.read_manifest(exported).counts()["embedded"] == 20
    copy = tmp_path / "Copy"
    shutil.copytree(archive[0], copy)
    red = next(p for p in archive[1] if (p.colour, p.shape) == ("red", "circle"))
    swapped = copy / red.path.relative_to(archive[0])
    blue = next(p for p in archive[1] if p.colour == "blue" and p.path.suffix == red.path.suffix)
    shutil.copyfile(blue.path, swapped)  # another picture under the red circle's name
    cli = cli_for(tmp_path / "library", toy_onnx)
    report = cli.json("import", str(exported), "--root", str(copy),
                      "--map", f"{archive[0]}={copy}")
    assert (report["attached"], report["changed"]) == (19, 1), report
    assert report["examples"]["changed"] == [str(swapped)]
    assert str(swapped) not in top_results(cli, 3)["a red circle"]
    assert cli.index()["embedded"] == 1  # the swapped file, embedded here
    assert top_results(cli, 1)["a red circle"] != [str(swapped)]


def test_without_ray_the_command_says_how_to_get_it(tmp_path: Path, toy_onnx: str) -> None:
    cli = cli_for(tmp_path / "library", toy_onnx)
    code = ("import sys; sys.modules['ray'] = None; from photofind.cli import main;"
            f" sys.exit(main(['cluster', 'embed', {str(tmp_path)!r}, '--out',"
            f" {str(tmp_path / 'out')!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], env=cli.env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "pip install 'photofind[cluster]'" in \
        proc.stderr, proc.stderr
