"""The HNSW cache: correct neighbours, deletions, atomic checksummed saves."""

import threading
from pathlib import Path

import numpy as np
import pytest

from photofind.core.vectors import RWLock, VectorIndex


def unit(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_nearest_is_itself_and_k_is_clamped() -> None:
    vecs = unit(50)
    index = VectorIndex(32, capacity=16)  # grows past its first capacity
    index.add(np.arange(100, 150), vecs)
    ids, scores = index.query(vecs[7], 500)
    assert len(ids) == 50
    assert ids[0] == 107 and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert list(scores) == sorted(scores, reverse=True)


def test_removed_ids_never_come_back_and_replacing_updates() -> None:
    vecs = unit(20)
    index = VectorIndex(32)
    index.add(np.arange(20), vecs)
    index.remove({3, 4})
    ids, _ = index.query(vecs[3], 20)
    assert 3 not in ids and 4 not in ids and len(ids) == 18
    index.add(np.array([3]), vecs[9:10])  # re-added with another vector
    ids, scores = index.query(vecs[9], 2)
    assert set(ids) == {3, 9} and scores.min() == pytest.approx(1.0, abs=1e-5)


def test_save_load_round_trip_and_checksum_guard(tmp_path: Path) -> None:
    vecs = unit(30)
    index = VectorIndex(32)
    index.add(np.arange(30), vecs)
    path = tmp_path / "vectors.1.hnsw"
    digest = index.save(path)
    loaded = VectorIndex.load(path, 32, digest)
    assert loaded.ids() == set(range(30))
    assert list(loaded.query(vecs[5], 3)[0]) == list(index.query(vecs[5], 3)[0])
    with pytest.raises(ValueError, match="checksum"):
        VectorIndex.load(path, 32, "0" * 64)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_torn_file_is_refused_and_older_sha256_manifests_still_load(tmp_path: Path) -> None:
    """Libraries saved before the xxh3 checksum keep their index (no rebuild on
    upgrade); a byte changed in the file is caught under either checksum."""
    import hashlib

    index = VectorIndex(32)
    index.add(np.arange(30), unit(30))
    path = tmp_path / "vectors.1.hnsw"
    digest = index.save(path)
    assert digest.startswith("xxh3-128:")
    old = hashlib.sha256(path.read_bytes()).hexdigest()  # what older manifests hold
    assert VectorIndex.load(path, 32, old).ids() == set(range(30))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    for expected in (digest, old):
        with pytest.raises(ValueError, match="checksum"):
            VectorIndex.load(path, 32, expected)


def test_rwlock_lets_readers_share_and_writers_exclude() -> None:
    lock = RWLock()
    inside: list[str] = []
    gate = threading.Event()

    def reader() -> None:
        with lock.read():
            inside.append("r")
            gate.wait(5)

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    while len(inside) < 3:  # all three readers are in at once
        threading.Event().wait(0.01)
    wrote = threading.Event()

    def writer() -> None:
        with lock.write():
            wrote.set()

    w = threading.Thread(target=writer)
    w.start()
    assert not wrote.wait(0.2)  # the writer waits for the readers
    gate.set()
    assert wrote.wait(5)
    for t in [*readers, w]:
        t.join(5)


def test_small_libraries_are_searched_exactly_and_follow_changes() -> None:
    """Below EXACT_MAX the answer is the exact top k, and an added or removed
    photo shows (or stops showing) in the very next query."""
    rng = np.random.default_rng(1)
    data = rng.normal(size=(3000, 32)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    index = VectorIndex(32)
    index.add(np.arange(3000, dtype=np.int64), data)
    for q in data[:20] + 0.3 * rng.normal(size=(20, 32)).astype(np.float32):
        ids, scores = index.query(q, 50)
        q = q / np.linalg.norm(q)
        expected = np.argsort(-(data @ q), kind="stable")[:50]
        assert ids.tolist() == expected.tolist()
        assert np.allclose(scores, data[expected] @ q, atol=1e-5)
    index.remove({int(ids[0])})
    assert int(ids[0]) not in index.query(q, 50)[0].tolist()
    index.add(np.array([5000], np.int64), q[None])
    assert index.query(q, 1)[0].tolist() == [5000]
