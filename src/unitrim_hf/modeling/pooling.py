"""The pooling of multi-granularity semantic alignment (MGSA): how one alignment's scores are computed.

The scoring functions take L2-normalized features and return one cosine-like score per (text, visual) pair.
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


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0 where `mask` is true, -inf where it is false, in `dtype` (added to logits before a softmax)."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask.bool(), float("-inf"))


# torch's softmax over a short last dimension (frames, triplets) is several times slower than the same pooling
# spelled out with whole-tensor operations; from about this length on, it is faster.
SHORT_LAST_DIM = 16


def softmax_pool(scaled: torch.Tensor, mask_bias: torch.Tensor | None, dim: int) -> torch.Tensor:
    """
    Softmax-weighted sum along `dim` of temperature-scaled scores: `sum(softmax(scaled + mask_bias) * scaled)`
    (multiply by the temperature to get the pooled score itself).

    `mask_bias` (0 or -inf, broadcastable to `scaled`; None when every entry is valid) removes invalid entries;
    every slice along `dim` must keep at least one valid entry. Invalid entries get weight exactly 0, so their
    (finite) scores never contribute. Without autograd the weights are computed and multiplied in place (no
    second copy of a large tensor).
    """
    logits = scaled if mask_bias is None else scaled + mask_bias
    if torch.is_grad_enabled() and scaled.requires_grad:
        # Under autocast the softmax may come back in float32 while the scores stay in half precision.
        return torch.linalg.vecdot(torch.softmax(logits, dim=dim).to(scaled.dtype), scaled, dim=dim)
    if dim in (-1, scaled.dim() - 1) and scaled.shape[-1] <= SHORT_LAST_DIM:
        weights = (logits - logits.amax(dim, keepdim=True)).exp_()
        weights = weights.div_(weights.sum(dim, keepdim=True))
    else:
        weights = torch.softmax(logits, dim=dim).to(scaled.dtype)
    return weights.mul_(scaled).sum(dim)


def pool_scaled_similarity(
    scaled: torch.Tensor, text_mask: torch.Tensor | None, visual_mask: torch.Tensor | None
) -> torch.Tensor:
    """
    `attention_over_similarity_matrix` of similarities already divided by the temperature, also divided by it.

    Args:
        scaled: (num_texts, text_length, num_visuals, visual_length) similarities / temperature.
        text_mask, visual_mask: as in `attention_over_similarity_matrix`.
    """
    # Each axis is pooled with the mask of that axis only: rows of padded units stay finite and are then
    # removed by the second pooling. Masks enter as broadcast additive biases (no copy of the 4-D tensor).
    text_bias = None if text_mask is None else additive_mask(text_mask, scaled.dtype)
    visual_bias = None if visual_mask is None else additive_mask(visual_mask, scaled.dtype)
    text_length, visual_length = scaled.shape[1], scaled.shape[3]
    if visual_length == 1:  # both orders reduce to pooling over the text units
        return softmax_pool(scaled[..., 0], None if text_bias is None else text_bias[:, :, None], dim=1)
    per_text_unit = softmax_pool(scaled, None if visual_bias is None else visual_bias[None, None], dim=-1)
    text_to_visual = softmax_pool(per_text_unit, None if text_bias is None else text_bias[:, :, None], dim=1)
    if text_length == 1:  # both orders reduce to pooling over the visual units
        return text_to_visual
    per_visual_unit = softmax_pool(scaled, None if text_bias is None else text_bias[:, :, None, None], dim=1)
    visual_to_text = softmax_pool(per_visual_unit, None if visual_bias is None else visual_bias[None], dim=-1)
    return (text_to_visual + visual_to_text) / 2


def attention_over_similarity_matrix(
    similarity: torch.Tensor,
    text_mask: torch.Tensor | None,
    visual_mask: torch.Tensor | None,
    temperature: float,
) -> torch.Tensor:
    """
    Aggregate per-pair similarity matrices into one score per pair.

    Args:
        similarity: (num_texts, text_length, num_visuals, visual_length) cosine similarities (the layout a single
            matrix product of all text units with all visual units gives).
        text_mask: (num_texts, text_length) boolean, true for real text units (at least one per text); None when
            all are real.
        visual_mask: (num_visuals, visual_length) boolean, true for real visual units (at least one per visual);
            None when all are real.
        temperature: softmax temperature; small values approach max-pooling.

    Returns:
        (num_texts, num_visuals) scores: the mean of the text-to-visual and the visual-to-text pooling (each a
        softmax over `similarity / temperature` weighting `similarity`).
    """
    return pool_scaled_similarity(similarity / temperature, text_mask, visual_mask) * temperature


def cosine_scores(text_embeds: torch.Tensor, visual_embeds: torch.Tensor) -> torch.Tensor:
    """
    Cosine similarity of one text vector and one visual vector per pair.

    Args:
        text_embeds: (num_texts, dim), L2-normalized.
        visual_embeds: (num_visuals, dim), L2-normalized.

    Returns:
        (num_texts, num_visuals).
    """
    return text_embeds @ visual_embeds.t()


def trim_to_valid_span(units: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """
    Drop the leading and trailing unit positions that no row uses (e.g. SOT and shared padding); the mask becomes
    None when every remaining unit is real.

    Args:
        units: (batch, length, dim); mask: (batch, length) boolean with at least one true entry, or None.

    Returns:
        the units and mask restricted to the positions from the first to the last used one.
    """
    if mask is None:
        return units, None
    used = mask.any(dim=0).nonzero().flatten()
    first, last = int(used[0]), int(used[-1]) + 1
    if first != 0 or last != mask.shape[1]:
        units, mask = units[:, first:last], mask[:, first:last]
    return units, None if bool(mask.all()) else mask


def fine_grained_scores(
    text_units: torch.Tensor,
    text_mask: torch.Tensor | None,
    visual_units: torch.Tensor,
    visual_mask: torch.Tensor | None,
    temperature: float,
) -> torch.Tensor:
    """
    Score every (text, visual) pair from the similarities of their units.

    Args:
        text_units: (num_texts, text_length, dim), L2-normalized.
        text_mask: (num_texts, text_length) boolean; None when every unit is real.
        visual_units: (num_visuals, visual_length, dim), L2-normalized.
        visual_mask: (num_visuals, visual_length) boolean; None when every unit is real.
        temperature: pooling temperature of `attention_over_similarity_matrix`.

    Returns:
        (num_texts, num_visuals).
    """
    text_mask = None if text_mask is None else text_mask.bool()
    visual_mask = None if visual_mask is None else visual_mask.bool()
    if not torch.compiler.is_compiling():  # data-dependent shapes: a speed-up in eager mode only (exact either way)
        text_units, text_mask = trim_to_valid_span(text_units, text_mask)
        visual_units, visual_mask = trim_to_valid_span(visual_units, visual_mask)
    num_texts, text_length, dim = text_units.shape
    num_visuals, visual_length, _ = visual_units.shape
    # One matrix product of all text units (pre-divided by the temperature, a small tensor) with all visual units,
    # viewed as (texts, text units, visuals, visual units): the softmax logits themselves, with no extra pass.
    scaled = ((text_units / temperature).reshape(-1, dim) @ visual_units.reshape(-1, dim).t()).view(
        num_texts, text_length, num_visuals, visual_length
    )
    return pool_scaled_similarity(scaled, text_mask, visual_mask) * temperature


def l2_normalize(features: torch.Tensor) -> torch.Tensor:
    """L2-normalize along the last dimension; a zero vector (padding) stays zero, also in float16, whose smallest
    normal number is far above the default epsilon of 1e-12."""
    return F.normalize(features, dim=-1, eps=torch.finfo(features.dtype).tiny)
