"""A folder in Immich's multilingual layout (a text tower with its own,
non-CLIP tokenizer: XLM-RoBERTa's <s> </s> <pad>) loads as ``local-dir:`` on
ONNX Runtime and tokenizes with the folder's tokenizer.json and config.

The towers are tiny graphs built here whose output shows what they were fed:
the text tower averages one-hot rows of the token ids, so a vector names the
tokens (and the padding) the tokenizer produced.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from photofind.core.config import Settings
from photofind.core.model.loading import load_encoder

VOCAB = ["<s>", "<pad>", "</s>", "<unk>", "▁Ein", "▁Hund", "▁im", "▁Schnee", "▁a", "▁dog"]
CONTEXT = 6


def _save(graph: onnx.GraphProto, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _text_tower(path: Path) -> None:
    table = numpy_helper.from_array(np.eye(len(VOCAB), dtype=np.float32), "table")
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    _save(helper.make_graph(
        [helper.make_node("Gather", ["table", "text"], ["rows"]),
         helper.make_node("ReduceMean", ["rows", "axes"], ["embedding"], keepdims=0)],
        "text", [helper.make_tensor_value_info("text", TensorProto.INT64, ["batch", CONTEXT])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT,
                                       ["batch", len(VOCAB)])], [table, axes]), path)


def _image_tower(path: Path) -> None:
    weights = numpy_helper.from_array(np.eye(3, len(VOCAB), dtype=np.float32), "w")
    axes = numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes")
    _save(helper.make_graph(
        [helper.make_node("ReduceMean", ["image", "axes"], ["rgb"], keepdims=0),
         helper.make_node("MatMul", ["rgb", "w"], ["embedding"])],
        "image", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT,
                                       ["batch", len(VOCAB)])], [weights, axes]), path)


def _xlm_like_tokenizer(folder: Path) -> None:
    """A Unigram tokenizer with XLM-RoBERTa's special tokens and template."""
    tok = Tokenizer(models.Unigram([(piece, -1.0) for piece in VOCAB], unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()  # type: ignore[assignment]
    tok.post_processor = processors.TemplateProcessing(  # type: ignore[assignment]
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"pad_token": "<pad>", "model_max_length": 512,
         "tokenizer_class": "XLMRobertaTokenizer"}))
    (folder / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}))


def _folder(root: Path) -> Path:
    folder = root / "XLM-Roberta-Tiny"
    _text_tower(folder / "textual" / "model.onnx")
    _image_tower(folder / "visual" / "model.onnx")
    _xlm_like_tokenizer(folder / "textual")
    (folder / "visual" / "preprocess_cfg.json").write_text(json.dumps(
        {"size": [32, 32], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
         "interpolation": "bicubic", "resize_mode": "shortest"}))
    (folder / "config.json").write_text(json.dumps(
        {"embed_dim": len(VOCAB),
         "vision_cfg": {"image_size": 32, "layers": 1, "width": 8, "patch_size": 16},
         "text_cfg": {"hf_model_name": "xlm-roberta-base", "hf_tokenizer_name":
                      "xlm-roberta-base", "context_length": CONTEXT}}))
    return folder


def _expected(ids: list[int]) -> np.ndarray:
    counts = np.bincount(ids, minlength=len(VOCAB)).astype(np.float32)
    return counts / np.linalg.norm(counts)


def test_a_multilingual_folder_loads_as_local_dir_with_its_own_tokenizer(tmp_path: Path
                                                                         ) -> None:
    folder = _folder(tmp_path)
    encoder = load_encoder(Settings.resolve(str(tmp_path / "library"),
                                            f"local-dir:{folder}", "cpu", runtime="onnx"),
                           int8_text=False)
    assert encoder.runtime == "onnx" and encoder.preprocess.size == 32
    vecs = encoder.encode_texts(["Ein Hund im Schnee", "a dog", "a dog " * 10])
    assert vecs.shape == (3, len(VOCAB))
    # <s> Ein Hund im Schnee </s> (cased, as XLM-R is) fills the context; "a dog"
    # is padded with <pad> (id 1, from tokenizer_config.json); a long text is cut.
    assert np.allclose(vecs[0], _expected([0, 4, 5, 6, 7, 2]), atol=1e-6)
    assert np.allclose(vecs[1], _expected([0, 8, 9, 2, 1, 1]), atol=1e-6)
    assert np.allclose(vecs[2], _expected([0, 8, 9, 8, 9, 2]), atol=1e-6)
    pixels = np.full((1, 32, 32, 3), 255, dtype=np.uint8)
    pixels[..., 1:] = 0  # pure red
    image = encoder.encode_images(pixels)
    assert image.shape == (1, len(VOCAB)) and int(np.argmax(image[0])) == 0
