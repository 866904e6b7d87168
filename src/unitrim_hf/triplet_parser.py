"""Semantic triplets (subject, predicate, object) from video captions, offline, with NLTK.

A caption is lowercased, split into sentences with a regular expression, tokenized, POS-tagged
(Brill's lexicon shipped with the package, or NLTK's perceptron tagger when asked for), tag errors
typical of captions are corrected from context (:mod:`unitrim_hf.triplet_rules`), and a small
deterministic rule system groups the words into noun phrases and verb groups and links them.

Conventions of the output (the hand-annotated ``tests/data/triplets_*.jsonl`` follow them):

* **Subject / object**: the noun phrase, lowercased, without determiners or possessive pronouns
  ("a little girl" -> "little girl", "his eyes" -> "eyes"); numbers, adjectives and noun compounds
  stay ("two young men", "table tennis"). "X of Y" is one phrase ("group of people"). A
  prepositional phrase after a subject is dropped ("a man in a red shirt" -> "man").
* **Predicate**: active verbs in their base form from a rule-based lemmatizer ("runs", "running",
  "ran" -> "run"). Passive verbs keep their past participle, because the base form would read as
  an active verb with the wrong subject ("a candle is being lit" -> ("candle", "lit", "")).
  The copula is "be" ("the sky is blue" -> ("sky", "be", "blue")). A particle stays with its verb
  ("pick up", "fall over"). Chains collapse to the last verb: "is trying to open a jar",
  "shows how to make a cake", "starts singing" -> "open", "make", "sing".
* **Prepositional objects**: when the verb has no direct object, its first prepositional phrase
  gives the object and the preposition joins the predicate: "a man walks on the beach" ->
  ("man", "walk on", "beach"). With a direct object, later prepositional phrases are dropped:
  "a person is connecting something to system" -> ("person", "connect", "something").
* **Object** is ``""`` for an intransitive verb ("a baby is crying" -> ("baby", "cry", "")).
* **Coordination** gives one triplet per conjunct: "a man sings and dances" -> (man, sing),
  (man, dance); "a man and a woman dance" -> (man, dance), (woman, dance); "a fondant baby and
  flower" as object -> one triplet per object.
* **there is/are**: "there is a man talking to a woman" -> ("man", "talk to", "woman"); without a
  verb, "there are two cats on the bed" -> ("two cats", "be on", "bed"), "there is a car" ->
  ("car", "be", "").
* **Relative and participle clauses** attach to the noun they modify: "a man wearing a hat is
  singing" -> ("man", "wear", "hat"), ("man", "sing", "").
* Captions without a verb ("a red car on the road"), and verbs without a subject ("cooking a
  pizza"), give no triplet. Negation and adverbs are dropped ("is not barking" -> "bark").

Parsing is deterministic, needs no NLTK download with the default ``backend="lexicon"``, and runs at
several thousand captions per second on one core (the lexicon is read once per process, on first use).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from . import triplet_rules as rules

BACKENDS = ("lexicon", "nltk")
NLTK_TAGGER_RESOURCE = "averaged_perceptron_tagger_eng"

_SENTENCE_BOUNDARY = re.compile(r"[.!?]+(?=\s|$)|\n+")
_TOKEN_PATTERN = re.compile(r"\d+(?:[.,]\d+)+|[a-z0-9]+(?:[-'][a-z0-9]+)*|[.!?;,:]")
_CONTRACTIONS = {"n't": "not", "'re": "are", "'m": "am", "'ll": "will", "'ve": "have", "'d": "would"}
_NEGATED_AUXILIARIES = {"can't": "can", "won't": "will", "cannot": "can"}
_IS_CONTRACTING_WORDS = frozenset({"it", "he", "she", "that", "there", "what", "who", "here", "this"})

_ALWAYS_SUBORDINATORS = frozenset({"while", "because", "whereas", "although", "though", "when", "until", "unless", "if", "so", "whilst"})
_CLAUSE_OR_PREPOSITION = frozenset({"after", "before", "as", "since", "once"})
_COORDINATORS = frozenset({"and", "or", "but", "then", "&", "nor", "plus"})
_RELATIVE_PRONOUNS = frozenset({"who", "which", "that", "whom"})
_DETERMINERS = frozenset(
    {"a", "an", "the", "this", "that", "these", "those", "some", "any", "each", "every", "another", "all",
     "both", "either", "neither", "no", "his", "her", "their", "its", "my", "your", "our", "whose", "such"}
)
_OBJECT_PRONOUN_FORMS = frozenset({"her", "this", "that", "these", "those", "all", "both", "some", "each", "another", "one"})
_SENTENCE_PUNCTUATION = frozenset({".", "!", "?"})
_CLAUSE_PUNCTUATION = frozenset({",", ";", ":"})


class TaggerDataMissingError(LookupError):
    """NLTK's tagger data is needed by ``backend="nltk"`` and is not installed."""


