"""Filters combine with any query and stay exact and fast.

On the toy CLIP: a query restricted to a folder returns only that folder's
photos, its matches first, and as many as were asked for when it has them;
kind and orientation follow the files. On written catalogs: date ranges are
whole periods with both ends inclusive (the file's time where a photo has no
taken date), bad dates and folders outside the library are one-sentence usage
errors, and a filtered query through the graph matches exact search, down to
filters that keep one photo in a thousand.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from photofind.core import search, vectors
from photofind.core.config import Settings
from photofind.core.errors import UsageError
from photofind.core.filters import Filter, Period, exact_nearest, matching_ids
from photofind.core.library import Library
from photofind.core.records import FileRecord
from photofind.core.search import Searcher
from photofind.testing.samples import make_sample_library
from tests.conftest import Cli, IndexedLibrary

DIM = 32


def _inside(path: str, folder: Path) -> bool:
    return Path(path).is_relative_to(folder)


@pytest.fixture(scope="module")
def two_folders(tmp_path_factory: pytest.TempPathFactory, toy_model: str) -> IndexedLibrary:
    """Pictures/Holidays and Pictures/Work, each with every colour-shape pair twice
    (in nested folders, several formats and orientations), indexed as one root."""
    base = tmp_path_factory.mktemp("filters")
    photos = make_sample_library(base / "Pictures" / "Holidays", per_class=2, seed=11, large=0)
    photos += make_sample_library(base / "Pictures" / "Work", per_class=2, seed=12, large=0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOFIND_")}
    env.update(PHOTOFIND_LIBRARY=str(base / "library"), PHOTOFIND_MODEL=toy_model,
               PHOTOFIND_DEVICE="cpu", HF_HUB_OFFLINE="1")
    cli = Cli(base / "library", toy_model, env)
    assert cli.index(str(base / "Pictures"))["added"] == len(photos)
    return IndexedLibrary(cli, photos, base / "Pictures")


def test_a_query_in_one_folder_returns_that_folders_matches(
        two_folders: IndexedLibrary) -> None:
    lib = two_folders
    folder = lib.root / "Holidays"
    reds = {str(p.path) for p in lib.photos
            if _inside(str(p.path), folder) and (p.colour, p.shape) == ("red", "circle")}
    assert len(reds) == 2
    hits = lib.cli.search("a red circle", "--in", str(folder), limit=2)
    assert {h["path"] for h in hits} == reds
    more = lib.cli.search("a red circle", "--in", str(folder), limit=7)
    assert len(more) == 7  # k results: the filter keeps enough photos
    assert all(_inside(h["path"], folder) for h in more)
    assert {h["path"] for h in more[:2]} == reds
    everywhere = lib.cli.search("a red circle", limit=4)
    assert any(_inside(h["path"], lib.root / "Work") for h in everywhere)
    both = lib.cli.search("a red circle", "--in", str(folder), "--in",
                          str(lib.root / "Work"), limit=4)
    assert {h["path"] for h in both} == {h["path"] for h in everywhere}


def test_kind_and_orientation_follow_the_files(two_folders: IndexedLibrary) -> None:
    every = {str(p.path) for p in two_folders.photos}
    screenshots = {h["path"] for h in two_folders.cli.json("search", "--kind", "screenshot",
                                                       "-n", "1000")}
    assert screenshots == {p for p in every if p.endswith(".png")}
    portrait = {h["path"] for h in two_folders.cli.json(
        "search", "--orientation", "portrait", "--kind", "photo", "-n", "1000")}

    def upright(path: str) -> bool:
        with Image.open(path) as img:
            w, h = ImageOps.exif_transpose(img).size
        return h > w * 1.02

    assert portrait == {p for p in every if not p.endswith(".png") and upright(p)}
    squares = two_folders.cli.json("search", "a blue square", "--orientation", "square")
    assert squares and all(Image.open(h["path"]).size[0] == Image.open(h["path"]).size[1]
                           for h in squares)


def test_bad_dates_and_folders_are_usage_errors(two_folders: IndexedLibrary,
                                                tmp_path: Path) -> None:
    for args in (["a red circle", "--after", "2019-13"], ["x", "--before", "2019-02-30"],
                 ["--after", "June"], ["a red circle", "--in", str(tmp_path)],
                 ["--after", "2020", "--before", "2019"], []):
        proc = two_folders.cli.run("search", *args, check=False)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("photofind: "), proc.stderr
        assert "Traceback" not in proc.stderr and not proc.stdout
    for text in ("2019-6-", "19", "2019/06", "2019-00"):
        with pytest.raises(UsageError):
            Period.parse(text)


# --- written catalogs ---------------------------------------------------------

@pytest.fixture
def written(tmp_path: Path) -> Iterator[Callable[..., Library]]:
    """A writer library whose photos are written directly, with given vectors."""
    libs: list[Library] = []

    def make(rows: list[tuple[str, str | None, int, tuple[int, int]]],
             vecs: np.ndarray | None = None) -> Library:
        lib = Library.open(Settings.resolve(str(tmp_path / "lib"), "test-model", "cpu"),
                           writer=True)
        libs.append(lib)
        root = lib.catalog.add_root("/photos")
        if vecs is None:
            vecs = _unit(np.random.default_rng(0).normal(size=(len(rows), DIM)))
        for lo in range(0, len(rows), 2000):
            batch = [FileRecord(root.id, path, 1000 + i, mtime_ns, quick_hash=f"{i:032x}", width=w,
                                height=h, taken_at=taken)
                     for i, (path, taken, mtime_ns, (w, h)) in enumerate(rows[lo:lo + 2000], lo)]
            lib.catalog.write_batch("test-model", batch, list(vecs[lo:lo + 2000]))
        lib.vectors.rebuild()
        return lib

    yield make
    for lib in libs:
        lib.close()


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * 1_000_000_000


def test_date_ranges_are_whole_periods_with_both_ends_inclusive(
        written: Callable[..., Library]) -> None:
    taken = ["2018-12-31T23:59:59", "2019-01-01T00:00:00", "2019-06-30T23:59:59",
             "2019-07-01T00:00:00", "2019-12-31T23:59:59", "2020-01-01T00:00:00"]
    rows = [(f"/photos/{t[:10]}.jpg", t, _ns("2024-05-05T10:00:00"), (400, 300))
            for t in taken]
    # No taken date (written before they were always recorded): the file's time.
    rows += [("/photos/old-june.jpg", None, _ns("2019-06-15T08:00:00"), (400, 300)),
             ("/photos/old-2021.jpg", None, _ns("2021-02-01T08:00:00"), (400, 300))]
    lib = written(rows)
    searcher = Searcher(lib)

    def kept(after: str | None, before: str | None) -> list[str]:
        flt = Filter(after=Period.parse(after) if after else None,
                     before=Period.parse(before) if before else None)
        return sorted(os.path.basename(p.path) for p in searcher.browse(flt))

    assert kept("2019", "2019") == ["2019-01-01.jpg", "2019-06-30.jpg", "2019-07-01.jpg",
                                    "2019-12-31.jpg", "old-june.jpg"]
    assert kept("2019-06", "2019-06") == ["2019-06-30.jpg", "old-june.jpg"]
    assert kept("2019-06-30", "2019-07-01") == ["2019-06-30.jpg", "2019-07-01.jpg"]
    assert kept("2019-07", None) == ["2019-07-01.jpg", "2019-12-31.jpg", "2020-01-01.jpg",
                                     "old-2021.jpg"]
    assert kept(None, "2018") == ["2018-12-31.jpg"]
    newest = [os.path.basename(p.path) for p in searcher.browse(
        Filter(after=Period.parse("2019")), limit=3)]
    assert newest == ["old-2021.jpg", "2020-01-01.jpg", "2019-12-31.jpg"]


def _clustered(n: int, seed: int = 0) -> np.ndarray:
    """Vectors in tight clusters (the hard case for a graph), unit length."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(n // 50, DIM)))
    return _unit(centres[rng.integers(0, len(centres), n)] + 0.35 * _unit(
        rng.normal(size=(n, DIM))))


