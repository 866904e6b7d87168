"""Relevance: does a result match the query, or is it only the best of nothing?

A score alone cannot tell: the best item for a query unrelated to the collection still gets the highest score
of the collection, and some items score high with any text. The signal here is a **z-score against a bank of
generic captions**: each result's score for the query against the scores that generic sentences about everyday
scenes (`query_bank.GENERIC_CAPTIONS`, 48 of them) give the same item, scored the same way,

    z = (score(query, item) - mean_b score(b, item)) / std_b score(b, item).

A true match fits its item far better than "any sentence" does; the best of an unrelated collection does not.
(A z-score of the query's score against its scores over the rest of the collection did not separate them on
the synthetic benchmark, whose clips all look alike: see docs/search.md.) The label cuts z at two thresholds,
measured on the synthetic benchmark (`benchmarks/relevance_rates.py`):

    z >= MATCH_Z: "match";  WEAK_Z <= z < MATCH_Z: "weak";  z < WEAK_Z: "no match".
"""

from __future__ import annotations

import torch

MATCH = "match"
WEAK = "weak"
NO_MATCH = "no match"
LABELS = (MATCH, WEAK, NO_MATCH)

MATCH_Z = 3.0
WEAK_Z = 2.0
# Below this spread (identical scores for every generic caption) z is not defined.
MIN_SPREAD = 1e-6

LEGEND = (
    f"relevance z = how many standard deviations the query's score for the item stands above what generic "
    f"captions score for it; {MATCH} z >= {MATCH_Z:g}, {WEAK} {WEAK_Z:g} to {MATCH_Z:g}, {NO_MATCH} below {WEAK_Z:g}"
)


def bank_z(scores: torch.Tensor, bank_scores: torch.Tensor) -> torch.Tensor:
    """
    Z-scores of each item's query score against the bank's scores of the same item.

    Args:
        scores: (num_items,) the query's scores of the items.
        bank_scores: (num_bank, num_items) the bank captions' scores of the same items, scored the same way.

    Returns:
        (num_items,) float64 z-scores; NaN for an item whose bank scores have no spread (or fewer than 2).
    """
    scores = scores.detach().reshape(-1).to(torch.float64)
    bank_scores = bank_scores.detach().to(torch.float64)
    if bank_scores.ndim != 2 or bank_scores.shape[1] != scores.numel():
        raise ValueError(f"bank scores of shape {tuple(bank_scores.shape)} for {scores.numel()} items")
    if bank_scores.shape[0] < 2:
        return torch.full_like(scores, float("nan"))
    spread = bank_scores.std(dim=0)
    z = (scores - bank_scores.mean(dim=0)) / spread.clamp_min(MIN_SPREAD)
    return torch.where(spread < MIN_SPREAD, torch.full_like(z, float("nan")), z)


def relevance_label(z: float) -> str:
    """"match", "weak" or "no match" for a z-score (an undefined z, NaN, is "weak": nothing to compare with)."""
    if z != z:  # NaN
        return WEAK
    if z >= MATCH_Z:
        return MATCH
    if z >= WEAK_Z:
        return WEAK
    return NO_MATCH


__all__ = ["LABELS", "LEGEND", "MATCH", "MATCH_Z", "NO_MATCH", "WEAK", "WEAK_Z", "bank_z", "relevance_label"]
