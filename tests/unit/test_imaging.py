"""Decoding: the pixels match open_clip's preprocessing, every mode becomes
RGB, and a bad file becomes a readable reason instead of an exception."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photofind.core.imaging import (
    Decoded,
    Failed,
    Preprocess,
    decode_file,
    model_pixels,
    open_photo,
)
from photofind.core.model.preprocess import normalize
from tests.conftest import Cli

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def noise_image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


@pytest.mark.parametrize(("w", "h"), [(400, 300), (300, 401), (224, 224), (1000, 225),
                                      (50, 70)])
def test_pixels_equal_open_clips_eval_transform(w: int, h: int) -> None:
    import open_clip

    img = noise_image(w, h)
    reference = open_clip.image_transform(224, is_train=False, mean=MEAN, std=STD)(img).numpy()
    pre = Preprocess(224, MEAN, STD)
    ours = normalize(model_pixels(img, pre)[None], pre)[0]  # what the ONNX runtime feeds
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_large_jpeg_decodes_in_draft_mode_but_covers_the_model_and_thumbnail() -> None:
    buf = io.BytesIO()
    noise_image(4000, 3000).save(buf, "JPEG")
    opened = open_photo(io.BytesIO(buf.getvalue()), draft_size=256)
    assert (opened.width, opened.height) == (4000, 3000)  # the photo's real size
    assert 256 <= min(opened.image.size) < 3000  # decoded at a reduced DCT scale


@pytest.mark.parametrize("make", [
    lambda: Image.new("CMYK", (64, 48), (0, 255, 255, 0)),
    lambda: Image.fromarray(np.full((48, 64), 40000, np.uint16)),
    lambda: Image.new("LA", (64, 48), (90, 0)),
    lambda: Image.new("P", (64, 48), 0),
])
def test_every_mode_becomes_rgb(make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    img = make()
    path = tmp_path / "x.png" if img.mode != "CMYK" else tmp_path / "x.jpg"
    img.save(path)
    opened = open_photo(str(path), draft_size=None)
    assert opened.image.mode == "RGB"


def test_transparency_is_composited_over_white(tmp_path: Path) -> None:
    path = tmp_path / "clear.png"
    Image.new("RGBA", (32, 32), (255, 0, 0, 0)).save(path)
    assert open_photo(str(path), draft_size=None).image.getpixel((5, 5)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to display
    path = tmp_path / "sideways.jpg"
    noise_image(300, 400).save(path, exif=exif.tobytes())
    opened = open_photo(str(path), draft_size=None)
    assert opened.image.size == (400, 300)
    assert (opened.width, opened.height) == (400, 300)


def test_bad_files_give_reasons(tmp_path: Path) -> None:
    pre = Preprocess(224, MEAN, STD)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("this is not a picture")
    good = io.BytesIO()
    noise_image(640, 480).save(good, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 3])
    reasons = {name: decode_file(str(tmp_path / name), pre) for name in
               ("empty.jpg", "text.png", "cut.jpg", "missing.jpg")}
    assert reasons == {"empty.jpg": Failed("empty file"), "text.png": Failed("not an image"),
                       "cut.jpg": Failed("truncated"), "missing.jpg": Failed("file vanished")}


def test_a_png_named_jpg_is_still_a_photo(tmp_path: Path) -> None:
    path = tmp_path / "really-a-png.jpg"
    noise_image(320, 240).save(path, "PNG")
    result = decode_file(str(path), Preprocess(224, MEAN, STD))
    assert isinstance(result, Decoded)
    assert result.pixels.shape == (224, 224, 3)
    assert Image.open(io.BytesIO(result.thumbnail)).size == (256, 192)


HEAVY = ("numpy", "torch", "onnxruntime")
NOTE_HOOK = '''import os, sys


def note(path):
    with open(os.environ["PHOTOFIND_TEST_NOTES"], "a") as notes:
        notes.write(repr(sorted(m for m in {heavy!r} if m in sys.modules)) + "\\n")
'''


def noting_hook(folder: Path, heavy: tuple[str, ...] = HEAVY) -> dict[str, str]:
    """A decode hook module in ``folder`` that notes which of ``heavy`` a worker
    has imported before each picture, and the environment that installs it."""
    folder.mkdir(exist_ok=True)
    (folder / "notehook.py").write_text(NOTE_HOOK.format(heavy=heavy))
    return {"PHOTOFIND_DECODE_HOOK": "notehook:note",
            "PHOTOFIND_TEST_NOTES": str(folder / "notes"), "PYTHONPATH": str(folder)}


def test_a_decode_worker_starts_with_pillow_alone_and_hands_back_the_same_pixels(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers start on every index run (and for a dropped photo): without numpy
    each starts in half the time; what they hand back is what decoding here gives,
    a 16-bit greyscale picture (which needs numpy) included."""
    from photofind.core.decodepool import DecodePool

    for key, value in noting_hook(tmp_path / "hooks").items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(tmp_path / "hooks"))
    photo, grey = tmp_path / "photo.jpg", tmp_path / "grey.png"
    noise_image(640, 480).save(photo, quality=90)
    Image.fromarray((np.arange(300 * 200, dtype=np.uint16) % 60000).reshape(200, 300)
                    ).save(grey)
    pre = Preprocess(224, MEAN, STD)
    with DecodePool(pre, workers=1) as pool:
        results = dict(pool.run([str(photo), str(grey)], str))
    notes = (tmp_path / "hooks" / "notes").read_text().splitlines()
    assert notes[0] == "[]", notes  # before its first picture: neither numpy nor torch
    for path in (photo, grey):
        here = decode_file(str(path), pre)
        there = results[str(path)]
        assert isinstance(here, Decoded) and isinstance(there, Decoded)
        assert there.pixels.shape == (224, 224, 3)
        assert np.array_equal(there.pixels, here.pixels)


def test_the_photofind_command_starts_its_decode_workers_without_the_cli(
        cli: Cli, tmp_path: Path) -> None:
    """spawn runs the parent's main script again in each worker: for pip's
    ``photofind`` script that would import the whole CLI (the catalog, numpy)
    into every worker of every index run."""
    import subprocess
    import sys

    command = Path(sys.executable).with_name("photofind")
    assert command.is_file(), "the photofind command is installed with the package"
    (tmp_path / "Pictures").mkdir()
    noise_image(640, 480).save(tmp_path / "Pictures" / "photo.jpg")
    env = {**cli.env, **noting_hook(tmp_path / "hooks",
                                    (*HEAVY, "photofind.cli", "photofind.core.catalog"))}
    done = subprocess.run([str(command), "index", str(tmp_path / "Pictures"), "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "hooks" / "notes").read_text().splitlines() == ["[]"]
