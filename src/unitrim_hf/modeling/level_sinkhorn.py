"""UCoFiA's SK-norm at test time, level by level: each alignment level's logits get their own Sinkhorn-Knopp video
bias before the levels are averaged.

UCoFiA's evaluation scores a bank of training captions against the test videos at each of its three levels, runs
Sinkhorn-Knopp (4 iterations) on each of those (bank captions x test videos) logit matrices, and adds the log of
each video's column scaling (normalized to a log-distribution) to that level's test logits; the final logits are
the mean of the three biased levels. Normalizing the mean instead would give other numbers (the scaling is not
linear in the logits). Imports only torch.
"""

from __future__ import annotations

import torch

from .sinkhorn import DEFAULT_SINKHORN_ITERATIONS, sinkhorn_biases


def sinkhorn_normalized_level_logits(
    test_level_logits: dict[str, torch.Tensor],
    bank_level_logits: dict[str, torch.Tensor],
    num_iterations: int = DEFAULT_SINKHORN_ITERATIONS,
) -> torch.Tensor:
    """
    Args:
        test_level_logits: {level: (num_queries, num_videos)} each level's logits of the test captions, as
            `mgsa_scorer.alignment_logits` gives them (the logit scale included where the level carries it).
        bank_level_logits: {level: (num_bank_captions, num_videos)} the same levels for the bank captions
            against the same videos.
        num_iterations: Sinkhorn-Knopp iterations (UCoFiA: 4).

    Returns:
        (num_queries, num_videos) the mean over levels of `test + video bias of the level`.
    """
    if set(test_level_logits) != set(bank_level_logits) or not test_level_logits:
        raise ValueError(
            f"The test and bank logits must name the same levels, got {sorted(test_level_logits)} and "
            f"{sorted(bank_level_logits)}."
        )
    biased = []
    for level, test in test_level_logits.items():
        bank = bank_level_logits[level]
        if bank.dim() != 2 or test.dim() != 2 or bank.shape[1] != test.shape[1]:
            raise ValueError(
                f"Level {level!r}: the bank logits {tuple(bank.shape)} and test logits {tuple(test.shape)} must be "
                "(captions, videos) matrices over the same videos."
            )
        _, video_bias = sinkhorn_biases(bank, num_iterations)
        biased.append(test + video_bias[None, :].to(test.dtype))
    return torch.stack(biased).mean(dim=0)
