"""Word classes and Penn Treebank tag sets shared by the tagger, the chunker and the linker."""

from __future__ import annotations

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

# Determiners that are always followed by a noun phrase: a verb-tagged word right after one is a noun ("a walk").
NOUN_ONLY_DETERMINERS = frozenset(
    {"a", "an", "the", "his", "her", "their", "its", "my", "your", "our", "these", "those", "every", "each", "another"}
)
# Every word that may open a noun phrase as a determiner; the extra ones also stand alone as pronouns
# ("that dances", "all of them"), so they do not turn a following verb into a noun.
DETERMINERS = NOUN_ONLY_DETERMINERS | frozenset(
    {"this", "that", "some", "any", "all", "both", "either", "neither", "no", "whose", "such"}
)

# Verbs that take a second verb in -ing and add little meaning of their own ("starts singing").
CATENATIVE_VERBS = frozenset({"start", "begin", "keep", "stop", "continue", "finish", "go", "try", "like", "love", "enjoy", "quit"})

PARTICLE_WORDS = frozenset(
    {"up", "down", "out", "off", "away", "back", "around", "over", "in", "on", "along", "through", "apart", "together",
     "aside", "forward", "backward", "backwards", "outside", "inside", "home"}
)

# Clause structure: words that end a clause, coordinate, or introduce a relative clause.
ALWAYS_SUBORDINATORS = frozenset({"while", "because", "whereas", "although", "though", "when", "until", "unless", "if", "so", "whilst"})
CLAUSE_OR_PREPOSITION = frozenset({"after", "before", "as", "since", "once"})
COORDINATORS = frozenset({"and", "or", "but", "then", "&", "nor", "plus"})
RELATIVE_PRONOUNS = frozenset({"who", "which", "that", "whom"})
SENTENCE_PUNCTUATION = frozenset({".", "!", "?"})
CLAUSE_PUNCTUATION = frozenset({",", ";", ":"})
