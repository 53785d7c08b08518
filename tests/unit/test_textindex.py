"""The words read in photos, without the engine: query syntax, the FTS index
(diacritics, prefixes, phrases), stale text, word boxes from characters."""

from __future__ import annotations

from pathlib import Path

import pytest

from photofind.core import ocr, textindex
from photofind.core.catalog import Catalog
from photofind.core.ocr import Line, Word
from photofind.core.records import FileRecord
from photofind.core.search import Term, parse_query
from photofind.core.textindex import ReadText
from photofind.core.textsearch import highlight_words


def test_text_terms_are_their_own_kind_and_combine_with_words() -> None:
    assert parse_query('text:"total 42.50"') == [Term(1.0, "words", '"total 42.50"')]
    assert parse_query("hardware store text:receipt - text:draft") == [
        Term(1.0, "text", "hardware store"), Term(1.0, "words", "receipt"),
        Term(-1.0, "words", "draft")]
    assert parse_query(["beach", "+", "TEXT:rec*"])[1] == Term(1.0, "words", "rec*")


def test_user_words_never_become_fts_syntax() -> None:
    assert textindex.expression('"total 42.50"') == '"total 42 50"'
    assert textindex.expression("rec* store") == '"rec"* AND "store"'
    assert textindex.expression('NEAR(a b) OR "x') == '"near a" AND "b" AND "or" AND "x"'
    assert textindex.expression("  ") is None
    assert textindex.plain_expression("a photo of the receipt") == '"receipt"'
    assert textindex.plain_expression("a to of it") is None


def _catalog(tmp_path: Path) -> tuple[Catalog, list[int]]:
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    root = catalog.add_root(str(tmp_path))
    photos = [FileRecord(root.id, str(tmp_path / f"{i}.jpg"), 10, 1, quick_hash="h")
              for i in range(3)]
    ids = catalog.write_batch("m", photos, [ocr_vec() for _ in photos])
    return catalog, ids


def ocr_vec():  # type: ignore[no-untyped-def]
    import numpy as np

    return np.ones(4, np.float32) / 2


def _read(pid: int, *lines: str) -> ReadText:
    return ReadText(pid, "engine-1", tuple(
        Line(t, 0.9, (0.1, 0.1, 0.5, 0.2), tuple(Word(w, (0.1, 0.1, 0.2, 0.2))
                                             for w in t.split())) for t in lines), 0.9, None)


def test_search_folds_diacritics_and_takes_prefixes_and_phrases(tmp_path: Path) -> None:
    catalog, (a, b, c) = _catalog(tmp_path)
    textindex.store(catalog, [_read(a, "Café Müller", "TOTAL 42.50"),
                              _read(b, "total due", "42 50 later"), _read(c, "MARBLEBRIDGE")])
    # Words the recogniser ran together are found by their pieces, and marked whole.
    assert textindex.matching(catalog, '"bridge"') == [c]
    assert textindex.matching(catalog, '"marble"') == [c]
    assert [w.text for w in textindex.matched_words(_read(c, "MARBLEBRIDGE"), ["bridge"])] == [
        "MARBLEBRIDGE"]
    assert textindex.matching(catalog, textindex.expression("muller") or "") == [a]
    assert textindex.matching(catalog, textindex.expression("CAFE") or "") == [a]
    assert textindex.matching(catalog, textindex.expression("mül*") or "") == [a]
    assert textindex.matching(catalog, textindex.expression('"total 42.50"') or "") == [a]
    assert set(textindex.matching(catalog, textindex.expression("total") or "")) == {a, b}
    assert textindex.unread(catalog, "engine-1", 10) == []
    assert [pid for pid, _, _ in textindex.unread(catalog, "engine-2", 10)] == [a, b, c]
    busy = ReadText(c, "engine-1", (), None, "timeout")
    textindex.store(catalog, [busy])
    assert textindex.unread(catalog, "engine-1", 10) == [(c, str(tmp_path / "2.jpg"), True)]
    textindex.store(catalog, [ReadText(c, "engine-1", (), None, "timeout (twice)")])
    assert textindex.unread(catalog, "engine-1", 10) == []


def test_a_changed_photo_loses_its_text_and_a_moved_one_keeps_it(tmp_path: Path) -> None:
    catalog, (a, b, _) = _catalog(tmp_path)
    textindex.store(catalog, [_read(a, "receipt"), _read(b, "receipt")])
    catalog.move_photos([FileRecord(1, str(tmp_path / "moved.jpg"), 10, 1, id=b)])
    root = catalog.roots()[0]
    catalog.write_batch("m", [FileRecord(root.id, str(tmp_path / "0.jpg"), 11, 2, quick_hash="h2",
                                         id=a)], [ocr_vec()])
    assert textindex.matching(catalog, '"receipt"') == [b]
    assert textindex.text_of(catalog, a) is None
    catalog.delete_photos([b])
    assert textindex.matching(catalog, '"receipt"') == []
    catalog.db.execute("INSERT INTO photo_text_fts(photo_text_fts) VALUES ('integrity-check')")


def test_the_library_switch_outlives_the_environment(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    catalog, _ = _catalog(tmp_path)
    monkeypatch.setenv(textindex.ENV, "1")
    assert textindex.reading_enabled(catalog)
    textindex.set_reading(catalog, False)
    assert not textindex.reading_enabled(catalog)
    monkeypatch.setenv(textindex.ENV, "0")
    textindex.set_reading(catalog, True)
    assert textindex.reading_enabled(catalog)


def test_highlights_name_the_matched_words_only() -> None:
    read = _read(1, "HARDWARE STORE", "TOTAL 42.50", "hammer")
    words = highlight_words('store text:"total 42.50" text:ham*')
    assert words == ["store", "total", "42", "50", "ham*"]
    assert [w.text for w in textindex.matched_words(read, words)] == [
        "STORE", "TOTAL", "42.50", "hammer"]


def test_dropped_spaces_come_back_from_the_character_steps() -> None:
    chars = list("TOTAL42.50")
    centres = [36, 58, 76, 92, 107, 134, 154, 167, 179, 197]  # as PP-OCR placed them
    boxes = [[[c - 6, 45], [c + 6, 45], [c + 6, 68], [c - 6, 68]] for c in centres]
    words = ocr._words("TOTAL42.50", chars, boxes, (0.05, 0.2, 0.4, 0.35), 520, 200)
    assert [w.text for w in words] == ["TOTAL", "42.50"]
    assert words[0].box[2] < words[1].box[0]  # each word has its own box
    short = ocr._words("timber", list("timber"), boxes[:6], (0.05, 0.2, 0.4, 0.35), 520, 200)
    assert [w.text for w in short] == ["timber"]  # a short word is never cut

