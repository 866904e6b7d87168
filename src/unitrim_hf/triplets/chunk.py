"""Chunking: one tagged sentence into noun phrases, verb groups, prepositions, particles and clause boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field

from .lemmatize import lemmatize_verb
from .vocabulary import (
    ADJECTIVE_TAGS,
    ALWAYS_SUBORDINATORS,
    BE_FORMS,
    CATENATIVE_VERBS,
    CLAUSE_OR_PREPOSITION,
    CLAUSE_PUNCTUATION,
    COORDINATORS,
    DETERMINERS,
    FINITE_VERB_TAGS,
    HAVE_FORMS,
    NOUN_TAGS,
    PARTICLE_WORDS,
    PASSIVE_AUXILIARIES,
    RELATIVE_PRONOUNS,
    SENTENCE_PUNCTUATION,
    SUBJECT_PRONOUNS,
    VERB_TAGS,
)


@dataclass
class Unit:
    """A chunk of a sentence: a noun phrase, verb group, preposition, particle or boundary."""

    kind: str  # NP, VG, P, PRT, ADJ, CC, BOUND, REL, EX
    text: str
    role: str | None = None  # NP: "subject" or "object" once linked
    owner: int | None = None  # NP: index of the verb group that took it as object
    voice: str = "active"  # VG: active, passive or copula
    finite: bool = True  # VG
    in_relative: bool = False  # VG
    subjects: list[int] = field(default_factory=list)  # VG: indices of its subject NPs



def _starts_noun_phrase(tokens: list[str], tags: list[str], index: int) -> bool:
    if index >= len(tokens):
        return False
    tag = tags[index]
    word = tokens[index]
    return (
        tag in NOUN_TAGS
        or tag in ADJECTIVE_TAGS
        or tag in ("CD", "PRP", "PRP$", "DT", "PDT")
        or word in DETERMINERS
        or word in SUBJECT_PRONOUNS
    )


class SentenceChunker:
    """Groups one tagged sentence into [`Unit`] chunks."""

    def __init__(self, tokens: list[str], tags: list[str]):
        self.tokens = tokens
        self.tags = tags
        self.units: list[Unit] = []

    def _is_verb(self, index: int) -> bool:
        return index < len(self.tokens) and (
            self.tags[index] in VERB_TAGS or self.tokens[index] in BE_FORMS or self.tokens[index] in HAVE_FORMS
        )

    def chunk(self) -> list[Unit]:
        tokens, tags = self.tokens, self.tags
        index = 0
        while index < len(tokens):
            word, tag = tokens[index], tags[index]
            if word in CLAUSE_PUNCTUATION or word in SENTENCE_PUNCTUATION or word in ALWAYS_SUBORDINATORS:
                self._add_boundary(word)
                index += 1
            elif word in COORDINATORS or tag == "CC":
                if not (self.units and self.units[-1].kind == "CC"):
                    self.units.append(Unit("CC", word))
                index += 1
            elif word == "there" and index + 1 < len(tokens) and tokens[index + 1] in BE_FORMS:
                self.units.append(Unit("EX", word))
                index += 1
            elif word in RELATIVE_PRONOUNS and self._is_relative(index):
                self.units.append(Unit("REL", word))
                index += 1
            elif word in ("how", "what") and self._to_infinitive_at(index + 1):
                index = self._verb_group(index + 2)
            elif self._is_verb(index) and not self._is_premodifier(index):
                index = self._verb_group(index)
            elif word == "to" and self._to_infinitive_at(index):
                index = self._verb_group(index + 1)
            elif tag in ("IN", "TO") or (tag == "RP" and word not in PARTICLE_WORDS):
                index = self._preposition(index)
            elif tag == "RP" or (tag.startswith("RB") and word in PARTICLE_WORDS):
                self.units.append(Unit("PRT", word))
                index += 1
            elif _starts_noun_phrase(tokens, tags, index):
                index = self._noun_phrase(index)
            else:
                index += 1  # adverbs, interjections, symbols carry no triplet role
        return self.units

    def _add_boundary(self, word: str) -> None:
        if not (self.units and self.units[-1].kind == "BOUND"):
            self.units.append(Unit("BOUND", word))

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
        opens_phrase = previous_word in DETERMINERS or previous_tag in ADJECTIVE_TAGS or previous_tag in ("CD", "PRP$", "DT")
        return opens_phrase and (next_tag in NOUN_TAGS or next_tag in ADJECTIVE_TAGS)

    def _preposition(self, index: int) -> int:
        word = self.tokens[index]
        following = index + 1
        if not _starts_noun_phrase(self.tokens, self.tags, following):
            self.units.append(Unit("PRT", word))
            return following
        if word in CLAUSE_OR_PREPOSITION and self._noun_phrase_then_finite_verb(following):
            self._add_boundary(word)
            return following
        self.units.append(Unit("P", word))
        return following

    def _noun_phrase_then_finite_verb(self, index: int) -> bool:
        probe = SentenceChunker(self.tokens, self.tags)
        end = probe._noun_phrase(index)
        return end < len(self.tokens) and (self.tags[end] in FINITE_VERB_TAGS or self.tokens[end] in BE_FORMS)

    def _verb_group(self, index: int) -> int:
        tokens, tags = self.tokens, self.tags
        verb_positions: list[int] = []
        while index < len(tokens):
            if self._is_verb(index):
                if verb_positions and not self._continues_verb_chain(verb_positions[-1], index):
                    break
                verb_positions.append(index)
                index += 1
            elif verb_positions and tags[index].startswith("RB") and tokens[index] not in PARTICLE_WORDS and self._is_verb(index + 1):
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
        """Whether the verb at `current` belongs to the group ending at `previous`."""
        previous_word = self.tokens[previous]
        if previous_word in BE_FORMS or previous_word in HAVE_FORMS or self.tags[previous] == "MD":
            return True
        if previous_word in ("do", "does", "did") or previous_word in PASSIVE_AUXILIARIES:
            return True
        # "starts singing": the -ing verb carries the meaning.
        return self.tags[current] == "VBG" and lemmatize_verb(previous_word) in CATENATIVE_VERBS

    def _describe_verb_group(self, verb_positions: list[int], end: int) -> Unit:
        tokens, tags = self.tokens, self.tags
        main = verb_positions[-1]
        main_word, main_tag = tokens[main], tags[main]
        first = verb_positions[0]
        finite = tags[first] in FINITE_VERB_TAGS or tokens[first] in ("is", "are", "was", "were", "am", "has", "have", "had")
        auxiliaries = [tokens[position] for position in verb_positions[:-1]]
        if main_word in BE_FORMS:
            return Unit("VG", "be", voice="copula", finite=finite)
        passive_by_auxiliary = main_tag in ("VBN", "VBD") and bool(auxiliaries) and auxiliaries[-1] in PASSIVE_AUXILIARIES
        reduced_passive = len(verb_positions) == 1 and (
            main_tag == "VBN" or (main_tag == "VBD" and end < len(tokens) and tokens[end] == "by")
        )
        if passive_by_auxiliary or reduced_passive:
            return Unit("VG", main_word, voice="passive", finite=finite and not reduced_passive)
        return Unit("VG", lemmatize_verb(main_word), voice="active", finite=finite)

    def _noun_phrase(self, index: int) -> int:
        tokens, tags = self.tokens, self.tags
        start = index
        determiners: list[str] = []
        while index < len(tokens) and (tokens[index] in DETERMINERS or tags[index] in ("DT", "PDT", "PRP$")):
            determiners.append(tokens[index])
            index += 1
        words: list[str] = []
        has_noun = False
        while index < len(tokens):
            word, tag = tokens[index], tags[index]
            next_tag = tags[index + 1] if index + 1 < len(tokens) else "."
            if tag in NOUN_TAGS:
                words.append(word)
                has_noun = True
            elif (tag in ADJECTIVE_TAGS or tag == "CD") and not has_noun:
                words.append(word)
            elif tag == "POS" and words:
                words[-1] += "'s"
                has_noun = False
            elif tag in ("VBG", "VBN") and not has_noun and (words or determiners) and (next_tag in NOUN_TAGS or next_tag in ADJECTIVE_TAGS):
                words.append(word)
            elif tag == "CC" and words and not has_noun and tags[index - 1] in ADJECTIVE_TAGS and next_tag in ADJECTIVE_TAGS:
                words.append(word)
            elif (tag == "PRP" or word in SUBJECT_PRONOUNS) and not words and not determiners:
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
            self.units.append(Unit("ADJ", " ".join(words)))
            return index
        if index + 1 < len(tokens) and tokens[index] == "of" and _starts_noun_phrase(tokens, tags, index + 1):
            units_before = len(self.units)
            end = self._noun_phrase(index + 1)
            if len(self.units) == units_before + 1 and self.units[-1].kind == "NP":
                tail = self.units.pop()
                self.units.append(Unit("NP", " ".join(words) + " of " + tail.text))
                return end
            del self.units[units_before:]
        self.units.append(Unit("NP", " ".join(words)))
        return index


