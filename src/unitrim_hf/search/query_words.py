"""A query's whole words, rebuilt from CLIP's BPE pieces, without function words ("a", "while", "of", ...).

CLIP's tokenizer splits a rare word into several pieces and marks the last piece of every word with `</w>`
("shrinks" -> "shrin", "ks</w>"). Explanations name whole words: consecutive pieces are joined up to the piece
that ends the word, and words that carry no content (articles, prepositions, conjunctions, pronouns,
auxiliaries) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

END_OF_WORD = "</w>"

# English function words: they match every frame about equally and say nothing about why an item matched.
STOP_WORDS = frozenset(
    """
    a an the this that these those some any each every no another such
    and or but nor so yet while whilst as if than then because although though when whenever where wherever
    until till since unless whether
    of in on at to from by with without into onto upon over under above below about around across along
    through throughout during before after behind beside besides between beyond near off out up down toward
    towards via per against among amongst within inside outside
    i me my mine we us our ours you your yours he him his she her hers it its they them their theirs
    who whom whose which what myself yourself himself herself itself ourselves themselves
    is am are was were be been being has have had having do does did doing
    will would shall should can could may might must
    not very too also just only there here again still even more most much many other
    """.split()
)


@dataclass
class QueryWord:
    """
    A whole word of the query.

    Args:
        text: the word as the tokenizer normalized it (lower case), its pieces joined.
        positions: (num_pieces,) positions of its pieces in the tokenized query.
    """

    text: str
    positions: list[int]


def whole_words(tokens: list[str], positions: list[int]) -> list[QueryWord]:
    """
    Group BPE pieces into whole words.

    Args:
        tokens: (num_pieces,) the pieces in query order (special tokens excluded), e.g. ["shrin", "ks</w>"].
        positions: (num_pieces,) the position of each piece in the tokenized query.

    Returns:
        The words in query order; a trailing run of pieces without `</w>` (a query cut at the caption length)
        is one word too.
    """
    if len(tokens) != len(positions):
        raise ValueError(f"{len(tokens)} tokens for {len(positions)} positions")
    words: list[QueryWord] = []
    pieces: list[str] = []
    piece_positions: list[int] = []
    for token, position in zip(tokens, positions):
        pieces.append(token.removesuffix(END_OF_WORD))
        piece_positions.append(position)
        if token.endswith(END_OF_WORD):
            words.append(QueryWord("".join(pieces), piece_positions))
            pieces, piece_positions = [], []
    if pieces:
        words.append(QueryWord("".join(pieces), piece_positions))
    return words


def is_content_word(text: str) -> bool:
    """True for a word that carries meaning: not a function word, and holding a letter or a digit."""
    return text.lower() not in STOP_WORDS and any(character.isalnum() for character in text)


def content_words(tokens: list[str], positions: list[int]) -> list[QueryWord]:
    """`whole_words` without function words and punctuation."""
    return [word for word in whole_words(tokens, positions) if is_content_word(word.text)]


__all__ = ["END_OF_WORD", "QueryWord", "STOP_WORDS", "content_words", "is_content_word", "whole_words"]
