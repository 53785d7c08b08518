"""Precision and recall of the duplicate tiers (core/duplicates.py) on copies
of drawn and of real photos, and the perceptual-hash distances behind the
thresholds.

Each scene gets an exact copy, near copies (resize, recompress, HEIC, 4% crop,
90-degree turn, colour shift) and two burst shots; distractors are other
pictures (for the drawn set, the same colour and shape drawn again). The real
photos are scikit-image's sample pictures, taken from its pinned wheel
(photofind.testing.realphotos: downloaded once with pip, extracted into
~/.cache/photofind/realphotos, never committed). The
library is indexed with the toy CLIP, whose similarities mean something on
drawn pictures only: on real photos the CLIP gate is close to chance, so the
figures there show what the perceptual hash confirms, and a hash-only line
(every pair, no CLIP) shows the hash on its own.

Pairs are counted: a found pair is right when it belongs to its tier or a
stricter one; recall counts the pairs of a tier among the photos that tier
looks at (the stricter tiers' extra copies are left out, as the app does).

    python benchmarks/bench_duplicates.py [--scenes 8] [--near-bits N]
        [--near-clip X] [--similar-clip X]   (try other thresholds)
"""

from __future__ import annotations

import argparse
import itertools
import random
import tempfile
from collections import defaultdict
from pathlib import Path

from PIL import Image

from photofind.core import duplicates
from photofind.core.config import Settings
from photofind.core.indexer import run_index
from photofind.core.library import Library
from photofind.testing.dupdata import DupFile, truth_tier, write_scenes
from photofind.testing.realphotos import CACHE, SKIMAGE_PHOTOS, fetch
from photofind.testing.shapes import CLASSES, draw_picture
from photofind.testing.toyclip import toy_model_dir

STRICT = {"exact": ("exact",), "near": ("exact", "near"), "similar": ("exact", "near",
                                                                       "similar")}


def real_photos() -> list[tuple[str, Image.Image]]:
    paths = fetch(SKIMAGE_PHOTOS, CACHE / "realphotos")
    out = []
    for picture in SKIMAGE_PHOTOS:
        with Image.open(paths[picture.name]) as img:
            out.append((picture.name, img.convert("RGB")))
    return out


def drawn_photos(count: int) -> list[tuple[str, Image.Image]]:
    rng = random.Random(5)
    pairs = CLASSES[:count]
    return ([(f"{c}-{s}", draw_picture(c, s, (640, 480), rng)) for c, s in pairs]
            + [(f"other-{c}-{s}", draw_picture(c, s, (640, 480), rng)) for c, s in pairs])


def evaluate(name: str, pictures: list[tuple[str, Image.Image]], scenes: int,
             work: Path) -> None:
    files = write_scenes(work / name, pictures[:scenes], pictures[scenes:])
    settings = Settings.resolve(str(work / f"{name}-library"), f"local-dir:{toy_model_dir()}",
                                "cpu")
    with Library.open(settings, writer=True) as lib:
        lib.add_root(str(work / name))
        for _ in run_index(lib):
            pass
        found = duplicates.find_duplicates(lib)
        rows = {r[0]: (r[1], r[2]) for r in lib.catalog.db.execute(
            "SELECT id, path, mtime_ns FROM photos")}
        hashes = duplicates.perceptual_hashes(lib, {i: m for i, (_, m) in rows.items()},
                                              {i: p for i, (p, _) in rows.items()}, found)
    by_path = {str(f.path): f for f in files}
    print(f"\n{name}: {scenes} scenes, {len(pictures) - scenes} distractors,"
          f" {len(files)} files")
    survivors = set(by_path)
    for tier in duplicates.TIERS:
        groups = [[by_path[p.path] for p in g.members] for g in found.tier(tier)]
        _report(tier, groups, survivors, files)
        for g in found.tier(tier):
            survivors -= {o.path for o in g.others}
    _hash_only(files, {Path(rows[i][0]): h for i, h in hashes.items()})


def _report(tier: str, groups: list[list[DupFile]], survivors: set[str],
            files: list[DupFile]) -> None:
    found = {frozenset((a.path, b.path)) for g in groups for a, b in itertools.combinations(g, 2)}
    by_path = {f.path: f for f in files}
    right = sum(truth_tier(*(by_path[p] for p in pair)) in STRICT[tier] for pair in found)
    truth = {frozenset((a.path, b.path)) for a, b in itertools.combinations(files, 2)
             if truth_tier(a, b) == tier and str(a.path) in survivors
             and str(b.path) in survivors}
    hit = len(found & truth)
    precision = right / len(found) if found else 1.0
    recall = hit / len(truth) if truth else 1.0
    print(f"  {tier:<8} groups {len(groups):>3}  pairs found {len(found):>4}"
          f"  precision {precision:.3f}  recall {recall:.3f}  ({hit}/{len(truth)})")


def _hash_only(files: list[DupFile], hashes: dict[Path, str]) -> None:
    """The perceptual hash alone over every pair: distances per relation and the
    near tier's precision and recall at a few thresholds."""
    distances: dict[str, list[int]] = defaultdict(list)
    for a, b in itertools.combinations([f for f in files if f.path in hashes], 2):
        tier = truth_tier(a, b) or "unrelated"
        distances[tier].append(duplicates.hash_distance(hashes[a.path], hashes[b.path]))
    for tier, values in sorted(distances.items()):
        values.sort()
        print(f"  hash bits {tier:<9} n={len(values):>5}  min {values[0]:>2}"
              f"  median {values[len(values) // 2]:>2}  max {values[-1]:>2}")
    for bits in (4, 6, 8, 10, 12):
        same = [d <= bits for d in distances["near"]]
        wrong = sum(d <= bits for tier in ("unrelated", "similar") for d in distances[tier])
        found = sum(same) + wrong + sum(d <= bits for d in distances["exact"])
        print(f"  hash only, <= {bits:>2} bits: near recall {sum(same) / len(same):.3f},"
              f" precision {(found - wrong) / max(found, 1):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--near-bits", type=int, default=duplicates.NEAR_BITS)
    parser.add_argument("--near-clip", type=float, default=duplicates.NEAR_CLIP)
    parser.add_argument("--similar-clip", type=float, default=duplicates.SIMILAR_CLIP)
    args = parser.parse_args()
    duplicates.NEAR_BITS, duplicates.NEAR_CLIP = args.near_bits, args.near_clip
    duplicates.SIMILAR_CLIP = args.similar_clip
    print(f"thresholds: near CLIP >= {duplicates.NEAR_CLIP} and hash <= {duplicates.NEAR_BITS}"
          f" bits; similar CLIP >= {duplicates.SIMILAR_CLIP} within"
          f" {duplicates.SIMILAR_SECONDS} s")
    with tempfile.TemporaryDirectory(prefix="bench-dupes-") as tmp:
        evaluate("drawn", drawn_photos(args.scenes), args.scenes, Path(tmp))
        evaluate("real", real_photos(), args.scenes, Path(tmp))


if __name__ == "__main__":
    main()