@pytest.mark.parametrize("graph_only", [False, True])
def test_filtered_queries_match_exact_search_down_to_one_in_a_thousand(
        written: Callable[..., Library], monkeypatch: pytest.MonkeyPatch,
        graph_only: bool) -> None:
    # The graph answers above a few hundred photos here (in a real library, above
    # vectors.EXACT_MAX); graph_only takes it even for filters that keep few.
    monkeypatch.setattr(vectors, "EXACT_MAX", 300)
    monkeypatch.setattr(search, "EXACT_MAX", 300)
    if graph_only:
        monkeypatch.setattr(search, "EXACT_FILTERED", 0.0)
    n = 6000
    folders = [("half", 3000), ("tenth", 600), ("hundredth", 60), ("thousandth", 6)]
    names = [name for name, count in folders for _ in range(count)]
    names += ["rest"] * (n - len(names))
    data = _clustered(n)
    lib = written([(f"/photos/{name}/{i:05d}.jpg", "2020-01-01T00:00:00", 0, (400, 300))
                   for i, name in enumerate(names)], data)
    index = lib.vectors.index()
    assert index is not None and len(index) == n
    searcher = Searcher(lib)
    queries = _unit(data[np.random.default_rng(1).integers(0, n, 20)]
                    + 0.3 * _unit(np.random.default_rng(2).normal(size=(20, DIM))))
    for name, count in folders:
        flt = Filter(folders=(f"/photos/{name}",))
        kept = np.array(sorted(matching_ids(lib.catalog.db, flt)))
        assert len(kept) == count
        hits = 0
        for q in queries:
            found = searcher.nearest(q, 10, ef=vectors.EF_TEXT, flt=flt)
            assert len(found) == min(10, count)  # k results whenever the filter keeps k
            assert all(info.path.startswith(f"/photos/{name}/") for info, _ in found)
            exact = kept[np.argsort(-(data[kept - 1] @ q))[:10]]
            hits += len({info.id for info, _ in found} & set(exact.tolist()))
        assert hits / (len(queries) * min(10, count)) >= 0.99, name
    ids, _ = exact_nearest(lib.catalog.db, Filter(folders=("/photos/thousandth",)),
                           "test-model", queries[0], 10, exclude=set())
    assert len(ids) == 6


