"""The torch-free tokenizer gives open_clip's token ids, string for string."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import open_clip
import pytest

from photofind.core.model.tokenizer import TextTokenizer, write_clip_tokenizer

FIXED = ["", " ", "   \t\n ", "a dog", "Two DOGS in the SNOW!!", "it's don't we're I'll you've",
         "café naïve résumé crème brûlée", "東京タワーの夜景", "서울의 밤", "Ελληνικά γράμματα",
         "русский текст", "عربي", "हिन्दी", "ไทย", "🐶🐱", "family 👨‍👩‍👧 and 👍🏽", "🇫🇷 flag",
         "“curly quotes” and ‘single’", "ﬁne ligature ﬂour", "ＦＵＬＬ ｗｉｄｔｈ",
         "&amp; &lt;b&gt; &#39;",
         "mojibake â€™ here", "İstanbul", "straße ß", "x\u200by zero width", "a\u00a0b nbsp",
         "\u3000ideographic space", "\x00\x1f control", "123 4567 3.14159 1,000,000",
         "!!!???...---", "#hashtag @user http://example.com/a?b=c", "<|endoftext|> typed in",
         "a" * 300, "word " * 100, "supercalifragilisticexpialidocious", "x" + "́" * 20,
         "CamelCaseWordsAndNUMBERS2024", "tab\tseparated\tvalues", "line\nbreaks\r\nhere"]
ALPHABET = ("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'\"()-_"
            "éèêàçñöüß 中文日本語한국어 αβγ абв 😀🎉🏔️🌊 \t\n")


def varied_strings(n: int) -> list[str]:
    rng = random.Random(42)
    out = list(FIXED)
    while len(out) < n:
        out.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 120))))
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tokenizer")
    write_clip_tokenizer(out, 77)
    return out


@pytest.mark.parametrize("context", [77, 16])
def test_ids_equal_open_clips_on_200_varied_strings(folder: Path, context: int) -> None:
    strings = varied_strings(200)
    ours = TextTokenizer(folder, context)(strings)
    theirs = open_clip.tokenize(strings, context_length=context).numpy()
    assert ours.shape == theirs.shape == (200, context)
    differ = [s for s, a, b in zip(strings, ours, theirs, strict=True) if not np.array_equal(a, b)]
    assert not differ
    assert (ours[:, -1][ours[:, -1] != 0] == 49407).all()  # over-long ones keep their end token


def test_a_tokenizer_without_clips_special_tokens_pads_and_truncates_itself(tmp_path: Path
                                                                            ) -> None:
    """A WordPiece-style tokenizer.json (as multilingual text towers ship) gets
    its own special tokens, truncation and the pad id its config names."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "world": 5}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # type: ignore[assignment]
    tok.post_processor = processors.TemplateProcessing(  # type: ignore[assignment]
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"pad_token": "[PAD]"}))
    ids = TextTokenizer(tmp_path, 6)(["hello  world", "hello " * 10, ""])
    assert ids.tolist() == [[2, 4, 5, 3, 0, 0], [2, 4, 4, 4, 4, 3], [2, 3, 0, 0, 0, 0]]
