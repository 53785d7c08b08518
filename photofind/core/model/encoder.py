"""The one interface in front of both runtimes: what the indexer, search and GUI use.

An ``Encoder`` turns model-size uint8 pixels (from the decode path) and query
texts into unit vectors. ``model_id`` names the vector space: vectors of one
model id are interchangeable whichever runtime made them, so switching runtime
never re-embeds a library. Repeated queries come from a small LRU cache.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from photofind.core.model.preprocess import Preprocess

TEXT_CACHE_SIZE = 256  # recent queries: retyping or paging costs no encoding

RUNTIME_NAMES = {"onnx": "ONNX Runtime", "torch": "torch"}
DEVICE_NAMES = {"cpu": "CPU", "cuda": "CUDA", "mps": "MPS"}


def describe(runtime: str, device: str) -> str:
    """"ONNX Runtime on CPU", "torch on CUDA"."""
    return f"{RUNTIME_NAMES.get(runtime, runtime)} on {DEVICE_NAMES.get(device, device)}"


class Encoder(ABC):
    """A loaded CLIP model on one runtime and device."""

    model_id: str  # the vector space (the library stores vectors under it)
    dim: int
    runtime: str  # "onnx" | "torch"
    device: str  # "cpu" | "cuda" | "mps"
    preprocess: Preprocess  # the input geometry the decode path produces

    def __init__(self) -> None:
        self._text_cache: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._text_lock = threading.Lock()

    @property
    @abstractmethod
    def logit_scale(self) -> float:
        """CLIP's learned temperature, exp() applied (about 100 for trained CLIP)."""

    @property
    def batch_size(self) -> int:
        """Pictures per ``encode_images`` call that keep the device busy."""
        return 64 if self.device == "cuda" else 16

    @property
    def description(self) -> str:
        return describe(self.runtime, self.device)

    @abstractmethod
    def prepare_images(self) -> None:
        """Load the image tower now (a tower a runtime loads on first use), so
        that the first ``encode_images`` does not wait for it."""

    @abstractmethod
    def encode_images(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """(N, S, S, 3) uint8 from imaging.model_pixels -> (N, dim) unit rows."""

    @abstractmethod
    def encode_texts(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Query texts -> (N, dim) unit rows."""

    def text_vector(self, text: str) -> npt.NDArray[np.float32]:
        """One query's unit vector, from a small LRU cache when it was asked before."""
        with self._text_lock:
            cached = self._text_cache.get(text)
            if cached is not None:
                self._text_cache.move_to_end(text)
                return cached
        vector: npt.NDArray[np.float32] = self.encode_texts([text])[0]
        vector.setflags(write=False)  # shared by every caller
        with self._text_lock:
            self._text_cache[text] = vector
            while len(self._text_cache) > TEXT_CACHE_SIZE:
                self._text_cache.popitem(last=False)
        return vector
