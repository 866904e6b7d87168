"""CLIP's byte-level BPE tokenizer, available offline.

The package ships OpenAI's merges file `assets/bpe_simple_vocab_16e6.txt.gz`
unchanged (MIT, see `assets/LICENSE-clip-vocab.txt`). `load_clip_tokenizer`
builds the 49,408-token vocabulary from it in memory, in CLIP's order:

* ids 0-255: the 256 byte-level characters (GPT-2's printable stand-ins for bytes),
* ids 256-511: the same characters with the end-of-word marker `</w>`,
* ids 512-49,405: one token per merge, for the first 48,894 merges of the file,
* 49,406 `<|startoftext|>` and 49,407 `<|endoftext|>`.

The result is a `transformers.CLIPTokenizer` (in transformers 5 the only CLIP
tokenizer, backed by `tokenizers`; `CLIPTokenizerFast` is an alias), whose
ids equal those of OpenAI's tokenizer and of `openai/clip-vit-base-patch32`.

Differences from OpenAI's `SimpleTokenizer`, both inherited from transformers:
OpenAI's tokenizer runs `ftfy.fix_text` and `html.unescape` before tokenizing;
transformers applies Unicode NFC, whitespace collapsing and lower-casing only. Text
that is already clean Unicode (ordinary captions) gets identical ids; mojibake or
HTML entities such as `&amp;` are tokenized as written.

Padding: transformers' CLIP pads with `<|endoftext|>` (49,407); CLIP4Clip pads
with id 0. UniTriM reads padding only from `attention_mask` and CLIP's text model
pools the *first* `<|endoftext|>`, which is the real one, so the pad id does not
change any feature. We keep transformers' choice so that saved tokenizers stay
interchangeable with CLIP checkpoints.
"""

from __future__ import annotations

import functools
import gzip
import os
from importlib import resources
from pathlib import Path

import transformers
from transformers import AutoTokenizer, CLIPTokenizer

CLIP_MERGES_ASSET = "bpe_simple_vocab_16e6.txt.gz"
START_OF_TEXT = "<|startoftext|>"
END_OF_TEXT = "<|endoftext|>"
END_OF_WORD = "</w>"
CLIP_VOCAB_SIZE = 49408
# CLIP's vocabulary keeps this many merges: vocabulary size minus 2 * 256 byte tokens
# minus the two special tokens.
CLIP_NUM_MERGES = CLIP_VOCAB_SIZE - 2 * 256 - 2

# Files that make a folder a loadable tokenizer, either of the two sets.
_TOKENIZER_JSON = "tokenizer.json"
_VOCAB_AND_MERGES = ("vocab.json", "merges.txt")


def bytes_to_unicode_characters() -> dict[int, str]:
    """Map each byte value 0-255 to the printable character CLIP's BPE uses for it.

    Bytes that are printable Latin-1 characters stand for themselves; the 68 others
    (control characters, space, ...) get the characters 256, 257, ... in byte order.
    The dict's insertion order is the order of CLIP's first 256 vocabulary ids.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("\N{INVERTED EXCLAMATION MARK}"), ord("\N{NOT SIGN}") + 1),
        *range(ord("\N{REGISTERED SIGN}"), ord("\N{LATIN SMALL LETTER Y WITH DIAERESIS}") + 1),
    ]
    mapping = {byte: chr(byte) for byte in printable}
    next_stand_in = 256
    for byte in range(256):
        if byte not in mapping:
            mapping[byte] = chr(next_stand_in)
            next_stand_in += 1
    return mapping


def read_clip_merges(path: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """Read the BPE merges CLIP uses from OpenAI's gzipped merges file.

    Args:
        path: a `bpe_simple_vocab_16e6.txt.gz`-format file; `None` for the shipped one.

    Returns:
        `CLIP_NUM_MERGES` (48,894) pairs `(left, right)` in rank order.
    """
    if path is None:
        with resources.as_file(resources.files("unitrim_hf") / "assets" / CLIP_MERGES_ASSET) as asset:
            return _read_merges_file(Path(asset))
    return _read_merges_file(Path(path))


def _read_merges_file(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"CLIP merges file not found: {path}")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    # Line 0 is the "#version" header; CLIP uses only the first CLIP_NUM_MERGES merges.
    merge_lines = lines[1 : 1 + CLIP_NUM_MERGES]
    if len(merge_lines) != CLIP_NUM_MERGES:
        raise ValueError(f"{path}: expected at least {CLIP_NUM_MERGES} merge lines, found {len(merge_lines)}")
    merges = []
    for line_number, line in enumerate(merge_lines, start=2):
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}, line {line_number}: a merge must be two symbols, got {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


def build_clip_vocabulary(merges: list[tuple[str, str]]) -> dict[str, int]:
    """CLIP's token-to-id vocabulary for the given merges (see the module docstring for the order)."""
    byte_characters = list(bytes_to_unicode_characters().values())
    tokens = byte_characters + [character + END_OF_WORD for character in byte_characters]
    tokens += [left + right for left, right in merges]
    tokens += [START_OF_TEXT, END_OF_TEXT]
    vocabulary = {token: token_id for token_id, token in enumerate(tokens)}
    if len(vocabulary) != len(tokens):
        raise ValueError("the merges produce duplicate tokens; this is not CLIP's merges file")
    return vocabulary