class Triplet(NamedTuple):
    """One (subject, predicate, object) triplet; ``object`` is ``""`` for an intransitive verb."""

    subject: str
    predicate: str
    object: str

    @property
    def phrase(self) -> str:
        """``"subject predicate object"`` joined with single spaces, without a trailing space."""
        return " ".join(part for part in (self.subject, self.predicate, self.object) if part)


@dataclass
class _Unit:
    """A chunk of a sentence: a noun phrase, verb group, preposition, particle or boundary."""

    kind: str  # NP, VG, P, PRT, ADJ, CC, BOUND, REL, EX
    text: str
    role: str | None = None  # NP: "subject" or "object" once linked
    owner: int | None = None  # NP: index of the verb group that took it as object
    voice: str = "active"  # VG: active, passive or copula
    finite: bool = True  # VG
    in_relative: bool = False  # VG
    subjects: list[int] = field(default_factory=list)  # VG: indices of its subject NPs


def split_sentences(text: str) -> list[str]:
    """Sentences of a caption or paragraph (DiDeMo), split at ``. ! ?`` followed by a space or the end."""
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


def _starts_noun_phrase(tokens: list[str], tags: list[str], index: int) -> bool:
    if index >= len(tokens):
        return False
    tag = tags[index]
    word = tokens[index]
    return (
        tag in rules.NOUN_TAGS
        or tag in rules.ADJECTIVE_TAGS
        or tag in ("CD", "PRP", "PRP$", "DT", "PDT")
        or word in _DETERMINERS
        or word in rules.SUBJECT_PRONOUNS
    )


