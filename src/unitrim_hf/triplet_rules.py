"""Tagging and morphology helpers for :mod:`unitrim_hf.triplet_parser`.

Everything here works without NLTK data:

* :func:`lexicon_tagger` builds (once per process, lazily) an
  ``nltk.tag.UnigramTagger`` whose model is Brill's lexicon shipped in
  ``unitrim_hf/assets/en-lexicon.txt``, backed off to an ``nltk.tag.RegexpTagger``
  that guesses unknown words from their suffix.
* :func:`retag` corrects the lexicon's single most-frequent tag from context, for
  the noun/verb ambiguities that matter in video captions ("a man *shades* his
  eyes", "a woman *cooking* pasta", "two men *dance*").
* :func:`lemmatize_verb` maps an inflected verb to its base form with rules plus a
  table of irregular verbs ("running" -> "run", "lit" -> "light").
"""

from __future__ import annotations

import functools
import importlib.resources

LEXICON_RESOURCE = "en-lexicon.txt"

NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
ADJECTIVE_TAGS = frozenset({"JJ", "JJR", "JJS"})
VERB_TAGS = frozenset({"VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "MD"})
FINITE_VERB_TAGS = frozenset({"VBZ", "VBP", "VBD", "MD"})

BE_FORMS = frozenset({"be", "is", "are", "was", "were", "been", "being", "am"})
HAVE_FORMS = frozenset({"have", "has", "had", "having"})
PASSIVE_AUXILIARIES = BE_FORMS | frozenset({"get", "gets", "got", "getting", "gotten"})
SUBJECT_PRONOUNS = frozenset(
    {"he", "she", "it", "they", "we", "you", "i", "someone", "somebody", "everyone", "everybody", "nobody"}
)
PLURAL_SUBJECT_PRONOUNS = frozenset({"they", "we", "you", "i"})
# Words that introduce a determiner slot: a verb-tagged word right after them is a noun ("a walk").
DETERMINER_WORDS = frozenset(
    {"a", "an", "the", "his", "her", "their", "its", "my", "your", "our", "these", "those", "every", "each", "another"}
)

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

# Common caption verbs that the lexicon tags only as nouns or adjectives ("dance" NN,
# "dances" NNS, "open" JJ). Used to decide whether such a word in a verb slot may be a verb.
NOUN_VERB_HOMOGRAPHS = frozenset(
    """
    open close clear empty dry warm cool smooth free tidy wet flatten shut
    dance cook jump shade slice drive mix ride light paint kiss hug smile laugh fight race
    swim surf skate ski dive climb kick throw catch pass shoot score fish hunt chase wave
    point touch hold pull push lift drop fall roll spin twist turn bend stretch fold chop
    peel pour stir fry bake boil grill roast serve taste drink feed wash clean brush comb
    dress sew knit draw sketch type sing talk speak shout yell scream cry whisper walk run
    jog march crawl fly float sail row paddle steer park crash burn melt shake nod blink stare
    look watch show explain play practice perform exercise train work fix repair build test
    pet rub scrub wipe spray splash drum strum bounce dunk slide skid flip hop skip tap knock
    kneel squat sit stand lie sleep rest nap yawn sneeze cough eat bite chew lick sniff smell
    hear listen film record interview report review demonstrate display cut hit step trip
    attack bark growl roar purr meow tickle cuddle wrestle box punch slap grab toss juggle
    sweep mop vacuum iron hammer saw drill weld glue tape wrap pack load unload stack sort
    pile dig plant water trim mow rake shovel skateboard snowboard bike cycle hike camp
    cheer salute wag model pose smile frown grin wink shrug wave bow clap whistle hum
    sip gulp slurp spit dribble pitch bat bowl serve volley tackle sprint hurdle vault
    flip tumble twirl skip stomp tap march cartwheel somersault juggle balance
    shower bathe soak rinse scrub shave trim style braid curl
    chat text call phone email tweet blog vlog review unbox tour visit photograph
    """.split()
)

# Verbs that take a second verb in -ing and add little meaning of their own ("starts singing").
CATENATIVE_VERBS = frozenset({"start", "begin", "keep", "stop", "continue", "finish", "go", "try", "like", "love", "enjoy", "quit"})

PARTICLE_WORDS = frozenset({"up", "down", "out", "off", "away", "back", "around", "over", "in", "on", "along", "through", "apart", "together", "aside", "forward", "backward", "backwards", "outside", "inside", "home"})

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
    "build": "built",
    "deal": "dealt",
    "fit": "fitted",
    "lend": "lent",
    "mean": "meant",
    "read": "read",
    "seek": "sought",
    "shut": "shut",
    "sweep": "swept",
}.items():
    for _form in _forms.split():
        IRREGULAR_VERBS[_form] = _base
del _base, _forms, _form

_VOWELS = frozenset("aeiou")
# Words that end the clause whose verb slot the retagging rules look at.
_CLAUSE_WORDS = frozenset({"and", "while", "because", "whereas", "when", "but", "then", "as", "although", "though", "until", "who", "which", "that", "or"})


@functools.lru_cache(maxsize=1)
def _read_lexicon() -> tuple[dict[str, str], frozenset[str]]:
    """Parse the shipped lexicon once: ``({lowercase word: tag}, words listed in lowercase)``."""
    text = importlib.resources.files(__package__).joinpath("assets", LEXICON_RESOURCE).read_text(encoding="utf-8")
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
    """Brill's lexicon as ``{lowercase word: Penn tag}`` (about 80k entries), read once per process.

    A word listed in several casings keeps the tag of its lowercase entry when there is one
    (captions are lowercased, and "Bill"/NNP must not override "bill"/NN). Do not mutate it.
    """
    return _read_lexicon()[0]


def _lowercase_lexicon_words() -> frozenset[str]:
    return _read_lexicon()[1]


@functools.lru_cache(maxsize=1)
def lexicon_tagger():
    """The offline tagger: ``UnigramTagger(model=lexicon)`` with a suffix ``RegexpTagger`` backoff."""
    from nltk.tag import RegexpTagger, UnigramTagger

    return UnigramTagger(model=load_lexicon(), backoff=RegexpTagger(SUFFIX_RULES))


def _in_lexicon(word: str) -> bool:
    """Whether ``word`` is a known lowercase content word (names such as "Clapp" do not count)."""
    tag = load_lexicon().get(word)
    return (
        tag is not None
        and (tag in NOUN_TAGS or tag in VERB_TAGS or tag in ADJECTIVE_TAGS)
        and word in _lowercase_lexicon_words()
    )


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
        if _in_lexicon(candidate):
            return candidate
    return candidates[0]


def _strip_suffix(word: str, suffix_length: int) -> str:
    """Base form of a word ending in -ing (length 3) or -ed (length 2)."""
    stem = word[:-suffix_length]
    if len(stem) >= 2 and stem[-1] == stem[-2] and stem[-1] not in _VOWELS:
        # "running" -> "run", but "rolling" -> "roll", "kissing" -> "kiss".
        if stem[-1] in "lsz" or _in_lexicon(stem):
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
    """Base form of an inflected English verb, e.g. ``"runs"`` -> ``"run"``, ``"lit"`` -> ``"light"``.

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


def _may_be_verb(word: str) -> bool:
    """Strong evidence that a noun-tagged word also reads as a verb ("dances", "shade")."""
    base = lemmatize_verb(word)
    if base in NOUN_VERB_HOMOGRAPHS:
        return True
    return load_lexicon().get(base) in ("VB", "VBP")


def _has_verb_inflections(word: str) -> bool:
    """Weak evidence: the lexicon lists a past or -ing verb form of the word's base ("wags" -> "wagged")."""
    base = lemmatize_verb(word)
    lexicon = load_lexicon()
    stems = {base, base[:-1] if base.endswith("e") else base, base + base[-1]}
    return any(
        lexicon.get(stem + suffix) in ("VBD", "VBN", "VBG")
        for stem in stems
        for suffix in ("ed", "ing", "d")
    )


def _starts_object(tokens: list[str], tags: list[str], index: int) -> bool:
    if index >= len(tokens):
        return False
    return tokens[index] in DETERMINER_WORDS or tags[index] in ("DT", "PRP$", "CD") or tokens[index] in ("him", "them", "it", "itself", "herself", "himself")


def _clause_bounds(tags: list[str], tokens: list[str], index: int) -> tuple[int, int]:
    """Token range [start, end) of the clause holding ``index``: split at punctuation and subordinators."""
    start = index
    while start > 0 and tags[start - 1] not in (",", ".", ":") and tokens[start - 1] not in _CLAUSE_WORDS:
        start -= 1
    end = index + 1
    while end < len(tags) and tags[end] not in (",", ".", ":") and tokens[end] not in _CLAUSE_WORDS:
        end += 1
    return start, end


def _is_coordinated_subject(tokens: list[str], tags: list[str], index: int) -> bool:
    """Whether the words before ``index`` are a verbless "X and Y" noun phrase (a plural subject)."""
    before = tags[:index]
    return "and" in tokens[:index] and not any(tag in VERB_TAGS for tag in before)


def _has_finite_verb(tags: list[str], tokens: list[str], start: int, end: int, skip: int) -> bool:
    for position in range(start, end):
        if position != skip and (tags[position] in FINITE_VERB_TAGS or tokens[position] in BE_FORMS):
            return True
    return False


def retag(tokens: list[str], tags: list[str]) -> list[str]:
    """Contextual corrections of lexicon tags, in place and returned.

    Args:
        tokens: lowercased words of one sentence, length N.
        tags: their Penn tags from the lexicon or NLTK tagger, length N.
    """
    count = len(tokens)
    for index in range(count):
        word, tag = tokens[index], tags[index]
        previous_word = tokens[index - 1] if index else ""
        previous_tag = tags[index - 1] if index else ""
        next_tag = tags[index + 1] if index + 1 < count else "."

        if word in BE_FORMS or word in HAVE_FORMS:
            continue
        # "a walk", "the show": a verb tag right after a determiner is a noun.
        if tag in ("VB", "VBP", "VBZ") and (previous_word in DETERMINER_WORDS or previous_tag in ADJECTIVE_TAGS):
            tags[index] = "NNS" if tag == "VBZ" else "NN"
            continue
        # -ing words the lexicon calls nouns ("cooking") are verbs after a be-form, a noun or a pronoun.
        if word.endswith("ing") and tag in ("NN", "JJ", "NNP"):
            if previous_word in BE_FORMS or previous_tag in NOUN_TAGS or previous_tag in ("PRP", "RB", "WP", "WDT"):
                tags[index] = "VBG"
                continue
            if previous_tag == "CC" and "VBG" in tags[:index]:
                tags[index] = "VBG"
                continue
        # "to dance", "can cook": base verb after an infinitive marker or a modal.
        if (tag in NOUN_TAGS or tag in ADJECTIVE_TAGS) and (previous_tag in ("TO", "MD") or previous_word == "to") and _may_be_verb(word):
            if next_tag not in NOUN_TAGS or tag != "NN":
                tags[index] = "VB"
                continue
        # Noun-tagged word in the verb slot of a clause that has no finite verb: "a man shades his eyes".
        after_subject = (
            previous_tag in NOUN_TAGS
            or previous_tag == "PRP"
            or previous_word in SUBJECT_PRONOUNS
            # "a boy in blue hits ...": a colour after a preposition closes the subject.
            or (previous_tag in ADJECTIVE_TAGS and index >= 2 and tags[index - 2] == "IN")
        )
        if tag in ("NNS", "NN", "VB") and after_subject:
            plural_subject = (
                previous_tag in ("NNS", "NNPS")
                or previous_word in PLURAL_SUBJECT_PRONOUNS
                or _is_coordinated_subject(tokens, tags, index)
            )
            agrees = (tag == "NNS" and not plural_subject) or (tag in ("NN", "VB") and plural_subject)
            evidence = _may_be_verb(word) or (_starts_object(tokens, tags, index + 1) and _has_verb_inflections(word))
            if agrees and next_tag not in ("VBZ", "VBP", "VBD", "MD") and evidence:
                start, end = _clause_bounds(tags, tokens, index)
                if not _has_finite_verb(tags, tokens, start, end, index):
                    tags[index] = "VBZ" if tag == "NNS" else "VBP"
                    continue
            if tag == "VB":
                # "they play" is a verb; "a football match" is a noun compound.
                tags[index] = "VBP" if previous_tag == "PRP" else "NN"
                continue
        # Verb coordination: "sings and dances", "rides a horse and jumps over a fence".
        if tag in ("NNS", "NN") and previous_tag == "CC" and _may_be_verb(word) and next_tag not in VERB_TAGS:
            earlier = [t for t in tags[:index - 1] if t in ("VBZ", "VBP", "VBD")]
            if earlier and ((tag == "NNS" and earlier[-1] == "VBZ") or (tag == "NN" and earlier[-1] == "VBP")):
                if next_tag not in NOUN_TAGS:
                    tags[index] = earlier[-1]
                    continue
    return tags
