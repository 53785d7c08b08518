"""Query syntax and arithmetic: what users type becomes the terms they meant,
and the terms combine as a weighted sum of unit vectors, normalised again, so a
weight or a minus moves the results the way it says."""

from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
import pytest

from photofind.core.errors import PhotofindError
from photofind.core.library import Library
from photofind.core.search import Searcher, Term, parse_query
from tests.conftest import IndexedLibrary


def test_words_stay_one_text_term() -> None:
    assert parse_query(["two dogs in the snow"]) == [Term(1.0, "text", "two dogs in the snow")]


def test_plus_minus_and_weights_across_cli_words(tmp_path: Path) -> None:
    me = tmp_path / "me.jpg"
    me.write_bytes(b"x")
    terms = parse_query(["beach", "+", str(me), "-", "crowd"])
    assert terms == [Term(1.0, "text", "beach"), Term(1.0, "image", str(me)),
                     Term(-1.0, "text", "crowd")]
    assert parse_query(["2:beach - 0.5:crowd"]) == [Term(2.0, "text", "beach"),
                                                    Term(-0.5, "text", "crowd")]


def test_one_string_from_the_search_box() -> None:
    assert parse_query("beach + sunset - people") == [
        Term(1.0, "text", "beach"), Term(1.0, "text", "sunset"), Term(-1.0, "text", "people")]


def test_hyphenated_words_are_not_operators() -> None:
    assert parse_query(["black-and-white photo"]) == [
        Term(1.0, "text", "black-and-white photo")]


def test_missing_image_file_is_a_clear_error() -> None:
    with pytest.raises(PhotofindError, match="no image file"):
        parse_query(["./nowhere/me.jpg"])


def test_queries_that_cannot_find_anything_are_refused() -> None:
    with pytest.raises(PhotofindError, match="empty"):
        parse_query(["  "])
    with pytest.raises(PhotofindError, match="only subtracts"):
        parse_query(["-", "crowd"])


class _Words:
    """An embedder whose text vectors are given (deliberately not unit length)."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = {k: np.array(v, np.float32) for k, v in vectors.items()}

    def text_vector(self, text: str) -> npt.NDArray[np.float32]:
        return self.vectors[text]


class _Library:
    def __init__(self, words: _Words) -> None:
        self.words = words

    def embedder(self) -> _Words:
        return self.words


def query_vector(query: str, vectors: dict[str, list[float]]) -> npt.NDArray[np.float32]:
    searcher = Searcher(cast(Library, _Library(_Words(vectors))))
    vector, exclude = searcher.query_vector(parse_query(query))
    assert exclude == set()
    return vector


AXES = {"beach": [3.0, 0.0, 0.0], "sunset": [0.0, 0.5, 0.0], "crowd": [0.0, 0.0, 7.0]}


def test_terms_are_normalised_weighted_summed_and_normalised_again() -> None:
    # Each term counts by its weight, not by its vector's length.
    expected = np.array([2.0, 1.0, -0.5]) / np.linalg.norm([2.0, 1.0, -0.5])
    got = query_vector("2:beach + sunset - 0.5:crowd", AXES)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert abs(float(np.linalg.norm(got)) - 1.0) < 1e-6
    np.testing.assert_allclose(query_vector("beach + sunset", AXES),
                               np.array([1.0, 1.0, 0.0]) / np.sqrt(2), atol=1e-6)


def test_a_weight_moves_the_query_towards_its_term() -> None:
    vectors = {"a": [1.0, 0.0], "b": [0.6, 0.8]}  # unit, 53 degrees apart
    even = query_vector("a + b", vectors)
    heavy = query_vector("3:a + b", vectors)
    assert float(heavy @ vectors["a"]) > float(even @ vectors["a"]) + 0.05
    assert float(heavy @ np.array(vectors["b"])) < float(even @ np.array(vectors["b"])) - 0.05


def test_a_negative_term_pushes_its_matches_below_the_others() -> None:
    # Photos: red circles and red squares are equally red; "- circle" must rank the
    # squares first, and by more the heavier the minus.
    red, circle, square = np.eye(3, dtype=np.float32)
    vectors = {"red": list(red), "circle": list(circle), "square": list(square)}
    red_circle, red_square = (red + circle) / np.sqrt(2), (red + square) / np.sqrt(2)
    plain = query_vector("red", vectors)
    assert float(plain @ red_circle) == pytest.approx(float(plain @ red_square))
    gaps = []
    for query in ("red - circle", "red - 2:circle"):
        q = query_vector(query, vectors)
        gaps.append(float(q @ red_square - q @ red_circle))
    # (red - circle)/sqrt(2) and (red - 2 circle)/sqrt(5), against the two photos
    assert gaps == pytest.approx([0.5, 2 / np.sqrt(10)])


def test_terms_that_cancel_out_are_refused() -> None:
    with pytest.raises(PhotofindError, match="cancel"):
        query_vector("beach - beach", AXES)


def _ranks(indexed: IndexedLibrary, *query: str) -> list[tuple[str, str]]:
    truth = {str(p.path): (p.colour, p.shape) for p in indexed.photos}
    return [truth[r["path"]] for r in indexed.cli.search(*query, limit=len(indexed.photos))]


def test_minus_in_the_cli_ranks_red_non_circles_above_red_circles(indexed: IndexedLibrary
                                                                  ) -> None:
    def red_circles_last(ranked: list[tuple[str, str]]) -> bool:
        shapes = [shape for colour, shape in ranked if colour == "red"]
        first_circle = shapes.index("circle")
        return "circle" not in shapes[:first_circle] and set(shapes[first_circle:]) == {
            "circle"}

    assert not red_circles_last(_ranks(indexed, "a red shape"))  # mixed without the minus
    assert red_circles_last(_ranks(indexed, "a red shape - a circle"))


def test_a_weight_in_the_cli_changes_the_ranking(indexed: IndexedLibrary) -> None:
    def top(ranked: list[tuple[str, str]], cls: tuple[str, str]) -> int:
        return sum(c == cls for c in ranked[:6])

    even = _ranks(indexed, "a red circle + a blue square")
    red = _ranks(indexed, "2:a red circle + a blue square")
    blue = _ranks(indexed, "a red circle + 2:a blue square")
    assert red != even != blue
    assert top(red, ("red", "circle")) > top(even, ("red", "circle"))
    assert top(blue, ("blue", "square")) > top(even, ("blue", "square"))
    assert _ranks(indexed, "1:a red circle + a blue square") == even  # 1: is the default
