"""Duplicates in three tiers, and the photo of each group to keep.

- ``exact``: the same bytes. Only files whose size and quick hash collide are
  compared, by their full content hash (stored at index time; computed now
  for rows from older catalogs, and only for those colliding files).
- ``near``: the same picture resized, recompressed, re-encoded (HEIC) or
  slightly cropped, colour-shifted or turned: CLIP neighbours (from the
  vector index, never all pairs) above ``NEAR_CLIP``, confirmed by a
  perceptual hash (DCT hash of the thumbnail in four rotations, and of its
  centre) within ``NEAR_BITS`` bits.
- ``similar``: bursts and retakes: CLIP neighbours above ``SIMILAR_CLIP``
  taken within ``SIMILAR_SECONDS`` of each other (capture date, else the
  file's time).

The tiers cascade: the extra copies of an exact group are left out of the
near tier, and the extra photos of a near group out of the similar tier, so a
photo is in at most one group per tier and each tier shows what the stricter
ones did not. Groups are transitive within a tier (union-find over pairs).
The photo to keep: the largest resolution, then the earliest date, then the
shortest path. Thresholds and their measured precision and recall:
benchmarks/bench_duplicates.py.

Finding writes nothing. What it computed (content hashes of old rows,
perceptual hashes) comes back in ``Found``; ``store_hashes`` keeps them, and
only a writer calls it.
"""

from __future__ import annotations

import functools
import io
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import numpy as np
from PIL import Image

from photofind.core.catalog import Catalog, PhotoInfo
from photofind.core.imaging import CONTENT_HASH, content_hash, is_current_hash
from photofind.core.library import Library
from photofind.core.records import FileRecord

TIERS = ("exact", "near", "similar")
# A stored content digest of the algorithm before (bound to _OLDER_ARGS).
_OLDER = "substr(content_hash, 1, ?) != ?"
_OLDER_ARGS = (len(CONTENT_HASH), CONTENT_HASH)
# Chosen on benchmarks/bench_duplicates.py (transformed copies of drawn and of
# real photos, with unrelated distractors); see docs/architecture.md.
NEAR_CLIP = 0.80  # a loose gate: the perceptual hash decides
NEAR_BITS = 10  # of 64 (drawn: unrelated pictures start at 12; see the benchmark)
SIMILAR_CLIP = 0.85  # the highest that kept every drawn burst (benchmark: 0.90 kept 71%)
SIMILAR_SECONDS = 5 * 60
NEIGHBOURS = 16  # CLIP neighbours looked at per photo
_ROTATIONS = (0, 90, 180, 270)
_HASH_HEX = 16  # one 64-bit hash in hex
_CENTRE = len(_ROTATIONS)  # the centre's hash follows the rotations'
_HASH_LEN = (_CENTRE + 1) * _HASH_HEX  # a cached value of another length is made again

S = TypeVar("S")


@dataclass(frozen=True)
class Group:
    tier: str
    keep: PhotoInfo
    others: tuple[PhotoInfo, ...]

    @property
    def members(self) -> tuple[PhotoInfo, ...]:
        return (self.keep, *self.others)


@dataclass
class Found:
    groups: list[Group]
    # What was computed now, for the writer to keep (store_hashes).
    content_hashes: dict[int, str] = field(default_factory=dict)  # photo id -> digest
    perceptual: dict[int, tuple[int, str]] = field(default_factory=dict)  # id -> (mtime, hashes)

    def tier(self, name: str) -> list[Group]:
        return [g for g in self.groups if g.tier == name]


@dataclass(frozen=True)
class _Row:
    id: int
    size: int
    quick: str
    content: str | None
    mtime_ns: int


def keep_order(info: PhotoInfo) -> tuple[int, str, int, str]:
    """Sort key: the photo to keep first (largest resolution, earliest, shortest path)."""
    pixels = (info.width or 0) * (info.height or 0)
    return (-pixels, info.date, len(info.path), info.path)


