"""The ONNX Runtime runtime: CLIP from an ONNX folder on the CPU, without torch.

With the OCR pipeline (core/ppocr.py), one of the only two modules that
import onnxruntime. Each tower's session is made on its
first use, so a process that only answers text queries never loads the image
tower. Folders exported by photofind take a dynamic batch and, for CLIP's
causal text tower, a dynamic sequence length: a query runs only up to its
end-of-text token (tokens after it cannot change the result). Folders from
Immich's exporter have both fixed (batch 1, full context); they work too, a
row at a time. Text weights are int8 on the CPU by default (dynamic
quantisation, made once into the user cache); the image tower stays fp32
unless int8 is asked for, and then its vectors live under their own model id.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from platformdirs import user_cache_dir

from photofind.core.errors import PhotofindError
from photofind.core.model.encoder import Encoder
from photofind.core.model.preprocess import normalize, unit_rows
from photofind.core.model.runtime import cpu_threads, int8_text_default
from photofind.core.model.sources import hash_files, onnx_preprocess
from photofind.core.model.tokenizer import TextTokenizer

log = logging.getLogger(__name__)

DEFAULT_LOGIT_SCALE = 100.0  # what trained CLIPs reach (open_clip clamps there)
# Photos per run: a batch of 16 runs as two of 8, whose activations stay in
# the CPU's caches (the image tower 2-3% faster, 90 MB lighter while indexing).
RUN_ROWS = 8
# What the int8 copies quantise: every matrix product, the fused attention's
# projection among them (fusion.py; it becomes QAttention). The quantiser carries
# only some of an Attention node's inputs and attributes over to QAttention, so a
# graph with any other Attention (an attention bias, a mask value: other tools
# write them) keeps its attention in fp32.
INT8_OPS = ["MatMul", "Gemm", "Attention"]
_QATTENTION_KEEPS = {"num_heads", "scale", "unidirectional"}


class OnnxEncoder(Encoder):
    """An ONNX folder (see sources.py for its layout) on ONNX Runtime."""

    runtime = "onnx"

    def __init__(self, folder: Path, model_id: str, device: str = "cpu",
                 int8_text: bool | None = None, int8_image: bool = False) -> None:
        super().__init__()
        if device not in ("auto", "cpu"):
            raise PhotofindError(f"photofind runs ONNX Runtime on the CPU only; for {device}"
                                 " use --runtime torch.")
        self.folder = folder
        self.model_id = model_id
        self.device = "cpu"
        self.int8_text = int8_text_default(self.device) if int8_text is None else int8_text
        self.int8_image = int8_image
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            self.preprocess = onnx_preprocess(folder)
        except (OSError, ValueError) as exc:
            raise PhotofindError(f"The ONNX model folder {folder} cannot be read ({exc}).") \
                from exc
        text_cfg = config.get("text_cfg") or {}
        self.context_length = int(text_cfg.get("context_length") or 77)
        self._clean = (text_cfg.get("tokenizer_kwargs") or {}).get("clean")
        self.dim = int(config.get("embed_dim") or 0)
        extra = config.get("photofind") or {}
        self._logit_scale = float(extra.get("logit_scale") or DEFAULT_LOGIT_SCALE)
        # The exporter says when the text tower may stop at the end token.
        self._short_text = bool(extra.get("text_stops_at_eot"))
        self._sessions: dict[str, Any] = {}
        self._tokenizer: TextTokenizer | None = None
        self._lock = threading.Lock()

    @property
    def logit_scale(self) -> float:
        return self._logit_scale

    def prepare_images(self) -> None:
        self._session("visual")

    def encode_images(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        session = self._session("visual")
        meta = session.get_inputs()[0]
        x: npt.NDArray[Any] = np.ascontiguousarray(pixels, dtype=np.uint8) \
            if meta.type == "tensor(uint8)" else normalize(pixels, self.preprocess)
        return unit_rows(_run(session, meta, x, RUN_ROWS))

    def encode_texts(self, texts: list[str]) -> npt.NDArray[np.float32]:
        session = self._session("textual")
        meta = session.get_inputs()[0]
        tokens = self._tokens(texts)
        length = meta.shape[1] if len(meta.shape) > 1 else None
        if isinstance(length, int):  # a fixed context: pad or cut to it
            fixed = np.zeros((len(texts), length), dtype=np.int64)
            fixed[:, :min(length, tokens.shape[1])] = tokens[:, :length]
            tokens = fixed
        elif self._short_text:  # causal, pooled at the end token: stop there
            tokens = tokens[:, :int(tokens.argmax(axis=1).max()) + 1]
        dtype = np.int32 if meta.type == "tensor(int32)" else np.int64
        return unit_rows(_run(session, meta, tokens.astype(dtype)))

    def _tokens(self, texts: list[str]) -> npt.NDArray[np.int64]:
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = TextTokenizer(self.folder / "textual", self.context_length,
                                                self._clean)
        return self._tokenizer(texts)

    def _session(self, tower: str) -> Any:
        with self._lock:
            session = self._sessions.get(tower)
            if session is None:
                path = self.folder / tower / "model.onnx"
                if (self.int8_text if tower == "textual" else self.int8_image):
                    path = int8_copy(path)
                session = self._sessions[tower] = new_session(path)
                if not self.dim:
                    self.dim = int(session.get_outputs()[0].shape[-1])
            return session


def _run(session: Any, meta: Any, x: npt.NDArray[Any], rows: int | None = None
         ) -> npt.NDArray[np.float32]:
    """One run (of at most ``rows`` rows), or a run per row for a graph fixed at batch 1."""
    if not len(x):
        return np.zeros((0, int(session.get_outputs()[0].shape[-1])), np.float32)
    if meta.shape and meta.shape[0] == 1 and len(x) > 1:
        return np.concatenate([_run(session, meta, x[i:i + 1]) for i in range(len(x))])
    if rows and len(x) > rows:
        return np.concatenate([_run(session, meta, x[i:i + rows])
                               for i in range(0, len(x), rows)])
    out = session.run(None, {meta.name: x})[0]
    return np.asarray(out, dtype=np.float32).reshape(len(x), -1)


def new_session(path: Path) -> Any:
    """An ONNX Runtime session on the CPU, one thread per physical core."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # its warnings about unused initialisers are not ours
    # Idle pool threads sleep instead of spinning: the decode workers and the
    # window's thread need those cores between batches.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for a broken file
        raise PhotofindError(f"ONNX Runtime cannot load {path} ({exc}).") from exc