class _SentenceChunker:
    """Groups one tagged sentence into :class:`_Unit` chunks."""

    def __init__(self, tokens: list[str], tags: list[str]):
        self.tokens = tokens
        self.tags = tags
        self.units: list[_Unit] = []

    def _is_verb(self, index: int) -> bool:
        return index < len(self.tokens) and (
            self.tags[index] in rules.VERB_TAGS or self.tokens[index] in rules.BE_FORMS or self.tokens[index] in rules.HAVE_FORMS
        )

    def chunk(self) -> list[_Unit]:
        tokens, tags = self.tokens, self.tags
        index = 0
        while index < len(tokens):
            word, tag = tokens[index], tags[index]
            if word in _CLAUSE_PUNCTUATION or word in _SENTENCE_PUNCTUATION or word in _ALWAYS_SUBORDINATORS:
                self._add_boundary(word)
                index += 1
            elif word in _COORDINATORS or tag == "CC":
                if not (self.units and self.units[-1].kind == "CC"):
                    self.units.append(_Unit("CC", word))
                index += 1
            elif word == "there" and index + 1 < len(tokens) and tokens[index + 1] in rules.BE_FORMS:
                self.units.append(_Unit("EX", word))
                index += 1
            elif word in _RELATIVE_PRONOUNS and self._is_relative(index):
                self.units.append(_Unit("REL", word))
                index += 1
            elif word in ("how", "what") and self._to_infinitive_at(index + 1):
                index = self._verb_group(index + 2)
            elif self._is_verb(index) and not self._is_premodifier(index):
                index = self._verb_group(index)
            elif word == "to" and self._to_infinitive_at(index):
                index = self._verb_group(index + 1)
            elif tag in ("IN", "TO") or (tag == "RP" and word not in rules.PARTICLE_WORDS):
                index = self._preposition(index)
            elif tag == "RP" or (tag.startswith("RB") and word in rules.PARTICLE_WORDS):
                self.units.append(_Unit("PRT", word))
                index += 1
            elif _starts_noun_phrase(tokens, tags, index):
                index = self._noun_phrase(index)
            else:
                index += 1  # adverbs, interjections, symbols carry no triplet role
        return self.units

    def _add_boundary(self, word: str) -> None:
        if not (self.units and self.units[-1].kind == "BOUND"):
            self.units.append(_Unit("BOUND", word))

    def _is_relative(self, index: int) -> bool:
        previous_is_noun = bool(self.units) and self.units[-1].kind == "NP"
        return previous_is_noun and (self._is_verb(index + 1) or (index + 1 < len(self.tags) and self.tags[index + 1].startswith("RB")))

    def _to_infinitive_at(self, index: int) -> bool:
        return (
            index + 1 < len(self.tokens)
            and self.tokens[index] == "to"
            and self.tags[index + 1] in ("VB", "VBP")
        )

    def _is_premodifier(self, index: int) -> bool:
        """A participle inside a noun phrase: "a *frying* pan", "two *dancing* girls"."""
        if self.tags[index] not in ("VBG", "VBN"):
            return False
        if index == 0 or index + 1 >= len(self.tokens):
            return False
        previous_word, previous_tag = self.tokens[index - 1], self.tags[index - 1]
        next_tag = self.tags[index + 1]
        opens_phrase = previous_word in _DETERMINERS or previous_tag in rules.ADJECTIVE_TAGS or previous_tag in ("CD", "PRP$", "DT")
        return opens_phrase and (next_tag in rules.NOUN_TAGS or next_tag in rules.ADJECTIVE_TAGS)

    def _preposition(self, index: int) -> int:
        word = self.tokens[index]
        following = index + 1
        if not _starts_noun_phrase(self.tokens, self.tags, following):
            self.units.append(_Unit("PRT", word))
            return following
        if word in _CLAUSE_OR_PREPOSITION and self._noun_phrase_then_finite_verb(following):
            self._add_boundary(word)
            return following
        self.units.append(_Unit("P", word))
        return following

    def _noun_phrase_then_finite_verb(self, index: int) -> bool:
        probe = _SentenceChunker(self.tokens, self.tags)
        end = probe._noun_phrase(index)
        return end < len(self.tokens) and (self.tags[end] in rules.FINITE_VERB_TAGS or self.tokens[end] in rules.BE_FORMS)

    def _verb_group(self, index: int) -> int:
        tokens, tags = self.tokens, self.tags
        verb_positions: list[int] = []
        while index < len(tokens):
            if self._is_verb(index):
                if verb_positions and not self._continues_verb_chain(verb_positions[-1], index):
                    break
                verb_positions.append(index)
                index += 1
            elif verb_positions and tags[index].startswith("RB") and tokens[index] not in rules.PARTICLE_WORDS and self._is_verb(index + 1):
                index += 1
            elif verb_positions and tokens[index] in ("how", "what") and self._to_infinitive_at(index + 1):
                index += 2
                verb_positions.append(index)
                index += 1
            elif verb_positions and self._to_infinitive_at(index):
                index += 1
                verb_positions.append(index)
                index += 1
            else:
                break
        if not verb_positions:
            return index + 1
        self.units.append(self._describe_verb_group(verb_positions, index))
        return index

    def _continues_verb_chain(self, previous: int, current: int) -> bool:
        """Whether the verb at ``current`` belongs to the group ending at ``previous``."""
        previous_word = self.tokens[previous]
        if previous_word in rules.BE_FORMS or previous_word in rules.HAVE_FORMS or self.tags[previous] == "MD":
            return True
        if previous_word in ("do", "does", "did") or previous_word in rules.PASSIVE_AUXILIARIES:
            return True
        # "starts singing": the -ing verb carries the meaning.
        return self.tags[current] == "VBG" and rules.lemmatize_verb(previous_word) in rules.CATENATIVE_VERBS

    def _describe_verb_group(self, verb_positions: list[int], end: int) -> _Unit:
        tokens, tags = self.tokens, self.tags
        main = verb_positions[-1]
        main_word, main_tag = tokens[main], tags[main]
        first = verb_positions[0]
        finite = tags[first] in rules.FINITE_VERB_TAGS or tokens[first] in ("is", "are", "was", "were", "am", "has", "have", "had")
        auxiliaries = [tokens[position] for position in verb_positions[:-1]]
        if main_word in rules.BE_FORMS:
            return _Unit("VG", "be", voice="copula", finite=finite)
        passive_by_auxiliary = main_tag in ("VBN", "VBD") and bool(auxiliaries) and auxiliaries[-1] in rules.PASSIVE_AUXILIARIES
        reduced_passive = len(verb_positions) == 1 and (
            main_tag == "VBN" or (main_tag == "VBD" and end < len(tokens) and tokens[end] == "by")
        )
        if passive_by_auxiliary or reduced_passive:
            return _Unit("VG", main_word, voice="passive", finite=finite and not reduced_passive)
        return _Unit("VG", rules.lemmatize_verb(main_word), voice="active", finite=finite)

    def _noun_phrase(self, index: int) -> int:
        tokens, tags = self.tokens, self.tags
        start = index
        determiners: list[str] = []
        while index < len(tokens) and (tokens[index] in _DETERMINERS or tags[index] in ("DT", "PDT", "PRP$")):
            determiners.append(tokens[index])
            index += 1
        words: list[str] = []
        has_noun = False
        while index < len(tokens):
            word, tag = tokens[index], tags[index]
            next_tag = tags[index + 1] if index + 1 < len(tokens) else "."
            if tag in rules.NOUN_TAGS:
                words.append(word)
                has_noun = True
            elif (tag in rules.ADJECTIVE_TAGS or tag == "CD") and not has_noun:
                words.append(word)
            elif tag == "POS" and words:
                words[-1] += "'s"
                has_noun = False
            elif tag in ("VBG", "VBN") and not has_noun and (words or determiners) and (next_tag in rules.NOUN_TAGS or next_tag in rules.ADJECTIVE_TAGS):
                words.append(word)
            elif tag == "CC" and words and not has_noun and tags[index - 1] in rules.ADJECTIVE_TAGS and next_tag in rules.ADJECTIVE_TAGS:
                words.append(word)
            elif (tag == "PRP" or word in rules.SUBJECT_PRONOUNS) and not words and not determiners:
                words.append(word)
                has_noun = True
                index += 1
                break
            else:
                break
            index += 1
        if not words:
            if not determiners:
                return start + 1
            words = [determiners[-1]]  # "this is ...", "picks her up"
            has_noun = True
        if not has_noun and not determiners and not (self.units and self.units[-1].kind == "P"):
            # A bare adjective is a complement ("is blue"), but after a preposition it names
            # something ("a man in red").
            self.units.append(_Unit("ADJ", " ".join(words)))
            return index
        if index + 1 < len(tokens) and tokens[index] == "of" and _starts_noun_phrase(tokens, tags, index + 1):
            units_before = len(self.units)
            end = self._noun_phrase(index + 1)
            if len(self.units) == units_before + 1 and self.units[-1].kind == "NP":
                tail = self.units.pop()
                self.units.append(_Unit("NP", " ".join(words) + " of " + tail.text))
                return end
            del self.units[units_before:]
        self.units.append(_Unit("NP", " ".join(words)))
        return index