def make_group(tier: str, infos: Iterable[PhotoInfo]) -> Group:
    ranked = sorted(infos, key=keep_order)
    return Group(tier, ranked[0], tuple(ranked[1:]))


def find_duplicates(lib: Library, tiers: Sequence[str] = TIERS) -> Found:
    """Groups of the chosen tiers among the readable photos on connected drives."""
    infos = {i.id: i for i in lib.catalog.newest_first() if i.online}
    found = Found([])
    rows = _rows(lib.catalog, infos)
    survivors = set(infos)
    for group in _ordered("exact", _exact_groups(rows, infos, found), infos):
        survivors -= {o.id for o in group.others}
        if "exact" in tiers:
            found.groups.append(group)
    if "near" not in tiers and "similar" not in tiers:
        return found
    neighbours = _neighbours(lib, survivors)
    for group in _ordered("near", _near_groups(lib, neighbours, infos, rows, found), infos):
        survivors -= {o.id for o in group.others}
        if "near" in tiers:
            found.groups.append(group)
    if "similar" in tiers:
        found.groups.extend(_ordered("similar", _similar_groups(neighbours, infos, survivors),
                                     infos))
    return found


def _ordered(tier: str, groups: list[list[int]], infos: dict[int, PhotoInfo]) -> list[Group]:
    """Groups of photo ids as ``Group``s, in the order of their photos to keep."""
    made = [make_group(tier, (infos[i] for i in ids)) for ids in groups]
    return sorted(made, key=lambda g: keep_order(g.keep))


def _rows(catalog: Catalog, infos: dict[int, PhotoInfo]) -> dict[int, _Row]:
    rows = catalog.db.execute("SELECT id, size, quick_hash, content_hash, mtime_ns"
                              " FROM photos WHERE status = 'ok'")
    return {r[0]: _Row(*r) for r in rows if r[0] in infos}


def _exact_groups(rows: dict[int, _Row], infos: dict[int, PhotoInfo],
                  found: Found) -> list[list[int]]:
    by_quick: dict[tuple[int, str], list[_Row]] = defaultdict(list)
    for row in rows.values():
        by_quick[(row.size, row.quick)].append(row)
    groups: list[list[int]] = []
    for same in by_quick.values():
        if len(same) < 2:
            continue
        by_content: dict[str, list[int]] = defaultdict(list)
        for pid, digest in _comparable(same, lambda pid: infos[pid].path, found).items():
            if digest:
                by_content[digest].append(pid)
        groups.extend(sorted(ids) for ids in by_content.values() if len(ids) > 1)
    return groups


def _comparable(same: Sequence[_Row], path_of: Callable[[int], str],
                found: Found | None = None) -> dict[int, str | None]:
    """The content digests of photos that share a size and quick hash, all of
    one algorithm: as stored when every row holds one of the algorithm before
    (a catalog made before: nothing is read); otherwise today's, hashed now
    for the rows that lack it (kept in ``found`` for the writer to store). A
    file that cannot be read now keeps its stored digest (an offline copy
    still pairs with its offline twin). Indexing brings the copies of each new
    photo to today's algorithm (indexer.py), so a mixed group is rare: a drive
    that was away, an imported library."""
    stored = {row.id: row.content for row in same}
    if all(d and not is_current_hash(d) for d in stored.values()):
        return stored
    out: dict[int, str | None] = {}
    for row in same:
        digest = row.content
        if not digest or not is_current_hash(digest):
            fresh = _digest(path_of(row.id), row.size, row.mtime_ns)
            if fresh and found is not None:
                found.content_hashes[row.id] = fresh
            digest = fresh or digest
        out[row.id] = digest
    return out


