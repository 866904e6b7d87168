"""Base forms of inflected English verbs, by rule plus a table of irregular forms ("running" -> "run", "lit" -> "light")."""

from __future__ import annotations

import functools

from .lexicon import in_lexicon

IRREGULAR_VERBS: dict[str, str] = {}
for _base, _forms in {
    "be": "is are was were been being am 's 're 'm",
    "have": "has had having",
    "do": "does did done doing",
    "go": "goes went gone",
    "run": "ran running",
    "eat": "ate eaten",
    "sit": "sat sitting",
    "stand": "stood",
    "take": "took taken",
    "give": "gave given",
    "make": "made",
    "come": "came",
    "see": "saw seen",
    "fall": "fell fallen",
    "throw": "threw thrown",
    "catch": "caught",
    "hold": "held",
    "light": "lit lighted",
    "put": "putting",
    "show": "shown",
    "draw": "drew drawn",
    "write": "wrote written",
    "drive": "drove driven",
    "ride": "rode ridden",
    "swim": "swam swum",
    "sing": "sang sung",
    "fly": "flew flown flies",
    "hang": "hung",
    "dig": "dug",
    "begin": "began begun",
    "break": "broke broken",
    "bring": "brought",
    "buy": "bought",
    "build": "built",
    "fight": "fought",
    "find": "found",
    "get": "got gotten",
    "grow": "grew grown",
    "hear": "heard",
    "hide": "hid hidden",
    "keep": "kept",
    "know": "knew known",
    "lay": "laid",
    "lie": "lying lay lain",
    "die": "dying",
    "tie": "tying",
    "lead": "led",
    "leave": "left",
    "lose": "lost",
    "meet": "met",
    "pay": "paid",
    "say": "said",
    "sell": "sold",
    "send": "sent",
    "shake": "shook shaken",
    "shoot": "shot",
    "sleep": "slept",
    "slide": "slid",
    "spend": "spent",
    "spin": "spun",
    "speak": "spoke spoken",
    "steal": "stole stolen",
    "stick": "stuck",
    "strike": "struck",
    "sweep": "swept",
    "swing": "swung",
    "teach": "taught",
    "tell": "told",
    "think": "thought",
    "tear": "tore torn",
    "wake": "woke woken",
    "wear": "wore worn",
    "win": "won",
    "blow": "blew blown",
    "bite": "bit bitten",
    "choose": "chose chosen",
    "dive": "dove",
    "drink": "drank drunk",
    "feed": "fed",
    "feel": "felt",
    "forget": "forgot forgotten",
    "freeze": "froze frozen",
    "kneel": "knelt",
    "leap": "leapt",
    "ring": "rang rung",
    "rise": "rose risen",
    "sink": "sank sunk",
    "shine": "shone",
    "spread": "spread",
    "stink": "stank",
    "understand": "understood",
    "weave": "wove woven",
    "bend": "bent",
    "deal": "dealt",
    "fit": "fitted",
    "lend": "lent",
    "mean": "meant",
    "read": "read",
    "seek": "sought",
    "shut": "shut",
}.items():
    for _form in _forms.split():
        IRREGULAR_VERBS[_form] = _base
del _base, _forms, _form

_VOWELS = frozenset("aeiou")


def _is_consonant_vowel_consonant(stem: str) -> bool:
    return (
        len(stem) >= 3
        and stem[-1] not in _VOWELS
        and stem[-1] not in "wxy"
        and stem[-2] in _VOWELS
        and stem[-3] not in _VOWELS
    )


def _first_known(candidates: list[str]) -> str:
    for candidate in candidates:
        if in_lexicon(candidate):
            return candidate
    return candidates[0]


def _strip_suffix(word: str, suffix_length: int) -> str:
    """Base form of a word ending in -ing (length 3) or -ed (length 2)."""
    stem = word[:-suffix_length]
    if len(stem) >= 2 and stem[-1] == stem[-2] and stem[-1] not in _VOWELS:
        # "running" -> "run", but "rolling" -> "roll", "kissing" -> "kiss".
        if stem[-1] in "lsz" or in_lexicon(stem):
            return stem
        return stem[:-1]
    if suffix_length == 2 and stem.endswith("i"):
        return stem[:-1] + "y"  # "cried" -> "cry"
    if _is_consonant_vowel_consonant(stem) and len(stem) <= 4:
        # An undoubled short CVC stem means the base ended in e: "riding" -> "ride".
        return _first_known([stem + "e", stem])
    if suffix_length == 2 and stem.endswith("e"):
        return stem  # "freed"
    return _first_known([stem, stem + "e"])


@functools.lru_cache(maxsize=8192)
def lemmatize_verb(word: str) -> str:
    """Base form of an inflected English verb, e.g. `"runs"` -> `"run"`, `"lit"` -> `"light"`.

    Rules for -s/-es/-ies, -ing and -ed with consonant doubling and silent e, checked against the
    lexicon where a rule is ambiguous, plus a table of irregular forms. Unknown shapes are returned
    unchanged.
    """
    if word in IRREGULAR_VERBS:
        return IRREGULAR_VERBS[word]
    if len(word) > 4 and word.endswith("ing"):
        return _strip_suffix(word, 3)
    if len(word) > 3 and word.endswith("ed"):
        return _strip_suffix(word, 2)
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith(("sses", "shes", "ches", "xes", "zzes", "oes")):
        return _first_known([word[:-2], word[:-1]])
    if len(word) > 2 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


