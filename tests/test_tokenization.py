"""The shipped CLIP tokenizer against an independent re-implementation of OpenAI's BPE."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import unicodedata
from importlib import resources
from pathlib import Path

import pytest
import regex

from unitrim_hf.tokenization import (
    CLIP_VOCAB_SIZE,
    build_clip_vocabulary,
    load_clip_tokenizer,
    read_clip_merges,
)

SHIPPED_MERGES = resources.files("unitrim_hf") / "assets" / "bpe_simple_vocab_16e6.txt.gz"

SENTENCES = [
    "a dog",
    "a little girl does gymnastics",
    "a person is connecting something to system",
    "A Cartoon Animals Runs Through An ICE CAVE in a video game.",
    "two young men are playing table tennis",
    "fireworks are exploding in the night sky!!!",
    "Don't stop: it's what they'll do, we've seen, I'm sure she'd say you're right.",
    "THE MAN'S HAT ISN'T RED",
    "1234567 apples and 3.14159 pies cost $42.50 (or 100%)",
    "the year 2024 vs. 1999",
    "e-mail me at someone@example.com, or visit https://example.org/path?q=1&x=2",
    "(parentheses) [brackets] {braces} <angle> \"quotes\" 'single'",
    "wow... really?! yes -- no ; maybe : ok",
    "naïve café in Zürich, São Paulo and Kraków",
    "cafe\u0301 with a decomposed accent",
    "日本語のテキストと中文",
    "Ελληνικά και русский текст",
    "emoji time 🐶🎉👍🏽 done",
    "tabs\tand\nnewlines   and    spaces",
    "   leading and trailing whitespace   ",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "a     b",
    "x",
    "",
    "!!!",
    "hyphen-ated and under_scored and slash/separated words",
    "the curly apostrophe ’s and ‘quotes’ “here”",
    "mixed123letters456 and 7up",
    "a man sings and dances while a woman talks to a crowd on the beach",
    "<|startoftext|> special tokens written in text <|endoftext|>",
    "ÀÉÎÕÜ ñ ç ß ø å",
]

SPLIT_PATTERN = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)


class ReferenceClipBpe:
    """OpenAI's SimpleTokenizer algorithm, written out plainly, without ftfy and html.unescape."""

    def __init__(self, merges_gz: Path):
        with gzip.open(merges_gz, "rt", encoding="utf-8") as handle:
            all_lines = handle.read().split("\n")
        merge_lines = all_lines[1 : 49152 - 256 - 2 + 1]
        pairs = [tuple(line.split()) for line in merge_lines]
        self.byte_to_char = self._byte_characters()
        chars = list(self.byte_to_char.values())
        tokens = chars + [c + "</w>" for c in chars] + ["".join(p) for p in pairs]
        tokens += ["<|startoftext|>", "<|endoftext|>"]
        self.token_to_id = {token: index for index, token in enumerate(tokens)}
        self.pair_rank = {pair: rank for rank, pair in enumerate(pairs)}

    @staticmethod
    def _byte_characters() -> dict[int, str]:
        kept = (
            list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
        )
        result = {}
        extra = 0
        order = kept + [b for b in range(256) if b not in kept]
        for byte in order:
            if byte in kept:
                result[byte] = chr(byte)
            else:
                result[byte] = chr(256 + extra)
                extra += 1
        return result

    def _bpe(self, word: str) -> list[str]:
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        while len(symbols) > 1:
            ranked = [
                (self.pair_rank.get((a, b), float("inf")), i)
                for i, (a, b) in enumerate(zip(symbols, symbols[1:]))
            ]
            best_rank, best_index = min(ranked)
            if best_rank == float("inf"):
                break
            # Merge every left-to-right occurrence of the best-ranked pair.
            first, second = symbols[best_index], symbols[best_index + 1]
            merged = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return symbols

    def encode(self, text: str) -> list[int]:
        text = unicodedata.normalize("NFC", text)
        text = regex.sub(r"\s+", " ", text).strip().lower()
        ids = [self.token_to_id["<|startoftext|>"]]
        for piece in SPLIT_PATTERN.findall(text):
            if piece in ("<|startoftext|>", "<|endoftext|>"):
                ids.append(self.token_to_id[piece])
                continue
            as_chars = "".join(self.byte_to_char[b] for b in piece.encode("utf-8"))
            ids.extend(self.token_to_id[symbol] for symbol in self._bpe(as_chars))
        ids.append(self.token_to_id["<|endoftext|>"])
        return ids


@pytest.fixture(scope="module")
def reference() -> ReferenceClipBpe:
    with resources.as_file(SHIPPED_MERGES) as path:
        return ReferenceClipBpe(Path(path))


@pytest.fixture(scope="module")
def tokenizer():
    return load_clip_tokenizer(model_max_length=None)


def test_known_ids_and_vocabulary_size(tokenizer):
    assert tokenizer("a dog").input_ids == [49406, 320, 1929, 49407]
    assert tokenizer.convert_tokens_to_ids("<|startoftext|>") == 49406
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") == 49407
    assert tokenizer.bos_token_id == 49406 and tokenizer.eos_token_id == 49407
    assert len(tokenizer) == CLIP_VOCAB_SIZE == 49408
    assert tokenizer.convert_ids_to_tokens([0, 256, 320, 1929]) == ["!", "!</w>", "a</w>", "dog</w>"]


