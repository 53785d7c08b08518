"""The content hash in the decode worker: what it costs against the decode,
per hashlib choice, and with the bytes the decoder already read (one run,
medians of CPU time over the 12 MP benchmark corpus, in one process).

    python benchmarks/bench_hash.py [--files 40] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from common import corpus


def _median_ms(files: list[Path], fn: Callable[[str], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.process_time()  # CPU time: steadier than wall time on a shared machine
        for path in files:
            fn(str(path))
        runs.append((time.process_time() - start) / len(files) * 1e3)
    return statistics.median(runs)


def _streamed(factory: Callable[[], hashlib._Hash]) -> Callable[[str], str]:
    def digest(path: str) -> str:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, factory).hexdigest()
    return digest


def _in_memory(factory: Callable[[bytes], hashlib._Hash]) -> Callable[[str], str]:
    def digest(path: str) -> str:
        return factory(Path(path).read_bytes()).hexdigest()
    return digest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from photofind.core.imaging import decode_file
    from photofind.core.model.preprocess import Preprocess

    files = sorted(corpus().rglob("*.jpg"))[:args.files]
    pre = Preprocess(224, (0.48145466, 0.4578275, 0.40821073),
                     (0.26862954, 0.26130258, 0.27577711))
    for path in files:  # warm the page cache
        path.read_bytes()
    decode = _median_ms(files, lambda p: decode_file(p, pre), args.repeat)
    import xxhash

    rows = [
        ("xxh3-128, streamed (what photofind uses)", _streamed(xxhash.xxh3_128)),
        ("blake2b-20, streamed (catalogs before)",
         _streamed(lambda: hashlib.blake2b(digest_size=20))),
        ("sha1, streamed", _streamed(hashlib.sha1)),
        ("sha256, streamed", _streamed(hashlib.sha256)),
        ("blake2b-20, bytes in memory", _in_memory(lambda b: hashlib.blake2b(b, digest_size=20))),
        ("sha256, bytes in memory", _in_memory(hashlib.sha256)),
    ]
    mb = statistics.mean(p.stat().st_size for p in files) / 1e6
    print(f"{len(files)} JPEGs of {mb:.1f} MB; decode_file alone = 1.00")
    for name, fn in rows:
        print(f"  {name:44s} {_median_ms(files, fn, args.repeat) / decode:5.3f} of a decode")
    print(f"  decode + xxh3-128 streamed (used)     "
          f"{(decode + _median_ms(files, rows[0][1], args.repeat)) / decode:5.3f}")
    print(f"  decode + blake2b-20 streamed (before) "
          f"{(decode + _median_ms(files, rows[1][1], args.repeat)) / decode:5.3f}")

if __name__ == "__main__":
    main()
