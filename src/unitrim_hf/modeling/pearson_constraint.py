"""EERCF's intra-feature Pearson constraint: each embedding dimension of the texts should correlate, over the
batch, with the same dimension of their paired visual features.

With z_a and z_b the batch-standardized (N, D) text and visual features (mean 0, unbiased standard deviation 1 per
dimension) and c = z_aᵀ z_b / N their (D, D) cross-correlation matrix,
`loss = on_diagonal_weight · Σ_d (c_dd − 1)² + off_diagonal_weight · Σ_{d≠e} c_de²` (a Barlow-Twins-style
objective; EERCF's weights are 0.14 and 0). Imports only torch.
"""

from __future__ import annotations

import torch

EERCF_ON_DIAGONAL_WEIGHT = 0.14
EERCF_OFF_DIAGONAL_WEIGHT = 0.0


def batch_standardize(features: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, D) with mean 0 and unbiased standard deviation 1 in every column."""
    return (features - features.mean(dim=0)) / features.std(dim=0)


def pearson_constraint_loss(
    text_embeds: torch.Tensor,
    visual_embeds: torch.Tensor,
    on_diagonal_weight: float = EERCF_ON_DIAGONAL_WEIGHT,
    off_diagonal_weight: float = EERCF_OFF_DIAGONAL_WEIGHT,
) -> torch.Tensor:
    """
    Args:
        text_embeds (`(N, D)`), visual_embeds (`(N, D)`): row-paired features, N >= 2 (the standard deviation
            needs two rows).
        on_diagonal_weight, off_diagonal_weight: the weights of the two sums.

    Returns:
        `()` the loss.
    """
    if text_embeds.shape != visual_embeds.shape or text_embeds.dim() != 2 or text_embeds.shape[0] < 2:
        raise ValueError(
            "The Pearson constraint needs two (N, D) feature batches of the same shape with N >= 2, got "
            f"{tuple(text_embeds.shape)} and {tuple(visual_embeds.shape)}."
        )
    correlation = batch_standardize(text_embeds).T @ batch_standardize(visual_embeds) / text_embeds.shape[0]
    diagonal = torch.diagonal(correlation)
    on_diagonal = (diagonal - 1).pow(2).sum()
    off_diagonal = correlation.pow(2).sum() - diagonal.pow(2).sum()
    return on_diagonal_weight * on_diagonal + off_diagonal_weight * off_diagonal