def test_vocabulary_matches_reference_order(reference):
    vocabulary = build_clip_vocabulary(read_clip_merges())
    assert vocabulary == reference.token_to_id


@pytest.mark.parametrize("sentence", SENTENCES)
def test_ids_equal_reference_bpe(tokenizer, reference, sentence):
    assert tokenizer(sentence).input_ids == reference.encode(sentence)


def test_batch_padding_uses_attention_mask(tokenizer):
    batch = tokenizer(["a dog", "a little girl does gymnastics"], padding="max_length", max_length=12)
    assert batch.attention_mask[0] == [1, 1, 1, 1] + [0] * 8
    assert batch.input_ids[0][4:] == [tokenizer.pad_token_id] * 8
    assert tokenizer.pad_token == "<|endoftext|>"


def test_html_entities_are_not_unescaped(tokenizer):
    # OpenAI's tokenizer would turn "&amp;" into "&"; transformers' CLIP does not (documented).
    assert tokenizer("&amp;").input_ids != tokenizer("&").input_ids


@pytest.mark.parametrize("max_length", [32, 64])
def test_truncation_keeps_end_of_text(max_length):
    tokenizer = load_clip_tokenizer(model_max_length=max_length)
    long_caption = " ".join(["elephant", "walks", "slowly"] * 40)
    encoded = tokenizer(long_caption, truncation=True, padding="max_length")
    assert len(encoded.input_ids) == max_length
    assert encoded.input_ids[0] == 49406
    assert encoded.input_ids[-1] == 49407
    assert sum(encoded.attention_mask) == max_length
    short = tokenizer("a dog", truncation=True, padding="max_length")
    assert short.input_ids[:4] == [49406, 320, 1929, 49407] and sum(short.attention_mask) == 4


def test_default_max_length_is_32():
    assert load_clip_tokenizer().model_max_length == 32


def test_save_and_load_round_trip(tmp_path):
    tokenizer = load_clip_tokenizer(model_max_length=40)
    tokenizer.save_pretrained(tmp_path / "saved")
    reloaded = load_clip_tokenizer(tmp_path / "saved", model_max_length=None)
    assert reloaded.model_max_length == 40
    for sentence in SENTENCES:
        assert reloaded(sentence).input_ids == tokenizer(sentence).input_ids
    batch_kwargs = dict(padding="max_length", truncation=True, return_tensors="pt")
    original = tokenizer(SENTENCES, **batch_kwargs)
    again = reloaded(SENTENCES, **batch_kwargs)
    assert (original.input_ids == again.input_ids).all()
    assert (original.attention_mask == again.attention_mask).all()


def test_loads_bare_vocab_and_merges_folder(tmp_path, reference):
    merges = read_clip_merges()
    (tmp_path / "vocab.json").write_text(json.dumps(build_clip_vocabulary(merges)), encoding="utf-8")
    merges_text = "#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n"
    (tmp_path / "merges.txt").write_text(merges_text, encoding="utf-8")
    tokenizer = load_clip_tokenizer(tmp_path)
    assert tokenizer.model_max_length == 32
    for sentence in SENTENCES[:10]:
        assert tokenizer(sentence).input_ids == reference.encode(sentence)


def test_missing_path_gives_clear_error(tmp_path):
    missing = tmp_path / "no_such_tokenizer"
    with pytest.raises(FileNotFoundError, match="no_such_tokenizer"):
        load_clip_tokenizer(missing)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_clip_tokenizer("./definitely/not/here")


def test_folder_without_tokenizer_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        load_clip_tokenizer(tmp_path)
    with pytest.raises(FileNotFoundError, match="got a file"):
        load_clip_tokenizer(tmp_path / "config.json")


def test_hub_id_from_cache_offline_and_clear_error_when_missing(tmp_path):
    # Hub settings are read at import time, so this runs in a fresh interpreter.
    snapshot = tmp_path / "hub" / "models--some-org--clip-tok" / "snapshots" / "0123abcd"
    load_clip_tokenizer(model_max_length=77).save_pretrained(snapshot)
    # transformers' AutoTokenizer needs the repository's config.json to resolve a Hub id offline.
    (snapshot / "config.json").write_text(json.dumps({"model_type": "clip"}))
    refs = snapshot.parent.parent / "refs"
    refs.mkdir()
    (refs / "main").write_text("0123abcd")
    script = textwrap.dedent(
        """
        from unitrim_hf.tokenization import load_clip_tokenizer
        tokenizer = load_clip_tokenizer("some-org/clip-tok")
        assert tokenizer("a dog").input_ids == [49406, 320, 1929, 49407]
        assert tokenizer.model_max_length == 32
        try:
            load_clip_tokenizer("some-org/not-cached")
        except OSError as error:
            assert "some-org/not-cached" in str(error), error
            print("CLEAR-ERROR")
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hub"))
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "CLEAR-ERROR" in result.stdout
