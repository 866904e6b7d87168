"""EERCF's two-stage retrieval: a cheap coarse score recalls each text's top-k videos, and a costlier fine score,
computed for those candidates only, orders them.

`two_stage_scores` returns a (num_texts, num_videos) matrix whose row order is the two-stage ranking: the k
candidates first, in the order of their fine scores (shifted by one constant so that they stay above every other
video), then the rest in the order of their coarse scores (unchanged). Imports only torch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# EERCF's fine re-ranking score (its evaluation, hard-coded there): a weighted sum of four TIB scores.
EERCF_FINE_WEIGHTS = {
    "sentence_frame_weak": 0.8,
    "sentence_frame_strong": 0.2,
    "sentence_patch_weak": 0.2,
    "sentence_video": 0.5,
}


def fine_score(scores: dict[str, torch.Tensor]) -> torch.Tensor:
    """The weighted sum `EERCF_FINE_WEIGHTS` of TIB scores of any one shape."""
    return sum(weight * scores[name] for name, weight in EERCF_FINE_WEIGHTS.items())


def top_k_candidates(coarse: torch.Tensor, top_k: int) -> torch.Tensor:
    """(num_texts, num_videos) coarse scores -> (num_texts, min(top_k, num_videos)) indices of the best videos."""
    if top_k < 1:
        raise ValueError(f"The two-stage retrieval needs top_k >= 1, got {top_k}.")
    return coarse.topk(min(top_k, coarse.shape[1]), dim=1).indices


def two_stage_scores(
    coarse: torch.Tensor, top_k: int, candidate_fine_scores: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """
    Args:
        coarse (`(num_texts, num_videos)`): the first-stage scores.
        top_k: candidates re-ranked per text.
        candidate_fine_scores: `(num_texts, k)` candidate video indices -> `(num_texts, k)` their fine scores.

    Returns:
        `(num_texts, num_videos)` scores ranking the candidates first, by fine score, then the rest by coarse score.
    """
    candidates = top_k_candidates(coarse, top_k)
    fine = candidate_fine_scores(candidates).to(coarse.dtype)
    if fine.shape != candidates.shape:
        raise ValueError(
            f"The fine scores must have the candidates' shape {tuple(candidates.shape)}, got {tuple(fine.shape)}."
        )
    # One shift for the whole matrix keeps every candidate above every non-candidate and the fine order inside.
    shift = coarse.max() - fine.min() + 1
    return coarse.scatter(1, candidates, fine + shift)
