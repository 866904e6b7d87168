"""Scoring functions of multi-granularity semantic alignment (MGSA).

Every function takes L2-normalised features and returns one cosine-like score per (text, visual) pair.
The fine-grained ones build a similarity matrix between the text units (words, triplets or the sentence) and
the visual units (patches, frames or the video) of each pair and aggregate it with attention over the
similarity matrix: softmax-weighted pooling along one axis, then along the other, with masks respected, and the
two orders (text first, visual first) averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """
    Mean of `values` over `dim`, counting only entries where `mask` is true.

    Args:
        values: (..., length, ...) tensor; `mask` broadcasts against it after unsqueezing trailing dims.
        mask: boolean or 0/1 tensor with the leading dims of `values` up to and including `dim`.
        dim: the reduced dimension. A row with no valid entry gives 0 (callers validate masks beforehand).
    """
    mask = mask.to(values.dtype)
    while mask.dim() < values.dim():
        mask = mask.unsqueeze(-1)
    total = (values * mask).sum(dim)
    count = mask.sum(dim).clamp(min=1.0)
    return total / count


def _masked_softmax_pool(scores: torch.Tensor, mask: torch.Tensor, dim: int, temperature: float) -> torch.Tensor:
    """Softmax-weighted sum of `scores` along `dim`, weights `softmax(scores / temperature)` over valid entries."""
    masked_scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(masked_scores / temperature, dim=dim)
    return (weights * scores.masked_fill(~mask, 0.0)).sum(dim)


def attention_over_similarity_matrix(
    similarity: torch.Tensor,
    text_mask: torch.Tensor,
    visual_mask: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """
    Aggregate a per-pair similarity matrix into one score per pair.

    Args:
        similarity: (num_texts, num_visuals, text_length, visual_length) cosine similarities.
        text_mask: (num_texts, text_length) boolean, true for real text units.
        visual_mask: (num_visuals, visual_length) boolean, true for real visual units.
        temperature: softmax temperature; small values approach max-pooling.

    Returns:
        (num_texts, num_visuals) scores: the mean of the text-to-visual and the visual-to-text pooling.
    """
    # Pool each axis with the mask of that axis only, so rows of padded units stay finite; they are then
    # excluded by the second pooling.
    visual_valid = visual_mask[None, :, None, :].expand_as(similarity)
    text_valid = text_mask[:, None, :, None].expand_as(similarity)

    per_text_unit = _masked_softmax_pool(similarity, visual_valid, dim=-1, temperature=temperature)
    text_to_visual = _masked_softmax_pool(
        per_text_unit, text_mask[:, None, :].expand_as(per_text_unit), dim=-1, temperature=temperature
    )

    per_visual_unit = _masked_softmax_pool(similarity, text_valid, dim=-2, temperature=temperature)
    visual_to_text = _masked_softmax_pool(
        per_visual_unit, visual_mask[None, :, :].expand_as(per_visual_unit), dim=-1, temperature=temperature
    )
    return (text_to_visual + visual_to_text) / 2


def global_similarity(text_embeds: torch.Tensor, visual_embeds: torch.Tensor) -> torch.Tensor:
    """
    Cosine similarity of one text vector and one visual vector per pair.

    Args:
        text_embeds: (num_texts, dim), L2-normalised.
        visual_embeds: (num_visuals, dim), L2-normalised.

    Returns:
        (num_texts, num_visuals).
    """
    return text_embeds @ visual_embeds.t()


def fine_grained_similarity(
    text_units: torch.Tensor,
    text_mask: torch.Tensor,
    visual_units: torch.Tensor,
    visual_mask: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """
    Score every (text, visual) pair from the similarities of their units.

    Args:
        text_units: (num_texts, text_length, dim), L2-normalised.
        text_mask: (num_texts, text_length) boolean.
        visual_units: (num_visuals, visual_length, dim), L2-normalised.
        visual_mask: (num_visuals, visual_length) boolean.
        temperature: pooling temperature of `attention_over_similarity_matrix`.

    Returns:
        (num_texts, num_visuals).
    """
    similarity = torch.einsum("ald,bvd->ablv", text_units, visual_units)
    return attention_over_similarity_matrix(similarity, text_mask.bool(), visual_mask.bool(), temperature)


def l2_normalize(features: torch.Tensor) -> torch.Tensor:
    """L2-normalise along the last dimension (a zero vector stays zero)."""
    return F.normalize(features, dim=-1)
