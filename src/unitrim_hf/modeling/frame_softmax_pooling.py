"""TS2-Net's sentence-frame score: the cosine of the sentence with each frame, pooled over the frames with softmax
weights of the L2-normalized similarity vector.

For a text t and a video with frame similarities y_f = cos(s_t, frame_f) over its real frames,
`score = Σ_f softmax_f(scale · y_f / ‖y‖₂) · y_f`, the norm taken over the real frames, the softmax over them only
(scale 4 in TS2-Net). Unlike the attention-over-similarity pooling, the weights do not depend on a temperature but
on how the similarities compare to their own norm.
"""

from __future__ import annotations

import torch

TS2NET_FRAME_SOFTMAX_SCALE = 4.0
# Only guards the division of an all-zero similarity vector (TS2-Net's code divides by the plain norm).
_NORM_FLOOR = 1e-12


def frame_softmax_scores(
    sentence_embeds: torch.Tensor,
    frame_embeds: torch.Tensor,
    frame_mask: torch.Tensor | None,
    scale: float = TS2NET_FRAME_SOFTMAX_SCALE,
) -> torch.Tensor:
    """
    Args:
        sentence_embeds (`(num_texts, D)`): L2-normalized sentence features.
        frame_embeds (`(num_videos, T, D)`): L2-normalized frame features.
        frame_mask (`(num_videos, T)` bool, optional): true for real frames; None when all are real.
        scale: the factor inside the softmax.

    Returns:
        `(num_texts, num_videos)` scores.
    """
    similarity = torch.einsum("td,vfd->tvf", sentence_embeds, frame_embeds)
    if frame_mask is None:
        weights = similarity / similarity.norm(dim=-1, keepdim=True).clamp_min(_NORM_FLOOR)
    else:
        real = frame_mask[None].expand_as(similarity)
        masked = similarity * real.to(similarity.dtype)
        weights = masked / masked.norm(dim=-1, keepdim=True).clamp_min(_NORM_FLOOR)
        weights = weights.masked_fill(~real, float("-inf"))
    return (torch.softmax(scale * weights, dim=-1) * similarity).sum(dim=-1)
