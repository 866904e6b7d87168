"""Semantic triplets (subject, predicate, object) from video captions, offline, with NLTK.

A caption is cleaned of control characters, split into sentences and lowercased tokens (`tokenize`),
POS-tagged from context (`tagger`: Brill's lexicon, then Brill's contextual rules through
`nltk.tag.BrillTagger`; or NLTK's perceptron tagger when asked for), tag errors typical of captions are
corrected (`corrections`), and a small deterministic rule system groups the words into noun phrases and
verb groups (`chunk`) and links them into triplets (`link`). `metric` scores a parser against
annotated captions. Inside this package, modules import only each other, the standard library and NLTK, and
read data files only through `.assets.read_asset_text`, so the package can be copied beside a model.

Conventions of the output (the hand-annotated `tests/data/triplets_*.jsonl` follow them):

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
* **Directions and sides**: "left"/"right" right after a motion verb are its object ("a red square moves left"
  -> ("red square", "move", "left")); after a preposition they name a side ("stays on the left" ->
  ("...", "stay on", "left"), "in the top left" -> object "top left"). "up", "down" and the like are particles
  ("moves up" -> ("...", "move up", "")). "left" is the past of "leave" only after have/be or right after a
  subject that cannot itself be read as a verb ("the man left the room" -> ("man", "leave", "room")).
* **Object** is `""` for an intransitive verb ("a baby is crying" -> ("baby", "cry", "")).
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

Only the first `MAX_CAPTION_CHARACTERS` (8192) characters of a cleaned caption and the first `MAX_SENTENCE_WORDS`
(128) tokens of each sentence are parsed, so parsing time is linear in the input and bounded (a 1 MB caption
parses in milliseconds).

Parsing is deterministic, needs no NLTK download with the default `backend="lexicon"`, and runs at
a few thousand captions per second on one core (the lexicon and rules are read once per process, on first use).
"""

from .metric import triplet_f1
from ..errors import TaggerDataMissingError
from .parser import BACKENDS, MAX_CAPTION_CHARACTERS, MAX_SENTENCE_WORDS, TripletParser, truncate_caption
from .word_tokenizer import split_sentences, strip_control_characters, tokenize
from .triplet import Triplet

__all__ = [
    "BACKENDS",
    "MAX_CAPTION_CHARACTERS",
    "MAX_SENTENCE_WORDS",
    "TaggerDataMissingError",
    "Triplet",
    "TripletParser",
    "split_sentences",
    "strip_control_characters",
    "tokenize",
    "triplet_f1",
    "truncate_caption",
]
