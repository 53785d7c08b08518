"""The automatic cut-off keeps the clear matches of a text query: measured
on the toy library, 20 colour-shape queries with 6 exact matches each."""

from __future__ import annotations

import itertools

from photofind.core.config import Settings
from photofind.core.library import Library
from photofind.core.search import Searcher, parse_query
from photofind.gui.models import clear_matches_floor
from photofind.testing.shapes import CLASSES
from tests.conftest import IndexedLibrary


def test_the_automatic_cutoff_keeps_the_clear_matches(indexed: IndexedLibrary,
                                                      toy_model: str) -> None:
    truth = {str(p.path): (p.colour, p.shape) for p in indexed.photos}
    kept = kept_exact = exact = 0
    with Library.open(Settings.resolve(str(indexed.cli.library), toy_model, "cpu")) as lib:
        searcher = Searcher(lib)
        for colour, shape in CLASSES:
            ranked = searcher.ranked(parse_query(f"a {colour} {shape}"), 2000)
            assert len(ranked) == len(indexed.photos)  # everything is ranked ...
            floor = clear_matches_floor([score for _, score in ranked])
            passed = [truth[info.path] for info, score in ranked if score >= floor]
            assert passed, f"nothing passes for {colour} {shape}"
            kept += len(passed)
            kept_exact += passed.count((colour, shape))
            exact += sum(1 for t in truth.values() if t == (colour, shape))
    recall, precision = kept_exact / exact, kept_exact / kept
    print(f"automatic cut-off: recall {recall:.2f}, precision {precision:.2f},"
          f" {kept / len(CLASSES):.1f} photos per query of {len(indexed.photos)}")
    assert recall >= 0.9 and precision >= 0.85  # ... but only the clear matches pass


def test_the_cutoff_is_relative_to_the_scores() -> None:
    """The same rule on trained-CLIP-like scores (0.15-0.35): a few stand out."""
    background = [0.18 + 0.0005 * i for i in range(200)]  # 0.18 .. 0.28
    matches = [0.33, 0.328, 0.325]
    floor = clear_matches_floor(background + matches)
    assert sum(s >= floor for s in background + matches) == 3
    assert list(itertools.islice(sorted(background + matches, reverse=True), 3)) == matches
