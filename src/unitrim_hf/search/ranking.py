"""The search's one ranking rule: the highest score first, equal scores by the lower row id."""

from __future__ import annotations

from typing import Sequence

import torch


def best_first(scores: torch.Tensor, row_ids: Sequence[int], top_k: int) -> list[int]:
    """
    Positions of the `top_k` best of `scores`, best first; equal scores rank the lower row id first.

    Only the scores at or above the `top_k`-th largest (found by `torch.topk`) are sorted, so ranking a whole
    index for a top-10 sorts about 10 items, not all of them.

    Args:
        scores: (num_items,) the scores (compared as float64: exact for float32 and Python floats).
        row_ids: (num_items,) each item's row id in the index.
        top_k: how many positions to return (fewer when there are fewer items).
    """
    scores = scores.detach().reshape(-1).to(torch.float64)
    if len(row_ids) != scores.numel():
        raise ValueError(f"{scores.numel()} scores for {len(row_ids)} row ids")
    if top_k < 1 or scores.numel() == 0:
        return []
    if top_k < scores.numel():
        kth_best = torch.topk(scores, top_k).values[-1]
        contenders = torch.nonzero(scores >= kth_best).flatten()
    else:
        contenders = torch.arange(scores.numel())
    ranked = sorted(zip((-scores[contenders]).tolist(), (row_ids[i] for i in contenders.tolist()), contenders.tolist()))
    return [position for _, _, position in ranked[:top_k]]


__all__ = ["best_first"]
