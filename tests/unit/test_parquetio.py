"""Parquet shards: what is written reads back; a damaged shard is never taken as
written; a manifest from something else is refused in one sentence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from photofind.core import parquetio
from photofind.core.errors import PhotofindError

pytest.importorskip("pyarrow", reason="the cluster extra (pyarrow) is not installed")


def records(dim: int) -> list[parquetio.Record]:
    vec = np.random.default_rng(0).standard_normal((2, dim)).astype(np.float32)
    return [
        parquetio.Record("/p/ünï cødé\nname.jpg", 10, 7, "q1", "2024-01-02T03:04:05", 4032,
                         3024, vec[0], None, "c1"),
        parquetio.Record("/p/a.jpg", 11, 8, "q2", None, 10, 20, vec[1], None, None),
        parquetio.Record("/p/broken.jpg", 12, 9, None, None, None, None, None, "truncated"),
    ]


@pytest.mark.parametrize("dtype", parquetio.DTYPES)
def test_a_shard_reads_back_sorted_with_its_nulls(tmp_path: Path, dtype: str) -> None:
    written = records(8)
    info = parquetio.write_shard(tmp_path, parquetio.shard_name(3), written, "m", 8, dtype)
    assert (info.file, info.rows, info.embedded, info.failed) == ("part-00003.parquet", 3, 2, 1)
    back = list(parquetio.read_shard(tmp_path / info.file))
    assert [r.path for r in back] == sorted(r.path for r in written)
    by_path = {r.path: r for r in back}
    for r in written:
        got = by_path[r.path]
        assert (got.size, got.mtime_ns, got.quick_hash, got.content_hash, got.taken_at,
                got.width, got.height, got.reason) == (r.size, r.mtime_ns, r.quick_hash,
                                                       r.content_hash, r.taken_at, r.width,
                                                       r.height, r.reason)
        if r.embedding is None:
            assert got.embedding is None
        else:
            assert got.embedding is not None
            tol = 1e-3 if dtype == "float16" else 0
            assert np.allclose(got.embedding, r.embedding, atol=tol)
    assert parquetio.shard_info(tmp_path / info.file) == info
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_damaged_shard_counts_as_not_written(tmp_path: Path) -> None:
    info = parquetio.write_shard(tmp_path, "part-00000.parquet", records(4), "m", 4, "float16")
    path = tmp_path / info.file
    path.write_bytes(path.read_bytes()[: info.bytes // 2])
    assert parquetio.shard_info(path) is None
    assert parquetio.shard_info(tmp_path / "part-00001.parquet") is None


def test_a_folder_without_a_photofind_manifest_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(PhotofindError, match="not a folder of photofind embeddings"):
        parquetio.read_manifest(tmp_path)
    (tmp_path / parquetio.MANIFEST).write_text('{"format": "something-else"}')
    with pytest.raises(PhotofindError, match="not a manifest this photofind reads"):
        parquetio.read_manifest(tmp_path)
    manifest = parquetio.Manifest("m", 4, "float16", complete=True, roots=["/p"])
    manifest.shards.append(parquetio.ShardInfo("part-00000.parquet", 3, 2, 1, 100))
    parquetio.write_manifest(tmp_path, manifest)
    assert parquetio.read_manifest(tmp_path) == manifest
