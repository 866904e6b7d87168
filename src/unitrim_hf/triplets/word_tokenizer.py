"""Caption text into sentences and lowercased tokens, after removing terminal control sequences."""

from __future__ import annotations

import re

# ANSI/VT100 escape sequences (colour codes such as "\x1b[31m", cursor moves, OSC titles) and C0/C1 control
# characters other than whitespace; a caption pasted from a terminal must not leave "31m" in a triplet.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: ESC [ parameters intermediates final
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: ESC ] ... BEL or ST
    r"|\x1b[@-Z\\-_]"  # other two-character escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

_SENTENCE_BOUNDARY = re.compile(r"[.!?]+(?=\s|$)|\n+")
_TOKEN_PATTERN = re.compile(r"\d+(?:[.,]\d+)+|[a-z0-9]+(?:[-'][a-z0-9]+)*|[.!?;,:]")
_CONTRACTIONS = {"n't": "not", "'re": "are", "'m": "am", "'ll": "will", "'ve": "have", "'d": "would"}
_NEGATED_AUXILIARIES = {"can't": "can", "won't": "will", "cannot": "can"}
_IS_CONTRACTING_WORDS = frozenset({"it", "he", "she", "that", "there", "what", "who", "here", "this"})


def strip_control_characters(text: str) -> str:
    """`text` without ANSI escape sequences; other control characters become spaces (so they never glue two
    words together), except line breaks (`\\n`, `\\r`), which stay sentence breaks."""
    text = _ESCAPE_SEQUENCE.sub("", text)
    return _CONTROL_CHARACTERS.sub(" ", text.replace("\t", " ").replace("\r", "\n"))


def split_sentences(text: str) -> list[str]:
    """Sentences of a caption or paragraph (DiDeMo), split at `. ! ?` followed by a space or the end."""
    return [sentence for sentence in (part.strip() for part in _SENTENCE_BOUNDARY.split(text)) if sentence]


def tokenize(sentence: str) -> list[str]:
    """Lowercased word and punctuation tokens, contractions expanded ("it's" -> "it", "is")."""
    tokens: list[str] = []
    for token in _TOKEN_PATTERN.findall(sentence.lower().replace("\u2019", "'")):
        if "'" not in token and token != "cannot":
            tokens.append(token)
        elif token in _NEGATED_AUXILIARIES:
            tokens.extend((_NEGATED_AUXILIARIES[token], "not"))
        elif token.endswith("'s"):
            stem = token[:-2]
            tokens.extend((stem, "is") if stem in _IS_CONTRACTING_WORDS else (stem, "'s"))
        else:
            for suffix, expansion in _CONTRACTIONS.items():
                if token.endswith(suffix) and len(token) > len(suffix):
                    tokens.extend((token[: -len(suffix)], expansion))
                    break
            else:
                tokens.append(token)
    return tokens