@functools.lru_cache(maxsize=1)
def _shipped_vocabulary_and_merges() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    merges = read_clip_merges()
    return build_clip_vocabulary(merges), tuple(merges)


def shipped_clip_tokenizer(model_max_length: int | None = 32) -> CLIPTokenizer:
    """A CLIP tokenizer built from the package's vocabulary, with no file or network access beyond it."""
    vocabulary, merges = _shipped_vocabulary_and_merges()
    tokenizer = CLIPTokenizer(vocab=dict(vocabulary), merges=list(merges))
    if model_max_length is not None:
        tokenizer.model_max_length = model_max_length
    return tokenizer


def load_clip_tokenizer(
    name_or_path: str | os.PathLike | None = None,
    model_max_length: int | None = 32,
) -> transformers.PreTrainedTokenizerBase:
    """Load CLIP's tokenizer: shipped, from a local folder, or from the Hub cache.

    Args:
        name_or_path: `None` for the vocabulary shipped with this package (offline);
            a folder holding `tokenizer.json` or `vocab.json` + `merges.txt`
            (a saved CLIP, UniTriM or tokenizer folder); or a Hub model id, which loads
            through `AutoTokenizer.from_pretrained` and works offline only if it is in
            the Hub cache (transformers then also needs the repository's `config.json`).
        model_max_length: maximum sequence length in tokens, special tokens included
            (32 for captions, 64 for DiDeMo paragraphs); with `truncation=True` the
            last kept token is `<|endoftext|>`. `None` keeps the loaded tokenizer's
            own value (77 for CLIP's).

    Raises:
        FileNotFoundError: a local path that does not exist, or a folder without tokenizer files.
        OSError: a Hub id that is neither cached nor downloadable.
    """
    if name_or_path is None:
        return shipped_clip_tokenizer(model_max_length)

    path = Path(name_or_path).expanduser()
    if path.exists():
        tokenizer = _load_local_tokenizer(path)
    elif _looks_like_local_path(str(name_or_path)):
        raise FileNotFoundError(f"tokenizer folder does not exist: {path}")
    else:
        tokenizer = _load_hub_tokenizer(str(name_or_path))
    if model_max_length is not None:
        tokenizer.model_max_length = model_max_length
    return tokenizer


def _load_local_tokenizer(folder: Path) -> transformers.PreTrainedTokenizerBase:
    if not folder.is_dir():
        raise FileNotFoundError(f"expected a tokenizer folder, got a file: {folder}")
    has_tokenizer_json = (folder / _TOKENIZER_JSON).is_file()
    has_vocab_and_merges = all((folder / name).is_file() for name in _VOCAB_AND_MERGES)
    if not (has_tokenizer_json or has_vocab_and_merges):
        raise FileNotFoundError(
            f"no tokenizer in {folder}: expected {_TOKENIZER_JSON} or both "
            f"{' and '.join(_VOCAB_AND_MERGES)}"
        )
    if (folder / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(folder)
    # Bare vocab.json/merges.txt (as in OpenAI-converted folders) say nothing about their class.
    return CLIPTokenizer.from_pretrained(folder)


def _load_hub_tokenizer(repo_id: str) -> transformers.PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(repo_id)
    except OSError as error:
        raise OSError(
            f"could not load a tokenizer for {repo_id!r}: it is not a local folder, and the Hub "
            "repository is neither in the local Hub cache nor reachable. Pass a local folder, "
            "None for the shipped CLIP vocabulary, or download the repository first."
        ) from error


def _looks_like_local_path(name: str) -> bool:
    """True for names that cannot be a Hub id ("org/name" or "name")."""
    if os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name:
        return True
    return name.count("/") > 1
