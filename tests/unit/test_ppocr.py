"""The reader's own geometry and decoding (core/ocrgeometry.py, core/ppocr.py):
blobs of the detector's bitmap, the smallest rotated rectangle, its growth,
the box score, the reading order and CTC decoding; and that reading text never
brings OpenCV in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from photofind.core import ocr
from photofind.core import ocrgeometry as geo
from photofind.core.ppocr import boxes_from_map, ctc_decode, sorted_boxes

REPO = Path(__file__).resolve().parents[2]


def test_blobs_are_8_connected_and_kept_apart() -> None:
    mask = np.zeros((8, 10), dtype=bool)
    mask[1, 1:4] = True  # a bar ...
    mask[2, 4] = True  # ... touching this pixel only at a corner: one blob
    mask[5:7, 0:2] = True  # a square on its own
    mask[5, 5] = mask[6, 7] = True  # two pixels a column apart: two blobs
    blobs = geo.components(mask)
    pixels = sorted(sorted({(int(x), int(y)) for x, y in b}) for b in blobs)
    assert pixels == [[(0, 5), (0, 6), (1, 5), (1, 6)], [(1, 1), (3, 1), (4, 2)],
                      [(5, 5)], [(7, 6)]]  # run ends: (1, 1) to (3, 1) is the bar
    assert geo.components(np.zeros((4, 4), dtype=bool)) == []


def test_a_u_shape_is_one_blob_though_its_arms_meet_below() -> None:
    mask = np.zeros((6, 7), dtype=bool)
    mask[0:5, 0] = mask[0:5, 6] = True
    mask[5, 0:7] = True
    assert len(geo.components(mask)) == 1


def rotated_rect(cx: float, cy: float, w: float, h: float, degrees: float) -> np.ndarray:
    t = np.radians(degrees)
    u, n = np.array([np.cos(t), np.sin(t)]), np.array([-np.sin(t), np.cos(t)])
    c = np.array([cx, cy])
    return np.array([c - u * w / 2 - n * h / 2, c + u * w / 2 - n * h / 2,
                     c + u * w / 2 + n * h / 2, c - u * w / 2 + n * h / 2])


def test_min_area_rect_of_a_rotated_rectangle_is_that_rectangle() -> None:
    corners = rotated_rect(50, 40, 60, 12, 17)
    inside = [corners[0] + (corners[1] - corners[0]) * a + (corners[3] - corners[0]) * b
              for a in np.linspace(0, 1, 9) for b in np.linspace(0, 1, 5)]
    rect, short = geo.min_area_rect(np.array(inside))
    assert short == pytest.approx(12, abs=1e-6)
    got = geo.ordered(rect)
    assert got == pytest.approx(geo.ordered(corners), abs=1e-6)


def test_min_area_rect_of_a_blob_drawn_at_an_angle() -> None:
    img = Image.new("L", (200, 120))
    ImageDraw.Draw(img).polygon([tuple(p) for p in rotated_rect(100, 60, 120, 20, -25)],
                                fill=255)
    (blob,) = geo.components(np.asarray(img) > 0)
    rect, short = geo.min_area_rect(blob)
    assert short == pytest.approx(20, abs=2.5)
    sides = sorted([np.linalg.norm(rect[1] - rect[0]), np.linalg.norm(rect[3] - rect[0])])
    assert sides == pytest.approx([20, 120], abs=2.5)
    long_side = rect[1] - rect[0] if sides[1] == np.linalg.norm(rect[1] - rect[0]) \
        else rect[3] - rect[0]
    angle = np.degrees(np.arctan2(long_side[1], long_side[0])) % 180
    assert angle == pytest.approx(155, abs=2)  # -25 degrees


def test_unclip_grows_each_side_by_area_ratio_over_perimeter() -> None:
    rect = rotated_rect(0, 0, 40, 10, 30)
    grown = geo.unclip(rect, 1.6)
    d = 40 * 10 * 1.6 / 100  # 6.4 on every side
    sides = sorted([np.linalg.norm(grown[1] - grown[0]), np.linalg.norm(grown[3] - grown[0])])
    assert sides == pytest.approx([10 + 2 * d, 40 + 2 * d])
    assert grown.mean(axis=0) == pytest.approx([0, 0], abs=1e-9)


def test_box_score_is_the_mean_inside_the_box_only() -> None:
    prob = np.zeros((40, 60), dtype=np.float32)
    prob[10:20, 10:50] = 0.9
    assert geo.mean_inside(prob, np.array([[10, 10], [49, 10], [49, 19], [10, 19]], float)) \
        == pytest.approx(0.9)
    assert geo.mean_inside(prob, np.array([[10, 10], [49, 10], [49, 29], [10, 29]], float)) \
        == pytest.approx(0.45)


def test_a_detector_map_gives_its_grown_boxes_in_reading_order() -> None:
    prob = np.zeros((64, 128), dtype=np.float32)
    prob[40:48, 10:60] = 0.95  # lower line
    prob[10:18, 70:120] = 0.95  # upper right
    prob[11:19, 8:50] = 0.95  # upper left, a pixel lower
    prob[30, 100] = 0.95  # a speck: too small
    prob[50:60, 80:120] = 0.35  # above the bitmap's threshold, under the box score
    boxes = sorted_boxes(boxes_from_map(prob, (256, 128)))  # the picture is twice the map
    # each blob grown by area * 1.6 / perimeter (50 x 8 px: 5.5 px), then doubled
    assert [tuple(b[0].astype(int)) for b in boxes] == [(5, 11), (129, 9), (9, 69)]
    lower = boxes[2]
    assert lower[2] - lower[0] == pytest.approx([2 * (50 + 2 * 5.52), 2 * (8 + 2 * 5.52)],
                                                abs=1.01)


def test_ctc_merges_repeats_and_drops_blanks() -> None:
    chars = ["blank", "a", "b", "l", " "]
    best = [1, 1, 0, 2, 2, 0, 2, 0, 0, 3, 3, 3, 4, 1]  # a a _ b b _ b _ _ l l l ' ' a
    probs = np.full((len(best), len(chars)), 0.01, dtype=np.float32)
    probs[np.arange(len(best)), best] = 0.9
    probs[3, 2] = 0.5
    text, score, columns = ctc_decode(probs, chars)
    assert text == "abbl a"
    # each character at the middle of the columns that read it (the second b leans
    # to its surer column)
    assert columns == pytest.approx((0.5, 3.63, 6, 10, 12, 13), abs=0.05)
    assert score == pytest.approx((0.9 + 0.5 + 0.9 * 4) / 6)
    assert ctc_decode(np.eye(5, dtype=np.float32)[[0, 0, 0]], chars)[:2] == ("", 0.0)


def test_a_dropped_space_is_put_back_where_the_recogniser_saw_a_trace_of_it() -> None:
    chars = ["blank", "a", "b", " "]
    best = [1, 0, 0, 2, 0, 1, 0, 2]  # a _ _ b _ a _ b
    probs = np.full((len(best), len(chars)), 0.001, dtype=np.float32)
    probs[np.arange(len(best)), best] = 0.9
    probs[2, 3] = 0.2  # a space, not the best class, between the first a and b
    probs[6, 3] = 0.005  # too faint
    assert ctc_decode(probs, chars)[0] == "abab"
    text, _, columns = ctc_decode(probs, chars, space=3)
    assert text == "a bab"
    assert columns[1] == 2 and columns[0] < columns[2] < columns[3]


def test_reading_text_never_imports_opencv(tmp_path: Path) -> None:
    """A poisoned cv2 first on the path: the reader must not touch it."""
    if not ocr.installed():
        pytest.skip("needs the OCR models (the ocr extra)")
    poison = tmp_path / "poison"
    poison.mkdir()
    (poison / "cv2.py").write_text("raise ImportError('photofind imported cv2')\n")
    picture = tmp_path / "sign.png"
    img = Image.new("RGB", (400, 120), "white")
    from photofind.testing.textimages import font

    ImageDraw.Draw(img).text((20, 35), "HARBOR", fill="black", font=font(40))
    img.save(picture)
    script = ("import sys\n"
              "from photofind.core import ocr\n"
              "from photofind.core.reading import upright_pixels\n"
              f"lines = ocr.Reader(1).read(upright_pixels({str(picture)!r}))\n"
              "print(' '.join(l.text for l in lines))\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in"
              " ('cv2', 'rapidocr_onnxruntime', 'shapely', 'pyclipper', 'scipy')))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(poison), str(REPO)])}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text, modules = out.stdout.splitlines()
    assert "HARBOR" in text
    assert modules == "[]"


@pytest.mark.skipif(not ocr.installed(), reason="needs the OCR models (the ocr extra)")
@pytest.mark.parametrize("turn", [90, 180, 270])
def test_word_boxes_follow_the_words_when_the_picture_is_turned(turn: int) -> None:
    """The viewer marks a word where it was read: on a turned picture too (its
    crop is read turned upright, and its boxes are turned back)."""
    from photofind.testing.textimages import font

    img = Image.new("RGB", (640, 200), "white")
    ImageDraw.Draw(img).text((30, 70), "HARBOR", fill="black", font=font(44))
    ImageDraw.Draw(img).text((380, 70), "PEPPER", fill="black", font=font(44))
    reader = ocr.Reader(1)

    def boxes(picture: Image.Image) -> dict[str, tuple[float, ...]]:
        return {w.text: w.box for line in reader.read(np.asarray(picture))
                for w in line.words}

    upright = boxes(img)
    turned = boxes(img.rotate(turn, expand=True))
    assert set(upright) == set(turned) == {"HARBOR", "PEPPER"}
    for word, (x0, y0, x1, y1) in upright.items():
        # where the upright box goes when the picture turns (counter-clockwise)
        want = {90: (y0, 1 - x1, y1, 1 - x0), 180: (1 - x1, 1 - y1, 1 - x0, 1 - y0),
                270: (1 - y1, x0, 1 - y0, x1)}[turn]
        assert turned[word] == pytest.approx(want, abs=0.04), word


def test_the_models_come_from_the_named_folder_first(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """PHOTOFIND_OCR_MODELS wins over the ocr extra's package; a folder without all
    three models is passed over; with none anywhere, no engine is installed."""
    import importlib.util

    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("a_det_v4.onnx", "a_cls_v2.onnx"):
        (folder / name).write_bytes(b"x")
    monkeypatch.setenv(ocr.MODELS_ENV, str(folder))
    found_before = ocr.model_files()
    assert found_before is None or folder not in {p.parent for p in found_before.values()}
    (folder / "a_rec_v4.onnx").write_bytes(b"xy")
    found = ocr.model_files()
    assert found == {"det": folder / "a_det_v4.onnx", "cls": folder / "a_cls_v2.onnx",
                     "rec": folder / "a_rec_v4.onnx"}
    named = ocr.engine_id()
    (folder / "a_rec_v4.onnx").write_bytes(b"xyz")  # another recogniser: another engine
    assert ocr.engine_id() != named
    monkeypatch.delenv(ocr.MODELS_ENV)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert not ocr.installed()
    with pytest.raises(ocr.EngineMissing):
        ocr.engine_id()


@pytest.mark.skipif(not ocr.installed(), reason="needs the OCR models (the ocr extra)")
def test_a_long_strip_and_a_grey_picture_are_read_in_their_own_pixels() -> None:
    """A banner far wider than high (padded for the detector) and a greyscale
    picture: the words are read and their boxes lie where they were drawn."""
    from photofind.testing.textimages import font

    strip = Image.new("L", (1800, 60), 255)
    ImageDraw.Draw(strip).text((1300, 8), "LANTERN", fill=0, font=font(40))
    (line,) = ocr.Reader(1).read(np.asarray(strip))
    assert line.text == "LANTERN"
    x0, y0, x1, y1 = line.box
    assert 1280 / 1800 < x0 < x1 < 1.0 and 0 <= y0 < y1 <= 1.0


THIN = [(1, 1280), (1280, 1), (3, 4000), (2, 2000)]  # (height, width)


@pytest.mark.parametrize(("h", "w"), THIN)
def test_a_thin_picture_gets_a_bounded_detector_input(h: int, w: int) -> None:
    """A picture one pixel high or wide once became a 736 x 883200 detector
    input (7.8 GB of float32): the input stays within 4000 px on its long side."""
    from photofind.core.ppocr import DET_MAX_SIDE, detector_input

    size = detector_input((w, h))
    assert max(size) <= DET_MAX_SIDE and min(size) >= 32
    assert size[0] % 32 == 0 and size[1] % 32 == 0
    assert (size[0] > size[1]) == (w > h)  # the picture's own orientation
    assert detector_input((640, 480)) == (992, 736)  # an ordinary picture: as before


@pytest.mark.skipif(not ocr.installed(), reason="needs the OCR models (the ocr extra)")
def test_reading_thin_pictures_runs_the_detector_on_a_bounded_input() -> None:
    from photofind.core.ppocr import DET_MAX_SIDE, detector_input

    reader = ocr.Reader(1)
    pipeline = reader._pipeline
    seen: list[tuple[int, ...]] = []
    detector = pipeline.det

    def recording(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.shape)
        return detector(batch)

    pipeline.det = recording  # type: ignore[assignment]
    for h, w in THIN:
        assert reader.read(np.full((h, w, 3), 255, dtype=np.uint8)) == []
        (shape,) = seen[-1:]
        assert shape[2:] == detector_input((w, h))[::-1]
        assert max(shape) <= DET_MAX_SIDE


def test_the_reader_process_has_its_address_space_capped() -> None:
    """Like the decode workers: a picture that needs more memory fails alone."""
    import psutil

    from photofind.core import decodepool, reading

    if not ocr.installed():
        pytest.skip("needs the OCR models (the ocr extra)")
    with reading.ReaderProcess(1) as proc:
        proc._start()
        soft, hard = psutil.Process(proc._proc.pid).rlimit(psutil.RLIMIT_AS)
    assert soft == hard
    assert reading.READER_MIN_CAP <= soft <= max(reading.READER_MIN_CAP,
                                                 decodepool.memory_cap(0))


def drawn(word: str, mode: str = "RGB") -> Image.Image:
    from photofind.testing.textimages import font

    img = Image.new(mode, (400, 120), "white" if mode != "RGBA" else (0, 0, 0, 0))
    ImageDraw.Draw(img).text((20, 35), word, fill="black", font=font(40))
    return img


needs_models = pytest.mark.skipif(not ocr.installed(),
                                  reason="needs the OCR models (the ocr extra)")


@needs_models
def test_a_picture_without_pixels_has_no_lines() -> None:
    reader = ocr.Reader(1)
    assert reader.read(np.zeros((0, 50, 3), dtype=np.uint8)) == []
    assert reader.read(np.zeros((50, 0), dtype=np.uint8)) == []


@needs_models
def test_a_one_channel_array_is_read_as_grey() -> None:
    one_channel = np.asarray(drawn("HARBOR", "L"))[:, :, None]
    assert [line.text for line in ocr.Reader(1).read(one_channel)] == ["HARBOR"]


@needs_models
def test_text_on_a_transparent_background_is_read_on_white() -> None:
    rgba = np.asarray(drawn("PEPPER", "RGBA"))
    assert rgba[0, 0, 3] == 0 and (rgba[:, :, :3] == 0).all()  # black on transparent
    assert [line.text for line in ocr.Reader(1).read(rgba)] == ["PEPPER"]


class _NoMetadata:
    def __init__(self, character: str | None = None) -> None:
        self.character = character

    def metadata(self, key: str) -> str | None:
        return self.character


def test_a_character_list_is_split_at_newlines_only(tmp_path: Path) -> None:
    """Characters such as \\x85, \\x0c or \\u2028 are characters of the list, not
    line breaks (one class off shifts every character after it)."""
    from photofind.core.ppocr import characters

    listed = ["a", "\x85", "b", "\u2028", "\x0c", "c"]
    keys = tmp_path / "keys.txt"
    keys.write_bytes(("\ufeff" + "\r\n".join(listed) + "\r\n").encode("utf-8"))
    assert characters(_NoMetadata(), keys) == ["blank", *listed, " "]  # type: ignore[arg-type]
    from_model = _NoMetadata("\n".join(listed))
    assert characters(from_model, None) == ["blank", *listed, " "]  # type: ignore[arg-type]


def test_the_newest_models_of_a_folder_are_chosen(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder with PP-OCRv3 and v4 models reads with v4 (not the first by
    name); in rapidocr's package, the models its config.yaml names."""
    folder = tmp_path / "models"
    folder.mkdir()
    names = ["ch_PP-OCRv3_det_infer.onnx", "ch_PP-OCRv4_det_infer.onnx",
             "ch_ppocr_mobile_v2.0_cls_infer.onnx", "ch_PP-OCRv3_rec_infer.onnx",
             "ch_PP-OCRv4_rec_infer.onnx"]
    for name in names:
        (folder / name).write_bytes(b"")
    monkeypatch.setenv(ocr.MODELS_ENV, str(folder))
    found = ocr.model_files()
    assert found is not None
    assert {role: p.name for role, p in found.items()} == {
        "det": "ch_PP-OCRv4_det_infer.onnx", "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "rec": "ch_PP-OCRv4_rec_infer.onnx"}
    (tmp_path / "config.yaml").write_text(
        "Det:\n    model_path: models/ch_PP-OCRv3_det_infer.onnx\n"
        "Rec:\n    model_path: models/ch_PP-OCRv4_rec_infer.onnx\n")
    found = ocr.model_files()
    assert found is not None
    assert (found["det"].name, found["rec"].name) == ("ch_PP-OCRv3_det_infer.onnx",
                                                      "ch_PP-OCRv4_rec_infer.onnx")


@needs_models
@pytest.mark.parametrize("size", [30, 44])
def test_long_words_with_wide_letters_come_out_whole(size: int) -> None:
    """Wide letters (m, w) spread a word's characters: a line of them keeps its
    words whole (text:committee finds it). At 56 px and more the detector gives
    "committee" a line of its own, which ocr._words still splits at its m's."""
    from photofind.testing.textimages import font

    reader = ocr.Reader(1)
    for phrase in ("Mississippi committee", "minimum summit"):
        img = Image.new("RGB", (900, 120), "white")
        ImageDraw.Draw(img).text((20, 30), phrase, fill="black", font=font(size))
        words = [w.text for line in reader.read(np.asarray(img)) for w in line.words]
        assert words == phrase.split()