def rehash_older_copies(catalog: Catalog, photos: Sequence[FileRecord]) -> None:
    """Copies of these new photos whose digest is of the algorithm before (a
    catalog made before) are hashed again with today's (the writer only), so
    that duplicates and the grid's stacks compare like with like. Only rows
    that share a size and quick hash are looked at; a copy that cannot be read
    keeps its digest."""
    stale: list[tuple[str, int]] = []
    for size, quick in {(p.size, p.quick_hash) for p in photos if p.content_hash}:
        for pid, path, mtime_ns in catalog.db.execute(
                "SELECT id, path, mtime_ns FROM photos WHERE size = ? AND quick_hash = ?"
                f" AND status = 'ok' AND {_OLDER}", (size, quick, *_OLDER_ARGS)).fetchall():
            digest = _digest(path, size, mtime_ns)
            if digest:
                stale.append((digest, pid))
    if stale:
        with catalog.transaction() as db:
            db.executemany("UPDATE photos SET content_hash = ? WHERE id = ?", stale)


@functools.lru_cache(maxsize=4096)
def _digest(path: str, size: int, mtime_ns: int) -> str | None:
    """The content hash of a file the catalog has none for; None when the file
    changed since it was indexed (the next index reads it again) or is unreadable."""
    try:
        st = os.stat(path)
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
            return None
        return content_hash(path)
    except OSError:
        return None


