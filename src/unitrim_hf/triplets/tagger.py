"""The offline POS tagger: Brill's lexicon, a suffix guesser for unknown words, then Brill's contextual rules.

`nltk.tag.BrillTagger` applies the contextual rules of Brill's tagger v1.14 (shipped in `assets/en-context.txt`,
from the same Pattern distribution as the lexicon) over an initial tagging by `UnigramTagger(model=lexicon)`,
backed off to a suffix `RegexpTagger` and followed by the caption corrections of `corrections`. The
rules read the neighbouring words and tags ("was left" -> VBN, "the left" -> not a verb), which a lexicon alone
(one tag per word) cannot do. The corrections run before the rules, because the rules were learned over Brill's
full initial tagger (several tags per word, lexical rules) and assume the noun/verb choice of a caption's main
verb is already right; the parser runs them once more after the rules.

Five rules are left out (`DISABLED_CONTEXT_RULES`): learned on newswire, they misread captions.
"""

from __future__ import annotations

import functools

from .assets import read_asset_text
from .corrections import correct_tags
from .lexicon import load_lexicon

CONTEXT_RULES_RESOURCE = "en-context.txt"

# Regular expressions for words missing from the lexicon, tried in order (nltk RegexpTagger backoff).
SUFFIX_RULES: list[tuple[str, str]] = [
    (r"^-?\d+(?:[.,]\d+)*$", "CD"),
    (r".*ing$", "VBG"),
    (r".*ed$", "VBD"),
    (r".*ly$", "RB"),
    (r".*(?:ous|ful|ive|able|ible|ish|less|ic|al)$", "JJ"),
    (r".*[^s]s$", "NNS"),
    (r".*", "NN"),
]

# Rules of en-context.txt (as written there) that are not applied, with the caption they misread.
DISABLED_CONTEXT_RULES = frozenset(
    {
        "NN VBP PREVTAG NNS",  # "a sports *car* is racing": a plural noun before a noun is a compound in captions
        "NN VB PREVTAG TO",  # "connecting something to *system*": the corrections make verbs of infinitives they can
        "NN VBG NEXTTAG PRP$",  # "showing a *woman* his phone"
        "DT WDT PREVTAG NNS",  # "hits *a* ball" (the rule is for "that")
        "NN VBG PREVTAG VBP",  # "kids play *video* games": a noun after a plural verb starts its object in captions
    }
)

# Brill marks the positions before and after a sentence with this word and tag; rules may test for it.
SENTENCE_EDGE = "STAART"
_EDGE_PADDING = 3  # the rules look at most 3 positions away

# Rule templates of Brill's context file: (("tag" | "word", relative positions), ...) for the arguments x and y.
# "prev1or2tag x" holds when the tag at -1 or -2 is x; "surroundtag x y" when the tag at -1 is x and at +1 is y.
_TEMPLATES: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {
    "PREVTAG": (("tag", (-1,)),),
    "NEXTTAG": (("tag", (1,)),),
    "PREV2TAG": (("tag", (-2,)),),
    "NEXT2TAG": (("tag", (2,)),),
    "PREV1OR2TAG": (("tag", (-1, -2)),),
    "NEXT1OR2TAG": (("tag", (1, 2)),),
    "PREV1OR2OR3TAG": (("tag", (-1, -2, -3)),),
    "NEXT1OR2OR3TAG": (("tag", (1, 2, 3)),),
    "SURROUNDTAG": (("tag", (-1,)), ("tag", (1,))),
    "CURWD": (("word", (0,)),),
    "PREVWD": (("word", (-1,)),),
    "NEXTWD": (("word", (1,)),),
    "PREV1OR2WD": (("word", (-1, -2)),),
    "NEXT1OR2WD": (("word", (1, 2)),),
    "PREV1OR2OR3WD": (("word", (-1, -2, -3)),),
    "NEXT1OR2OR3WD": (("word", (1, 2, 3)),),
    "WDPREVTAG": (("tag", (-1,)), ("word", (0,))),
    "WDNEXTTAG": (("word", (0,)), ("tag", (1,))),
    "WDAND2AFT": (("word", (0,)), ("word", (2,))),
    "WDAND2BFR": (("word", (-2,)), ("word", (0,))),
    "WDAND2TAGAFT": (("word", (0,)), ("tag", (2,))),
    "WDAND2TAGBFR": (("tag", (-2,)), ("word", (0,))),
    "LBIGRAM": (("word", (-1,)), ("word", (0,))),
    "RBIGRAM": (("word", (0,)), ("word", (1,))),
    "PREVBIGRAM": (("tag", (-2,)), ("tag", (-1,))),
    "NEXTBIGRAM": (("tag", (1,)), ("tag", (2,))),
}


