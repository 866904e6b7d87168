"""Caption-domain corrections of POS tags from context, run after the tagger.

Brill's contextual rules are learned on newswire; these fix the noun/verb ambiguities that matter in video
captions and that those rules leave ("a man *shades* his eyes", "a woman *cooking* pasta", "two men *dance*").
"""

from __future__ import annotations

from .lemmatize import lemmatize_verb
from .lexicon import load_lexicon
from .vocabulary import (
    ADJECTIVE_TAGS,
    BE_FORMS,
    FINITE_VERB_TAGS,
    HAVE_FORMS,
    NOUN_ONLY_DETERMINERS,
    NOUN_TAGS,
    PLURAL_SUBJECT_PRONOUNS,
    SUBJECT_PRONOUNS,
    VERB_TAGS,
)

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
    move drift rise glide zoom pan tilt speed
    """.split()
)


# Words that end the clause whose verb slot the retagging rules look at.
DIRECTION_WORDS = frozenset({"left", "right"})
_CLAUSE_WORDS = frozenset({"and", "while", "because", "whereas", "when", "but", "then", "as", "although", "though", "until", "who", "which", "that", "or"})


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
    return tokens[index] in NOUN_ONLY_DETERMINERS or tags[index] in ("DT", "PRP$", "CD") or tokens[index] in ("him", "them", "it", "itself", "herself", "himself")


def _clause_bounds(tags: list[str], tokens: list[str], index: int) -> tuple[int, int]:
    """Token range [start, end) of the clause holding `index`: split at punctuation and subordinators."""
    start = index
    while start > 0 and tags[start - 1] not in (",", ".", ":") and tokens[start - 1] not in _CLAUSE_WORDS:
        start -= 1
    end = index + 1
    while end < len(tags) and tags[end] not in (",", ".", ":") and tokens[end] not in _CLAUSE_WORDS:
        end += 1
    return start, end


def _is_coordinated_subject(tokens: list[str], tags: list[str], index: int) -> bool:
    """Whether the words before `index` are a verbless "X and Y" noun phrase (a plural subject)."""
    before = tags[:index]
    return "and" in tokens[:index] and not any(tag in VERB_TAGS for tag in before)


def _has_finite_verb(tags: list[str], tokens: list[str], start: int, end: int, skip: int) -> bool:
    for position in range(start, end):
        if position != skip and (tags[position] in FINITE_VERB_TAGS or tokens[position] in BE_FORMS):
            return True
    return False


def _heads_noun_phrase(tokens: list[str], tags: list[str], index: int) -> bool:
    """Whether the word at `index` ends a noun phrase opened by a determiner: "a *saw*", "the old *saw*".

    Only the phrase's last word counts (the next word is no noun or adjective), so participles that modify a noun
    ("a *used* car", "the *injured* man") stay verbs for the chunker.
    """
    start = index - 1
    while start >= 0 and tags[start] in ADJECTIVE_TAGS:
        start -= 1
    if start < 0 or tokens[start] not in NOUN_ONLY_DETERMINERS:
        return False
    next_tag = tags[index + 1] if index + 1 < len(tags) else "."
    return next_tag not in NOUN_TAGS and next_tag not in ADJECTIVE_TAGS


def _correct_direction_words(tokens: list[str], tags: list[str]) -> None:
    """"left" and "right" name a direction or a side ("moves left", "on the left", "top right"): tag them NN.

    "left" stays the past of "leave" after "have"/"be" and right after a subject that cannot itself be read
    as a verb ("the man left the room"); after "square moves" or "circles move" it is the direction.
    """
    for index, word in enumerate(tokens):
        if word not in DIRECTION_WORDS:
            continue
        previous_word = tokens[index - 1] if index else ""
        previous_tag = tags[index - 1] if index else ""
        after_subject = (previous_tag in NOUN_TAGS and not _may_be_verb(previous_word)) or previous_tag == "PRP" or (
            previous_word in SUBJECT_PRONOUNS
        )
        if word == "left" and (previous_word in HAVE_FORMS or previous_word in BE_FORMS or after_subject):
            continue
        tags[index] = "NN"


def correct_tags(tokens: list[str], tags: list[str]) -> list[str]:
    """Contextual corrections of lexicon tags, in place and returned.

    Args:
        tokens: lowercased words of one sentence, length N.
        tags: their Penn tags from the lexicon or NLTK tagger, length N.
    """
    _correct_direction_words(tokens, tags)
    count = len(tokens)
    for index in range(count):
        word, tag = tokens[index], tags[index]
        previous_word = tokens[index - 1] if index else ""
        previous_tag = tags[index - 1] if index else ""
        next_tag = tags[index + 1] if index + 1 < count else "."

        if word in BE_FORMS or word in HAVE_FORMS:
            continue
        # "a walk", "the show": a verb tag right after a determiner is a noun.
        if tag in ("VB", "VBP", "VBZ") and (previous_word in NOUN_ONLY_DETERMINERS or previous_tag in ADJECTIVE_TAGS):
            tags[index] = "NNS" if tag == "VBZ" else "NN"
            continue
        # "with a saw": a past form after a determiner is a noun when it ends the noun phrase.
        if tag in ("VBD", "VBN") and _heads_noun_phrase(tokens, tags, index):
            tags[index] = "NN"
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