def test_an_older_catalog_learns_each_photos_kind(tmp_path: Path) -> None:
    """The schema step that adds kinds fills them in for the photos already there."""
    import sqlite3

    from photofind.core.catalog import _MIGRATIONS, Catalog

    path = tmp_path / "catalog.sqlite3"
    db = sqlite3.connect(path)
    before = _MIGRATIONS.index(next(m for m in _MIGRATIONS if "ADD COLUMN kind" in m))
    for step in _MIGRATIONS[:before]:
        db.executescript(step)
    db.execute(f"PRAGMA user_version = {before}")
    db.execute("INSERT INTO roots(path, added_at) VALUES ('/p', 0)")
    names = ["a.jpg", "b.PNG", "c.dng", "d.CR3", "e.heic", "f.nef.jpg"]
    # Whatever other steps come first, every required column gets a plain value.
    required = {row[1]: row[2] for row in db.execute("PRAGMA table_info(photos)")
                if row[3] and row[4] is None and row[1] not in ("id", "path")}
    plain = {"root_id": 1, "status": "ok"}
    columns = ", ".join(["path", *required])
    for name in names:
        values = [f"/p/{name}", *(plain.get(c, "" if t == "TEXT" else 0)
                                  for c, t in required.items())]
        db.execute(f"INSERT INTO photos({columns}) VALUES ({','.join('?' * len(values))})",
                   values)
    db.commit()
    db.close()
    catalog = Catalog(path)
    try:
        kinds = dict(catalog.db.execute("SELECT path, kind FROM photos"))
    finally:
        catalog.close()
    assert kinds == {"/p/a.jpg": "photo", "/p/b.PNG": "screenshot", "/p/c.dng": "raw",
                     "/p/d.CR3": "raw", "/p/e.heic": "photo", "/p/f.nef.jpg": "photo"}