class _TripletLinker:
    """Links the units of one sentence into triplets."""

    def __init__(self, units: list[_Unit]):
        self.units = units
        self.triplets: list[Triplet] = []
        self._seen: set[Triplet] = set()

    def _kind(self, index: int) -> str:
        return self.units[index].kind if 0 <= index < len(self.units) else ""

    def link(self) -> list[Triplet]:
        for index, unit in enumerate(self.units):
            if unit.kind != "VG":
                continue
            if unit.voice == "copula" and self._kind(index - 1) == "EX":
                self._link_there_construction(index)
                continue
            unit.subjects = self._find_subjects(index)
            if not unit.subjects:
                continue
            for subject in unit.subjects:
                self.units[subject].role = "subject"
            predicate, objects = self._find_objects(index)
            if unit.voice == "copula" and objects == [""]:
                continue
            self._emit(unit.subjects, predicate, objects)
        return self.triplets

    def _emit(self, subjects: list[int], predicate: str, objects: list[str]) -> None:
        for subject in subjects:
            for obj in objects:
                triplet = Triplet(self.units[subject].text, predicate, obj)
                if triplet not in self._seen:
                    self._seen.add(triplet)
                    self.triplets.append(triplet)

    def _link_there_construction(self, index: int) -> None:
        if self._kind(index + 1) != "NP":
            return
        subjects = self._forward_group(index + 1)
        for subject in subjects:
            self.units[subject].role = "subject"
        after = subjects[-1] + 1
        if self._kind(after) in ("VG", "REL"):
            return  # "there is a man talking ...": the next verb group takes the noun phrase
        if self._kind(after) == "P" and self._kind(after + 1) == "NP":
            objects = self._forward_group(after + 1)
            self._take_objects(objects, index)
            self._emit(subjects, "be " + self.units[after].text, [self.units[o].text for o in objects])
        else:
            self._emit(subjects, "be", [""])

    def _backward_group(self, index: int) -> list[int]:
        """Free noun phrases coordinated before and including ``index`` ("a man and a woman")."""
        group = [index]
        while (
            self._kind(group[0] - 1) in ("CC", "BOUND")
            and self.units[group[0] - 1].text in (",", "and", "or", "&")
            and self._kind(group[0] - 2) == "NP"
            and self.units[group[0] - 2].role is None
            and self._kind(group[0] - 3) != "P"
        ):
            group.insert(0, group[0] - 2)
        return group

    def _forward_group(self, index: int) -> list[int]:
        """Noun phrases coordinated from ``index`` on, stopping before one that starts a new clause."""
        group = [index]
        while (
            self._kind(group[-1] + 1) in ("CC", "BOUND")
            and self.units[group[-1] + 1].text in (",", "and", "or", "&")
            and self._kind(group[-1] + 2) == "NP"
            and self._kind(group[-1] + 3) not in ("VG", "REL")
        ):
            group.append(group[-1] + 2)
        return group

    def _previous_verb_group(self, index: int) -> _Unit | None:
        for position in range(index - 1, -1, -1):
            if self.units[position].kind == "VG" and self.units[position].subjects:
                return self.units[position]
        return None

    def _find_subjects(self, index: int) -> list[int]:
        unit = self.units[index]
        before = index - 1
        kind = self._kind(before)
        if kind == "REL" and self._kind(before - 1) == "NP":
            unit.in_relative = True
            return self._backward_group(before - 1)
        if kind == "CC" or (kind == "BOUND" and self.units[before].text == ","):
            previous = self._previous_verb_group(index)
            return list(previous.subjects) if previous else []
        if kind != "NP":
            return []
        candidate = self.units[before]
        if candidate.role == "object" and candidate.owner is not None:
            owner = self.units[candidate.owner]
            if unit.finite and (not owner.finite or owner.in_relative):
                return list(owner.subjects)
            return [before]
        # Skip prepositional phrases that modify the subject: "a man in a red shirt is singing".
        root = before
        while self._kind(root - 1) == "P" and self._kind(root - 2) == "NP":
            root -= 2
        if root != before and self.units[root].role is None:
            return self._backward_group(root)
        return self._backward_group(before)

    def _take_objects(self, objects: list[int], owner: int) -> None:
        for obj in objects:
            self.units[obj].role = "object"
            self.units[obj].owner = owner

    def _find_objects(self, index: int) -> tuple[str, list[str]]:
        unit = self.units[index]
        predicate = [unit.text]
        position = index + 1
        while self._kind(position) == "PRT":
            predicate.append(self.units[position].text)
            position += 1
        kind = self._kind(position)
        if kind == "NP":
            objects = self._forward_group(position)
        elif kind == "P" and self._kind(position + 1) == "NP":
            predicate.append(self.units[position].text)
            objects = self._forward_group(position + 1)
        elif kind == "ADJ":
            return " ".join(predicate), [self.units[position].text]
        else:
            return " ".join(predicate), [""]
        self._take_objects(objects, index)
        return " ".join(predicate), [self.units[obj].text for obj in objects]


