"""Triplet precision, recall and F1 against hand-annotated captions."""

from __future__ import annotations

from nltk.stem import PorterStemmer

from .triplet import Triplet


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
