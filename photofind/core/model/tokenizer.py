"""A CLIP tokenizer without torch: ``tokenizer.json`` read by the `tokenizers` library.

open_clip's own tokenizer module imports torch, so the ONNX runtime tokenizes
with this instead. For CLIP's byte-level BPE it reproduces open_clip's
``SimpleTokenizer`` exactly: the same text cleaning (ftfy, HTML unescaping,
whitespace, lower case), start and end tokens, truncation that keeps the end
token, zero padding. Other tokenizers (XLM-Roberta, NLLB, SigLIP ...) follow
open_clip's ``HFTokenizer``: their own special tokens, truncation and padding.

``write_clip_tokenizer`` builds the same ``tokenizer.json`` (the one Hugging
Face ships for openai/clip-vit-base-patch32) from open_clip's vocabulary file,
read without importing open_clip; the exporter puts it in every ONNX folder.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
import json
import string
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

SOT, EOT = "<|startoftext|>", "<|endoftext|>"
SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _fix_text(text: str) -> str:
    if text.isascii() and text.isprintable() and "&" not in text:
        return text  # what ftfy returns for it; importing ftfy costs a cold query ~0.1 s
    try:
        import ftfy
    except ImportError:  # ftfy is a dependency; without it only mojibake differs
        return text
    fixed: str = ftfy.fix_text(text)
    return fixed


def clean(text: str, how: str) -> str:
    """open_clip's cleaning: ``lower`` (CLIP's), ``whitespace`` or ``canonicalize``."""
    text = html.unescape(html.unescape(_fix_text(text))).strip()
    if how == "canonicalize":
        text = text.replace("_", " ").translate(_PUNCTUATION).lower()
    text = " ".join(text.split())
    return text.lower() if how == "lower" else text


class TextTokenizer:
    """Token ids for a text tower, as open_clip would produce them (int64)."""

    def __init__(self, folder: Path, context_length: int, clean_how: str | None = None) -> None:
        from tokenizers import Tokenizer

        self.context_length = context_length
        self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        sot, eot = self._tok.token_to_id(SOT), self._tok.token_to_id(EOT)
        self.clip = sot is not None and eot is not None
        if sot is not None and eot is not None:
            self.sot, self.eot = sot, eot
            self._tok.no_truncation()
            self._tok.no_padding()
            self._tok.encode_special_tokens = True  # "<|endoftext|>" typed is text, as in open_clip
            self.clean_how = clean_how or "lower"
        else:
            self.clean_how = clean_how or "whitespace"
            pad_id = self._pad_id(folder)
            self._tok.enable_truncation(max_length=context_length)
            self._tok.enable_padding(length=context_length, pad_id=pad_id,
                                     pad_token=self._tok.id_to_token(pad_id) or "<pad>")

    def _pad_id(self, folder: Path) -> int:
        try:
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
            token = config.get("pad_token")
            token = token.get("content") if isinstance(token, dict) else token
            found = self._tok.token_to_id(str(token)) if token else None
        except (OSError, ValueError):
            found = None
        return int(found) if found is not None else 0

    def __call__(self, texts: list[str]) -> npt.NDArray[np.int64]:
        cleaned = [clean(t, self.clean_how) for t in texts]
        if not self.clip:
            encoded = self._tok.encode_batch(cleaned)
            return np.array([e.ids for e in encoded], dtype=np.int64).reshape(
                len(texts), self.context_length)
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, enc in enumerate(self._tok.encode_batch(cleaned, add_special_tokens=False)):
            ids = [self.sot, *enc.ids[:self.context_length - 2], self.eot]
            out[row, :len(ids)] = ids
        return out


def write_clip_tokenizer(folder: Path, context_length: int) -> None:
    """CLIP's BPE as ``tokenizer.json`` (plus the small configs Hugging Face
    writes beside it), from open_clip's vocabulary file."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab, merges = _open_clip_bpe()
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=EOT,
                               end_of_word_suffix="</w>", continuing_subword_prefix="",
                               fuse_unk=False))
    tok.normalizer = normalizers.Sequence([  # type: ignore[assignment]
        normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([  # type: ignore[assignment]
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()  # type: ignore[assignment]
    tok.post_processor = processors.RobertaProcessing(  # type: ignore[assignment]
        (EOT, vocab[EOT]), (SOT, vocab[SOT]), add_prefix_space=False,
        trim_offsets=False)
    tok.add_special_tokens([SOT, EOT])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    special: dict[str, Any] = {"bos_token": SOT, "eos_token": EOT, "unk_token": EOT,
                               "pad_token": EOT}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {**special, "model_max_length": context_length, "do_lower_case": True,
         "tokenizer_class": "CLIPTokenizer"}, indent=2))


def _open_clip_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """open_clip's vocabulary and merges, in its token order (ids match)."""
    found = importlib.util.find_spec("open_clip")  # locates the package, runs nothing
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError("open_clip is not installed")
    path = Path(next(iter(found.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(path) as fh:
        lines = fh.read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [(a, b) for a, b in (line.split() for line in lines)]
    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [SOT, EOT]
    return {t: i for i, t in enumerate(tokens)}, merges


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table, which CLIP's BPE uses."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, (chr(c) for c in chars), strict=True))