def collapse_exact(catalog: Catalog, ranked: Sequence[tuple[PhotoInfo, S]]
                   ) -> list[tuple[PhotoInfo, S, tuple[PhotoInfo, ...]]]:
    """Ranked photos with each set of exact copies as one entry, at the place of
    its best-ranked copy: (the copy to keep, its score, the other copies)."""
    ids = [info.id for info, _ in ranked]
    rows: dict[int, _Row] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found = catalog.db.execute(
            "SELECT id, size, quick_hash, content_hash, mtime_ns FROM photos"
            f" WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        rows.update({r[0]: _Row(*r) for r in found})
    by_quick: dict[tuple[int, str], list[int]] = defaultdict(list)
    for info, _ in ranked:
        row = rows.get(info.id)
        if row is not None:
            by_quick[(row.size, row.quick)].append(info.id)
    copies_of: dict[int, str] = {}  # photo id -> content digest, for photos with a copy
    infos = {info.id: info for info, _ in ranked}
    for same in (s for s in by_quick.values() if len(s) > 1):
        digests = _comparable([rows[pid] for pid in same], lambda pid: infos[pid].path)
        counts = Counter(digests.values())
        copies_of.update({pid: d for pid, d in digests.items() if d and counts[d] > 1})
    sets: dict[str, list[PhotoInfo]] = defaultdict(list)
    for pid, digest in copies_of.items():
        sets[digest].append(infos[pid])
    out: list[tuple[PhotoInfo, S, tuple[PhotoInfo, ...]]] = []
    for info, score in ranked:
        key = copies_of.get(info.id)
        if key is None:
            out.append((info, score, ()))
        elif key in sets:
            group = make_group("exact", sets.pop(key))
            out.append((group.keep, score, group.others))
    return out


def library_copies(catalog: Catalog) -> dict[int, tuple[PhotoInfo, ...]]:
    """For the all-photos listing: the photo shown for each set of exact copies
    in the library -> its other copies (from the stored content hashes, read
    for the photos that share a size and quick hash, not every row; a file is
    read only in the rare group that mixes algorithms, see ``_comparable``)."""
    rows = catalog.db.execute(
        "SELECT p.id, p.size, p.quick_hash, p.content_hash, p.mtime_ns, p.path FROM photos p"
        " JOIN (SELECT size, quick_hash FROM photos"
        " WHERE status = 'ok' GROUP BY size, quick_hash HAVING COUNT(*) > 1) d"
        " ON p.size = d.size AND p.quick_hash = d.quick_hash"
        " WHERE p.status = 'ok' AND p.content_hash IS NOT NULL").fetchall()
    paths = {r[0]: r[5] for r in rows}
    by_quick: dict[tuple[int, str], list[_Row]] = defaultdict(list)
    for r in rows:
        by_quick[(r[1], r[2])].append(_Row(*r[:5]))
    by_content: dict[str, list[int]] = defaultdict(list)
    for same in by_quick.values():
        for pid, digest in _comparable(same, paths.__getitem__).items():
            if digest:
                by_content[digest].append(pid)
    sets = [ids for ids in by_content.values() if len(ids) > 1]
    infos = catalog.photo_info([pid for ids in sets for pid in ids])
    out: dict[int, tuple[PhotoInfo, ...]] = {}
    for ids in sets:
        members = [infos[pid] for pid in ids if pid in infos]
        if len(members) > 1:
            group = make_group("exact", members)
            out[group.keep.id] = group.others
    return out


def _neighbours(lib: Library, ids: set[int]) -> dict[tuple[int, int], float]:
    """(a, b) with a < b -> CLIP similarity, for each photo's nearest neighbours."""
    index = lib.vectors.index()
    pairs: dict[tuple[int, int], float] = {}
    if index is None:
        return pairs
    for chunk_ids, vecs, _ in lib.catalog.embeddings_after(lib.model, 0):
        for pid, vec in zip(chunk_ids.tolist(), vecs, strict=True):
            if pid not in ids:
                continue
            found, sims = index.query(vec, NEIGHBOURS + 1)
            for other, sim in zip(found.tolist(), sims.tolist(), strict=True):
                if other != pid and other in ids and sim >= min(NEAR_CLIP, SIMILAR_CLIP):
                    pairs[(min(pid, other), max(pid, other))] = float(sim)
    return pairs


def _near_groups(lib: Library, neighbours: dict[tuple[int, int], float],
                 infos: dict[int, PhotoInfo], rows: dict[int, _Row],
                 found: Found) -> list[list[int]]:
    candidates = [pair for pair, sim in neighbours.items() if sim >= NEAR_CLIP]
    wanted = {pid for pair in candidates for pid in pair}
    hashes = perceptual_hashes(lib, {pid: rows[pid].mtime_ns for pid in wanted},
                               {pid: infos[pid].path for pid in wanted}, found)
    pairs = [(a, b) for a, b in candidates
             if a in hashes and b in hashes and hash_distance(hashes[a], hashes[b]) <= NEAR_BITS]
    return _components(pairs)


def _similar_groups(neighbours: dict[tuple[int, int], float], infos: dict[int, PhotoInfo],
                    ids: set[int]) -> list[list[int]]:
    times = {pid: _seconds(infos[pid]) for pid in ids}
    pairs = [(a, b) for (a, b), sim in neighbours.items()
             if sim >= SIMILAR_CLIP and a in ids and b in ids
             and abs(times[a] - times[b]) <= SIMILAR_SECONDS]
    return _components(pairs)


def _seconds(info: PhotoInfo) -> float:
    try:
        return datetime.fromisoformat(info.date).timestamp()
    except ValueError:
        return info.mtime_ns / 1e9


def _components(pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components (union-find) of at least two photos, each sorted."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = defaultdict(list)
    for x in list(parent):
        members[root(x)].append(x)
    return sorted(sorted(m) for m in members.values() if len(m) > 1)


# --- perceptual hashes --------------------------------------------------------

def picture_hash(img: Image.Image) -> str:
    """The DCT hashes (64 bits each) of the picture in four rotations, then of
    its central 90% (what a slightly cropped copy shows), in hex."""
    grey = img.convert("L")
    w, h = grey.size
    centre = grey.crop((w // 20, h // 20, w - w // 20, h - h // 20))
    return "".join(dct_hash(part) for part in
                   [*(grey.rotate(angle, expand=True) for angle in _ROTATIONS), centre])


# The 32-point DCT-II basis: row k is cos(pi k (2n + 1) / 64).
_DCT = np.cos(np.pi * np.outer(np.arange(32), 2 * np.arange(32) + 1) / 64)


def dct_hash(grey: Image.Image) -> str:
    """The perceptual hash ``imagehash.phash`` computes (the same bits): the
    picture at 32 x 32, its 2-D DCT, the 8 x 8 lowest frequencies against their
    median. Written here with numpy because imagehash takes the DCT from SciPy,
    which would add 73 MB to the installed app for one 32 x 32 transform."""
    pixels = np.asarray(grey.convert("L").resize((32, 32), Image.Resampling.LANCZOS),
                        dtype=np.float64)
    low = (_DCT @ pixels @ _DCT.T)[:8, :8]
    bits = "".join("1" if b else "0" for b in (low > np.median(low)).flatten())
    return f"{int(bits, 2):016x}"


def hash_distance(a: str, b: str) -> int:
    """Bits that differ between ``a`` upright and ``b`` in its closest rotation, or
    between one picture and the other's centre (a cropped copy)."""
    def part(h: str, n: int) -> int:
        return int(h[n * _HASH_HEX:(n + 1) * _HASH_HEX], 16)

    pairs = [(part(a, 0), part(b, n)) for n in range(len(_ROTATIONS))]
    pairs += [(part(a, 0), part(b, _CENTRE)), (part(a, _CENTRE), part(b, 0))]
    return min((x ^ y).bit_count() for x, y in pairs)


def perceptual_hashes(lib: Library, mtimes: dict[int, int], paths: dict[int, str],
                      found: Found) -> dict[int, str]:
    """Each photo's picture hash: from the cache when the file is unchanged, else
    from its thumbnail, else from the file (decoded in a worker process)."""
    cached = _cached(lib.catalog, list(mtimes))
    out = {pid: h for pid, (mtime, h) in cached.items()
           if mtimes.get(pid) == mtime and len(h) == _HASH_LEN}
    missing: list[int] = []
    for pid in sorted(set(mtimes) - set(out)):
        thumb = lib.thumbs.get(pid)
        if thumb is None:
            missing.append(pid)
            continue
        with Image.open(io.BytesIO(thumb)) as img:
            out[pid] = picture_hash(img)
        found.perceptual[pid] = (mtimes[pid], out[pid])
    for pid, digest in _from_files([(pid, paths[pid]) for pid in missing]).items():
        out[pid] = digest
        found.perceptual[pid] = (mtimes[pid], digest)
    return out


def _from_files(photos: list[tuple[int, str]]) -> dict[int, str]:
    if not photos:
        return {}
    from photofind.core.decodepool import DecodePool
    from photofind.core.imaging import Decoded, Preprocess

    out: dict[int, str] = {}
    with DecodePool(Preprocess(64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))) as pool:
        for (pid, _), result in pool.run(photos, lambda item: item[1]):
            if isinstance(result, Decoded):
                with Image.open(io.BytesIO(result.thumbnail)) as img:
                    out[pid] = picture_hash(img)
    return out


def _cached(catalog: Catalog, ids: list[int]) -> dict[int, tuple[int, str]]:
    out: dict[int, tuple[int, str]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = catalog.db.execute(
            "SELECT photo_id, mtime_ns, hashes FROM picture_hashes WHERE photo_id IN"
            f" ({','.join('?' * len(chunk))})", chunk)
        out.update({r[0]: (r[1], r[2]) for r in rows})
    return out


def store_hashes(catalog: Catalog, found: Found) -> int:
    """Keep what ``find_duplicates`` computed (the writer only); returns how many.
    A content hash is stored only while the row still has none, or one of the
    algorithm before (indexing writes today's)."""
    with catalog.transaction() as db:
        db.executemany("UPDATE photos SET content_hash = ? WHERE id = ? AND (content_hash IS NULL"
                       f" OR {_OLDER})",
                       [(digest, pid, *_OLDER_ARGS)
                        for pid, digest in found.content_hashes.items()])
        db.executemany("INSERT OR REPLACE INTO picture_hashes(photo_id, mtime_ns, hashes)"
                       " SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM photos WHERE id = ?)",
                       [(pid, mtime, h, pid) for pid, (mtime, h) in found.perceptual.items()])
    return len(found.content_hashes) + len(found.perceptual)