class TripletParser:
    """Parses captions into :class:`Triplet` lists; see the module docstring for the conventions.

    Args:
        backend: ``"lexicon"`` (default): Brill's lexicon shipped with the package, no NLTK data
            needed. ``"nltk"``: ``nltk.pos_tag`` (needs the ``averaged_perceptron_tagger_eng`` data;
            raises :class:`TaggerDataMissingError` when it is missing, never falls back silently).
            The same contextual corrections and linking rules run after either tagger.
        max_triplets: keep at most this many triplets per caption (in caption order); ``None`` keeps all.
    """

    def __init__(self, backend: str = "lexicon", max_triplets: int | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"TripletParser backend must be one of {BACKENDS}, got {backend!r}")
        if max_triplets is not None and (isinstance(max_triplets, bool) or not isinstance(max_triplets, int) or max_triplets < 1):
            raise ValueError(f"TripletParser max_triplets must be a positive int or None, got {max_triplets!r}")
        self.backend = backend
        self.max_triplets = max_triplets
        if backend == "nltk":
            self._tag_tokens = _nltk_tagger()
        else:
            self._tag_tokens = rules.lexicon_tagger().tag

    def parse(self, text: str) -> list[Triplet]:
        """Triplets of one caption or paragraph, in order of appearance, without duplicates.

        Args:
            text: a caption; several sentences are parsed one by one.
        """
        if not isinstance(text, str):
            raise TypeError(f"TripletParser.parse expects a str caption, got {type(text).__name__}")
        triplets: list[Triplet] = []
        seen: set[Triplet] = set()
        for sentence in split_sentences(text):
            tokens = tokenize(sentence)
            if not tokens:
                continue
            tags = rules.retag(tokens, [tag for _, tag in self._tag_tokens(tokens)])
            for triplet in _TripletLinker(_SentenceChunker(tokens, tags).chunk()).link():
                if triplet not in seen:
                    seen.add(triplet)
                    triplets.append(triplet)
            if self.max_triplets is not None and len(triplets) >= self.max_triplets:
                break
        return triplets if self.max_triplets is None else triplets[: self.max_triplets]

    def parse_batch(self, texts: list[str]) -> list[list[Triplet]]:
        """:meth:`parse` for each caption of ``texts`` (length B), returning B lists."""
        return [self.parse(text) for text in texts]

    def to_dict(self) -> dict:
        """JSON-serialisable settings, as saved in ``processor_config.json``."""
        return {"backend": self.backend, "max_triplets": self.max_triplets}

    @classmethod
    def from_dict(cls, settings: dict) -> "TripletParser":
        """Parser from :meth:`to_dict` output; unknown keys raise ``ValueError`` naming them."""
        if not isinstance(settings, dict):
            raise ValueError(f"TripletParser settings must be a dict, got {type(settings).__name__}")
        unknown = sorted(set(settings) - {"backend", "max_triplets"})
        if unknown:
            raise ValueError(f"Unknown TripletParser settings {unknown}; expected 'backend' and 'max_triplets'")
        return cls(**settings)

    def __repr__(self) -> str:
        return f"TripletParser(backend={self.backend!r}, max_triplets={self.max_triplets!r})"