def int8_copy(path: Path) -> Path:
    """``path`` with int8 weights for its matrix products (onnxruntime's dynamic
    quantisation), made once into the user cache, keyed by the tower's files.

    Its weights are kept beside the graph as external data (``model.onnx.data``),
    which ONNX Runtime maps instead of reading: the text tower's token
    embedding table (a quarter of the ViT-B-32 text tower) then costs memory
    only for the rows a query touches (a cold search's text session: +60 MB
    instead of +207 MB, measured here).

    The quantiser reads a copy of the tower's folder: it writes beside the graph
    it reads (a folder installed for every user is read-only), and the onnx
    package refuses external weights through a symbolic link (each file of a
    Hugging Face snapshot is one) or a file with hard links (backup tools
    make them)."""
    import onnxruntime as ort

    h = hashlib.sha256(f"{path.name}|{ort.__version__}|external|".encode())
    hash_files(h, path.parent)
    cache = Path(user_cache_dir("photofind", False)) / "onnx-int8"
    target = cache / f"{path.parent.name}-{h.hexdigest()[:20]}" / "model.onnx"
    if target.is_file():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    cache.mkdir(parents=True, exist_ok=True)
    _sweep(cache)
    work = Path(tempfile.mkdtemp(prefix=f".{target.parent.name}-", dir=cache))
    source, made = work / "source", work / "int8"
    try:
        log.info("making int8 weights for %s", path)
        logging.disable(logging.WARNING)  # its advice on pre-processing, via the root logger
        shutil.copytree(path.parent, source)  # links followed: plain files
        made.mkdir()
        quantize_dynamic(str(source / path.name), str(made / target.name),
                         weight_type=QuantType.QInt8,
                         op_types_to_quantize=_int8_ops(source / path.name),
                         use_external_data_format=True)
        with contextlib.suppress(OSError):  # another process made it meanwhile
            os.replace(made, target.parent)
    except Exception as exc:  # a full disk, a broken graph: onnx raises its own types
        fp32 = "PHOTOFIND_TEXT_INT8=0 runs the text tower in fp32" \
            if path.parent.name == "textual" else "the image tower runs in fp32 without" \
            " PHOTOFIND_IMAGE_INT8=1"
        raise PhotofindError(f"Could not make int8 weights for {path} ({exc}); {fp32}.") \
            from exc
    finally:
        logging.disable(logging.NOTSET)
        shutil.rmtree(work, ignore_errors=True)
    return target


def _int8_ops(graph: Path) -> list[str]:
    """INT8_OPS, less Attention where one of the graph's is not fusion.py's form."""
    import onnx

    plain = all(len([v for v in node.input if v]) <= 3
                and {a.name for a in node.attribute} <= _QATTENTION_KEEPS
                for node in onnx.load(str(graph), load_external_data=False).graph.node
                if node.op_type == "Attention")
    return INT8_OPS if plain else [op for op in INT8_OPS if op != "Attention"]


def _sweep(cache: Path, older_than: float = 86_400) -> None:
    """Remove the work folders of int8 copies that a killed process left."""
    for folder in cache.glob(".*"):
        with contextlib.suppress(OSError):
            if folder.is_dir() and time.time() - folder.stat().st_mtime > older_than:
                shutil.rmtree(folder, ignore_errors=True)