def parse_context_rules(text: str) -> list:
    """Brill's contextual rules (`"FROM TO TEMPLATE x [y]"` lines, `;;;` comments) as `nltk.tbl.Rule` objects,
    without those of `DISABLED_CONTEXT_RULES`.

    Raises:
        ValueError: naming the line of a rule whose template is unknown or whose arguments are missing.
    """
    from nltk.tag.brill import Pos, Word
    from nltk.tbl.rule import Rule

    features = {"tag": Pos, "word": Word}
    rules = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or line.startswith(";;;"):
            continue
        if len(fields) < 4 or fields[2] not in _TEMPLATES:
            raise ValueError(f"{CONTEXT_RULES_RESOURCE} line {number}: not a contextual rule: {line!r}")
        if " ".join(fields) in DISABLED_CONTEXT_RULES:
            continue
        original, replacement, template, arguments = fields[0], fields[1], fields[2], fields[3:]
        slots = _TEMPLATES[template]
        if len(arguments) < len(slots):
            raise ValueError(f"{CONTEXT_RULES_RESOURCE} line {number}: {template} needs {len(slots)} arguments: {line!r}")
        conditions = [(features[kind](list(positions)), value) for (kind, positions), value in zip(slots, arguments)]
        rules.append(Rule(template, original, replacement, conditions))
    return rules


@functools.lru_cache(maxsize=1)
def lexicon_tagger():
    """The initial tagging: `UnigramTagger(model=lexicon)` backed off to a suffix `RegexpTagger`, built once."""
    from nltk.tag import RegexpTagger, UnigramTagger

    model = dict(load_lexicon())
    model[SENTENCE_EDGE] = SENTENCE_EDGE
    return UnigramTagger(model=model, backoff=RegexpTagger(SUFFIX_RULES))


class _CorrectedLexiconTagger:
    """The Brill tagger's initial tagging: lexicon and suffixes, then the caption corrections (edge markers kept)."""

    def tag(self, tokens: list[str]) -> list[tuple[str, str]]:
        words = list(tokens[_EDGE_PADDING : len(tokens) - _EDGE_PADDING])
        tags = correct_tags(words, [tag for _, tag in lexicon_tagger().tag(words)])
        edge = [(SENTENCE_EDGE, SENTENCE_EDGE)] * _EDGE_PADDING
        return edge + list(zip(words, tags)) + edge


@functools.lru_cache(maxsize=1)
def context_tagger():
    """`BrillTagger(corrected lexicon tagging, Brill's contextual rules)`, built once."""
    from nltk.tag import BrillTagger

    class SparseBrillTagger(BrillTagger):
        """nltk's `BrillTagger` that does not call the rules whose original tag no word of the sentence has.

        Same tags as `BrillTagger.tag` (rules still apply in order, each to the tags left by the previous ones);
        a caption has a handful of distinct tags, so most of the 285 rules are skipped (about 25 % faster).
        """

        def tag(self, tokens: list[str]) -> list[tuple[str, str]]:
            tagged = self._initial_tagger.tag(tokens)
            positions_of_tag: dict[str, set[int]] = {}
            for position, (_, tag) in enumerate(tagged):
                positions_of_tag.setdefault(tag, set()).add(position)
            for rule in self._rules:
                positions = positions_of_tag.get(rule.original_tag)
                if not positions:
                    continue
                for position in rule.apply(tagged, positions):
                    positions_of_tag[rule.original_tag].discard(position)
                    positions_of_tag.setdefault(rule.replacement_tag, set()).add(position)
            return tagged

    return SparseBrillTagger(_CorrectedLexiconTagger(), parse_context_rules(read_asset_text(CONTEXT_RULES_RESOURCE)))


def tag_words(tokens: list[str]) -> list[str]:
    """Penn tags of one sentence's lowercased tokens (length N) from the lexicon and Brill's contextual rules.

    The sentence is padded as Brill's tagger saw its training text: a final "." when it has no end punctuation
    (the sentence splitter removes it), then edge markers on both sides.
    """
    words = list(tokens)
    if words and words[-1] not in (".", "!", "?"):
        words.append(".")
    padding = [SENTENCE_EDGE] * _EDGE_PADDING
    tagged = context_tagger().tag(padding + words + padding)
    return [tag for _, tag in tagged[_EDGE_PADDING : _EDGE_PADDING + len(tokens)]]
