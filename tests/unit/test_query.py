"""Query syntax: what users type becomes the terms they meant."""

from pathlib import Path

import pytest

from photofind.core.errors import PhotofindError
from photofind.core.search import Term, parse_query


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
