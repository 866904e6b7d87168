"""The caption parser: tokenize, tag, correct, chunk and link, sentence by sentence."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import TaggerDataMissingError
from .chunk import SentenceChunker
from .corrections import correct_tags
from .link import TripletLinker
from .tagger import tag_words
from .word_tokenizer import split_sentences, strip_control_characters, tokenize
from .triplet import Triplet

BACKENDS = ("lexicon", "nltk")
NLTK_TAGGER_RESOURCE = "averaged_perceptron_tagger_eng"

# Input caps that keep parsing time linear and bounded: only the first `MAX_CAPTION_CHARACTERS` characters of a
# cleaned caption are parsed (cut at a word boundary), and only the first `MAX_SENTENCE_WORDS` tokens of each
# sentence. Captions are far shorter (MSR-VTT: under 40 words; a DiDeMo paragraph: about 1,000 characters);
# the tagger's corrections and the linker look across a sentence, so an uncapped sentence costs quadratic time.
MAX_CAPTION_CHARACTERS = 8192
MAX_SENTENCE_WORDS = 128


def truncate_caption(text: str, max_characters: int = MAX_CAPTION_CHARACTERS) -> str:
    """The first `max_characters` characters of `text`, without the word cut in two at the end.

    Args:
        text: a cleaned caption.
        max_characters: the cap; `text` is returned unchanged when it is not longer.
    """
    if len(text) <= max_characters:
        return text
    if text[max_characters].isspace():
        return text[:max_characters]
    head = text[:max_characters]
    boundary = max(head.rfind(" "), head.rfind("\n"))
    return head[:boundary] if boundary > 0 else head


class TripletParser:
    """Parses captions into [`Triplet`] lists; see the module docstring for the conventions.

    Args:
        backend: `"lexicon"` (default): Brill's lexicon and contextual rules shipped with the package
            (`tagger`), no NLTK data needed. `"nltk"`: `nltk.pos_tag` (needs the
            `averaged_perceptron_tagger_eng` data; raises [`TaggerDataMissingError`] when it is missing,
            never falls back silently). The same caption corrections and linking rules run after either tagger.
        max_triplets: keep at most this many triplets per caption (in caption order); `None` keeps all.
    """

    def __init__(self, backend: str = "lexicon", max_triplets: int | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"TripletParser backend must be one of {BACKENDS}, got {backend!r}")
        if max_triplets is not None and (isinstance(max_triplets, bool) or not isinstance(max_triplets, int) or max_triplets < 1):
            raise ValueError(f"TripletParser max_triplets must be a positive int or None, got {max_triplets!r}")
        self.backend = backend
        self.max_triplets = max_triplets
        self._tag_words = _nltk_tag_words() if backend == "nltk" else tag_words

    def parse(self, text: str) -> list[Triplet]:
        """Triplets of one caption or paragraph, in order of appearance, without duplicates.

        Args:
            text: a caption; several sentences are parsed one by one. ANSI escape sequences and control
                characters are removed first; then only the first `MAX_CAPTION_CHARACTERS` characters (8192)
                and the first `MAX_SENTENCE_WORDS` tokens (128) of each sentence are parsed, so the time is
                bounded for any input.
        """
        if not isinstance(text, str):
            raise TypeError(f"TripletParser.parse expects a str caption, got {type(text).__name__}")
        triplets: list[Triplet] = []
        seen: set[Triplet] = set()
        for sentence in split_sentences(truncate_caption(strip_control_characters(text))):
            tokens = tokenize(sentence)[:MAX_SENTENCE_WORDS]
            if not tokens:
                continue
            tags = correct_tags(tokens, self._tag_words(tokens))
            for triplet in TripletLinker(SentenceChunker(tokens, tags).chunk()).link():
                if triplet not in seen:
                    seen.add(triplet)
                    triplets.append(triplet)
            if self.max_triplets is not None and len(triplets) >= self.max_triplets:
                break
        return triplets if self.max_triplets is None else triplets[: self.max_triplets]

    def parse_batch(self, texts: list[str]) -> list[list[Triplet]]:
        """`parse` for each caption of `texts` (length B), returning B lists."""
        return [self.parse(text) for text in texts]

    def to_dict(self) -> dict:
        """JSON-serializable settings, as saved in `processor_config.json`."""
        return {"backend": self.backend, "max_triplets": self.max_triplets}

    @classmethod
    def from_dict(cls, settings: dict) -> "TripletParser":
        """Parser from `to_dict` output; unknown keys raise `ValueError` naming them."""
        if not isinstance(settings, dict):
            raise ValueError(f"TripletParser settings must be a dict, got {type(settings).__name__}")
        unknown = sorted(set(settings) - {"backend", "max_triplets"})
        if unknown:
            raise ValueError(f"Unknown TripletParser settings {unknown}; expected 'backend' and 'max_triplets'")
        return cls(**settings)

    def __repr__(self) -> str:
        return f"TripletParser(backend={self.backend!r}, max_triplets={self.max_triplets!r})"


def _nltk_tag_words() -> Callable[[list[str]], list[str]]:
    """`nltk.pos_tag` as a tokens -> tags function; raises [`TaggerDataMissingError`] without its data."""
    import nltk

    try:
        nltk.data.find(f"taggers/{NLTK_TAGGER_RESOURCE}/")
    except LookupError:
        raise TaggerDataMissingError(
            f"TripletParser(backend='nltk') needs NLTK's '{NLTK_TAGGER_RESOURCE}' data, which is not installed. "
            f"Install it with `python -m nltk.downloader {NLTK_TAGGER_RESOURCE}` (or set NLTK_DATA to a folder "
            "holding it), or use backend='lexicon', which needs no download."
        ) from None

    def tag(tokens: list[str]) -> list[str]:
        return [tag for _, tag in nltk.pos_tag(tokens)]

    return tag