def _nltk_tagger():
    import nltk

    try:
        nltk.data.find(f"taggers/{NLTK_TAGGER_RESOURCE}/")
    except LookupError:
        raise TaggerDataMissingError(
            f"TripletParser(backend='nltk') needs NLTK's '{NLTK_TAGGER_RESOURCE}' data, which is not installed. "
            f"Install it with `python -m nltk.downloader {NLTK_TAGGER_RESOURCE}` (or set NLTK_DATA to a folder "
            "holding it), or use backend='lexicon', which needs no download."
        ) from None
    return nltk.pos_tag


def triplet_f1(predicted: list[list[Triplet]], gold: list[list[tuple[str, str, str]]]) -> dict[str, float]:
    """Micro precision, recall and F1 of triplets over a corpus, matching on stemmed head words.

    A triplet's key is (last word of the subject, first word of the predicate, last word of the
    object or ""), each stemmed with NLTK's Porter stemmer; each gold triplet matches at most one
    prediction.

    Args:
        predicted: per caption, the parser's triplets (length N).
        gold: per caption, the annotated triplets as (subject, predicate, object) (length N).
    """
    if len(predicted) != len(gold):
        raise ValueError(f"triplet_f1 needs as many predicted lists as gold lists, got {len(predicted)} and {len(gold)}")
    from nltk.stem import PorterStemmer

    stemmer = PorterStemmer()

    def key(triplet) -> tuple[str, str, str]:
        subject, predicate, obj = triplet
        words = (subject.split()[-1:], predicate.split()[:1], obj.split()[-1:])
        return tuple(stemmer.stem(part[0]) if part else "" for part in words)

    true_positives = predicted_count = gold_count = 0
    for caption_predicted, caption_gold in zip(predicted, gold):
        remaining = [key(triplet) for triplet in caption_gold]
        gold_count += len(remaining)
        predicted_count += len(caption_predicted)
        for triplet in caption_predicted:
            predicted_key = key(triplet)
            if predicted_key in remaining:
                remaining.remove(predicted_key)
                true_positives += 1
    precision = true_positives / predicted_count if predicted_count else 0.0
    recall = true_positives / gold_count if gold_count else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
