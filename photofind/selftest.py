"""``photofind --self-test``: can this installation index and search by itself?

It draws a small sample library (every colour-shape picture, in JPEG, PNG, WebP and
HEIC, one 12-megapixel), indexes it in a temporary library with the small test model
(shipped inside a frozen bundle; the toy CLIP's cache in a checkout), then searches it by
text (each caption) and by image (freshly drawn pictures that are not in the library),
and checks that the answers show what was asked for. That exercises the decode worker
processes, the model runtime, the tokenizer, hnswlib and SQLite as the app uses them.
It prints one line: ok with the figures, or what failed; the exit status says the same.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from photofind.bundle import bundled_model_dir
from photofind.core.config import Settings
from photofind.core.errors import PhotofindError
from photofind.core.library import Library
from photofind.core.search import Result, Searcher, parse_query
from photofind.core.textindex import set_reading

PER_CLASS = 2
# A working install ranks the toy pictures well above these; a broken tokenizer,
# preprocessing or runtime ranks them at chance (1 in the number of classes).
MIN_TEXT_PRECISION = 0.75
MIN_IMAGE_PRECISION = 0.6


class SelfTestFailed(Exception):
    """One sentence saying what did not work."""


def model_dir() -> Path:
    """The self-test model: the bundle's own, else (a checkout) the toy CLIP's cache."""
    bundled = bundled_model_dir()
    if bundled is not None:
        return bundled
    if getattr(sys, "frozen", False):
        raise SelfTestFailed("this bundle has no self-test model (selftest-model folder)")
    from photofind.testing.toyclip import toy_model_dir

    return toy_model_dir()


def _precision(truth: dict[str, tuple[str, str]], want: tuple[str, str],
               results: list[str]) -> float:
    return sum(truth.get(path) == want for path in results) / max(len(results), 1)


def _paths(results: list[Result]) -> list[str]:
    return [str(Path(r.path).resolve()) for r in results]


def _check(name: str, precisions: list[float], minimum: float) -> float:
    mean = sum(precisions) / len(precisions)
    if mean < minimum:
        raise SelfTestFailed(f"{name} search found the wrong photos (precision {mean:.2f},"
                             f" expected at least {minimum})")
    return mean


def run(work: Path, model: Path) -> str:
    """Index and search a drawn library under ``work``; return the summary of figures."""
    from photofind.core.indexer import run_index
    from photofind.testing.samples import make_sample_library, save_picture
    from photofind.testing.shapes import CLASSES, caption, draw_picture

    photos = make_sample_library(work / "photos", per_class=PER_CLASS, large=1)
    truth = {str(p.path.resolve()): (p.colour, p.shape) for p in photos}
    settings = Settings.resolve(str(work / "library"), f"local-dir:{model}", "cpu")
    start = time.perf_counter()
    with Library.open(settings, writer=True) as lib:
        root, _ = lib.add_root(str((work / "photos").resolve()))
        set_reading(lib.catalog, False)  # the reader is checked on its own (_reading)
        indexing = run_index(lib, [root])
        try:
            while True:
                next(indexing)
        except StopIteration as stop:
            report = stop.value
    took = time.perf_counter() - start
    if report.failed or report.embedded != len(photos):
        raise SelfTestFailed(f"indexing embedded {report.embedded} of {len(photos)} photos"
                             f" ({report.failed} could not be read)")
    rng = random.Random(99)
    with Library.open(settings) as lib:
        searcher = Searcher(lib)
        text = [_precision(truth, cls, _paths(
            searcher.search(parse_query(caption(*cls)), PER_CLASS))) for cls in CLASSES]
        image = []
        for cls in CLASSES[::3]:
            probe = work / "probes" / f"{cls[0]}-{cls[1]}.png"
            save_picture(draw_picture(*cls, (320, 240), rng), probe, "PNG")
            image.append(_precision(truth, cls, _paths(searcher.similar(str(probe), PER_CLASS))))
        engine = _engine(lib)
    text_p = _check("text", text, MIN_TEXT_PRECISION)
    image_p = _check("image", image, MIN_IMAGE_PRECISION)
    return (f"{len(photos)} photos indexed in {took:.1f} s, text precision {text_p:.2f},"
            f" image precision {image_p:.2f}, {engine}, {_reading(work)}")


def _reading(work: Path) -> str:
    """The text reader starts and reads a drawn receipt's total."""
    from photofind.core import ocr
    from photofind.core.reading import ReaderProcess
    from photofind.testing.textimages import receipt

    if not ocr.installed():
        return "no text reader installed"
    path = work / "receipt.jpg"
    receipt([("nails", "3.50")], "Hardware", "42.50").save(path, quality=92)
    with ReaderProcess(threads=1) as reader:
        read = reader.read(0, str(path), ocr.engine_id())
    if "42.50" not in read.text:
        raise SelfTestFailed(f"the text reader read {read.text!r} in a receipt ({read.problem})")
    return "text reader ok"


def _engine(lib: Library) -> str:
    from photofind.core.doctor import status_report

    status = status_report(lib)
    return str(status["engine"])


def main() -> int:
    try:
        with tempfile.TemporaryDirectory(prefix="photofind-selftest-") as tmp:
            summary = run(Path(tmp), model_dir())
    except (SelfTestFailed, PhotofindError) as exc:
        print(f"photofind self-test: FAILED: {exc}")
        return 1
    print(f"photofind self-test: ok ({summary})")
    return 0
