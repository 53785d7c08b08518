"""Fixtures of the packaging tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.fakehub import FakeHub
from tests.packaging.test_firstrun import IMMICH_REPO


@pytest.fixture
def hub(toy_onnx: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """The toy ONNX model published as Immich's repo on a slow local hub, and an empty
    Hugging Face cache."""
    from huggingface_hub import constants

    with FakeHub(IMMICH_REPO, Path(toy_onnx.removeprefix("local-dir:")),
                 bytes_per_s=6_000_000) as served:
        monkeypatch.setenv("HF_ENDPOINT", served.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
        yield served
