"""Why a result matched: the query's triplets, the best-matching frame, and the words / triplet that match it.

Frame relevance, for each real frame f of the item (all vectors L2-normalized, cosines):
the mean of cos(sentence, f), max over words of cos(word, f) (when the model has word features) and max over
the query's parsed triplets of cos(triplet, f) (when it has any). The best frame maximises it; its words and
triplet are then ranked by their cosine with that frame. Words are reported whole (CLIP's BPE pieces joined, a
word's score the mean cosine of its pieces) and without function words ("a", "while": see `query_words`); SOT,
EOT and padding tokens are never reported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from ..modeling.modeling_outputs import UniTriMVisualFeatures
from ..modeling.pooling import l2_normalize
from .query import EncodedQuery
from .query_words import content_words

WORDS_REPORTED = 3


@dataclass
class WordMatch:
    """
    A whole word of the query and how well it matches the best frame.

    Args:
        word: the word (its BPE pieces joined, lower case as the tokenizer normalized it).
        positions: (num_pieces,) positions of its pieces in the tokenized query.
        score: the mean cosine of its pieces' word features with the best frame.
    """

    word: str
    positions: list[int]
    score: float


@dataclass
class Explanation:
    """
    Args:
        triplets: the query's parsed (subject, predicate, object) triplets.
        best_frame: slot (0-based, in sampled order) of the best-matching frame.
        best_frame_timestamp: its presentation time in seconds from the start of the video (0 for images).
        frame_scores: relevance of each real frame (see the module docstring).
        top_words: the query's content words closest to the best frame, best first (at most 3, each once).
        best_triplet: the parsed triplet closest to the best frame (None when the query has no triplet or the
            model no triplet features).
        best_triplet_score: its cosine with the best frame.
    """

    triplets: list[tuple[str, str, str]]
    best_frame: int
    best_frame_timestamp: float
    frame_scores: list[float]
    top_words: list[WordMatch] = field(default_factory=list)
    best_triplet: tuple[str, str, str] | None = None
    best_triplet_score: float | None = None

    def to_dict(self) -> dict:
        values = asdict(self)
        values["triplets"] = [list(triplet) for triplet in self.triplets]
        values["best_triplet"] = list(self.best_triplet) if self.best_triplet is not None else None
        return values


def _top_words(query: EncodedQuery, positions: list[int], similarity: torch.Tensor, tokenizer) -> list[WordMatch]:
    """The content words of the query, best first by the mean cosine of their pieces with the best frame.

    Args:
        positions: (num_pieces,) query positions of the non-special tokens, in order.
        similarity: (num_pieces,) each of those pieces' cosine with the best frame.
    """
    tokens = tokenizer.convert_ids_to_tokens([int(query.input_ids[position]) for position in positions])
    row = {position: index for index, position in enumerate(positions)}
    best: dict[str, WordMatch] = {}
    for word in content_words(tokens, positions):
        score = round(float(similarity[[row[p] for p in word.positions]].mean()), 6)
        if word.text not in best or score > best[word.text].score:
            best[word.text] = WordMatch(word.text, word.positions, score)
    ranked = sorted(best.values(), key=lambda match: (-match.score, match.positions[0]))
    return ranked[:WORDS_REPORTED]


def explain_match(
    query: EncodedQuery, visual: UniTriMVisualFeatures, timestamps: torch.Tensor, tokenizer
) -> Explanation:
    """
    Explain one (query, item) match.

    Args:
        query: the encoded query (batch of 1).
        visual: the item's features (batch of 1, float32): `frame_embeds` (1, T, D), `video_mask` (1, T).
        timestamps: (T,) seconds of each frame slot (-1 for padding).
        tokenizer: the processor's tokenizer, to name the word positions.
    """
    text = query.features
    real_frames = visual.video_mask[0].bool().cpu()
    frames = l2_normalize(visual.frame_embeds[0].float().cpu())[real_frames]  # (num_real_frames, D)
    components = [frames @ l2_normalize(text.sentence_embeds[0].float().cpu())]

    word_similarity = None
    word_positions: list[int] = []
    if text.word_embeds is not None:
        special = set(tokenizer.all_special_ids)
        word_positions = [
            position for position, valid in enumerate(text.word_mask[0].tolist())
            if valid and int(query.input_ids[position]) not in special
        ]
        if word_positions:
            words = l2_normalize(text.word_embeds[0, word_positions].float().cpu())
            word_similarity = words @ frames.T  # (num_words, num_real_frames)
            components.append(word_similarity.max(dim=0).values)

    triplet_similarity = None
    if text.triplet_embeds is not None and query.triplets:
        count = min(len(query.triplets), text.triplet_embeds.shape[1])
        triplets = l2_normalize(text.triplet_embeds[0, :count].float().cpu())
        triplet_similarity = triplets @ frames.T  # (num_triplets, num_real_frames)
        components.append(triplet_similarity.max(dim=0).values)

    frame_scores = torch.stack(components).mean(dim=0)
    best = int(frame_scores.argmax())
    real_slots = real_frames.nonzero().flatten()
    explanation = Explanation(
        triplets=list(query.triplets),
        best_frame=int(real_slots[best]),
        best_frame_timestamp=float(timestamps[real_slots[best]]),
        frame_scores=[round(float(score), 6) for score in frame_scores],
    )
    if word_similarity is not None:
        explanation.top_words = _top_words(query, word_positions, word_similarity[:, best], tokenizer)
    if triplet_similarity is not None:
        scores = triplet_similarity[:, best]
        chosen = int(scores.argmax())
        explanation.best_triplet = tuple(query.triplets[chosen])
        explanation.best_triplet_score = round(float(scores[chosen]), 6)
    return explanation


__all__ = ["Explanation", "WordMatch", "explain_match"]
