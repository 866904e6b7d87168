"""Brill's tagger lexicon (shipped in `assets/en-lexicon.txt`) as a `{word: Penn tag}` dictionary."""

from __future__ import annotations

import functools

from .assets import read_asset_text
from .vocabulary import ADJECTIVE_TAGS, NOUN_TAGS, VERB_TAGS

LEXICON_RESOURCE = "en-lexicon.txt"

# The lexicon stores one tag per word, the most frequent one in newswire text; these
# are the caption-domain corrections where that choice is wrong for video captions.
TAG_OVERRIDES: dict[str, str] = {
    "someone": "NN",
    "something": "NN",
    "somebody": "NN",
    "people": "NNS",
    "while": "IN",
    "whereas": "IN",
    "because": "IN",
    "down": "RP",
    "away": "RP",
    "back": "RP",
    "up": "RP",
    "out": "RP",
    "off": "RP",
    "around": "RP",
    "over": "IN",
    "her": "PRP$",
    "that": "WDT",
    "which": "WDT",
    "who": "WP",
    "how": "WRB",
    "there": "EX",
    "lit": "VBD",
    "left": "VBD",
    "close": "JJ",
    "many": "JJ",
    "several": "JJ",
    "few": "JJ",
    "one": "CD",
}



@functools.lru_cache(maxsize=1)
def _read_lexicon() -> tuple[dict[str, str], frozenset[str]]:
    """Parse the shipped lexicon once: `({lowercase word: tag}, words listed in lowercase)`."""
    text = read_asset_text(LEXICON_RESOURCE)
    lowercase_entries: dict[str, str] = {}
    other_entries: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith(";;;"):
            continue
        word, _, tag = line.partition(" ")
        if not tag:
            continue
        lowered = word.lower()
        if word == lowered:
            lowercase_entries.setdefault(word, tag)
        else:
            other_entries.setdefault(lowered, tag)
    # A word seen only capitalised is a name in newswire ("Chases", "Clapp"); in a lowercased
    # caption it is a common noun, so keep the number but drop the proper-noun reading.
    proper_to_common = {"NNP": "NN", "NNPS": "NNS"}
    lexicon = {word: proper_to_common.get(tag, tag) for word, tag in other_entries.items()}
    lexicon.update(lowercase_entries)
    lexicon.update(TAG_OVERRIDES)
    return lexicon, frozenset(lowercase_entries)


def load_lexicon() -> dict[str, str]:
    """Brill's lexicon as `{lowercase word: Penn tag}` (about 80k entries), read once per process.

    A word listed in several casings keeps the tag of its lowercase entry when there is one
    (captions are lowercased, and "Bill"/NNP must not override "bill"/NN). Do not mutate it.
    """
    return _read_lexicon()[0]


def _lowercase_lexicon_words() -> frozenset[str]:
    return _read_lexicon()[1]


def in_lexicon(word: str) -> bool:
    """Whether `word` is a known lowercase content word (names such as "Clapp" do not count)."""
    tag = load_lexicon().get(word)
    return (
        tag is not None
        and (tag in NOUN_TAGS or tag in VERB_TAGS or tag in ADJECTIVE_TAGS)
        and word in _lowercase_lexicon_words()
    )


