"""Top-K patch selection: keep the K most informative patches of each frame."""

from __future__ import annotations

import torch
from torch import nn


def select_top_k_patches(
    patch_embeds: torch.Tensor,
    patch_scores: torch.Tensor,
    top_k: int,
    straight_through: bool,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Keep the `top_k` highest-scoring patches of each frame, in their spatial order.

    Args:
        patch_embeds: (num_frames, num_patches, dim).
        patch_scores: (num_frames, num_patches) informativeness scores.
        top_k: patches kept per frame (<= num_patches).
        straight_through: if true (training), the forward value is the hard selection but the gradient flows to
            the scores through `softmax(patch_scores / temperature)` (straight-through estimator); if false, a
            plain gather.
        temperature: softmax temperature of the straight-through relaxation.

    Returns:
        selected patches (num_frames, top_k, dim) and their indices (num_frames, top_k).
    """
    num_patches = patch_scores.shape[-1]
    if not 0 < top_k <= num_patches:
        raise ValueError(f"top_k must be in [1, {num_patches}] (patches per frame), got {top_k}.")
    indices = patch_scores.topk(top_k, dim=-1).indices.sort(dim=-1).values
    if not straight_through:
        gather_index = indices.unsqueeze(-1).expand(-1, -1, patch_embeds.shape[-1])
        return patch_embeds.gather(1, gather_index), indices

    hard_selection = torch.nn.functional.one_hot(indices, num_patches).to(patch_embeds.dtype)
    soft_weights = torch.softmax(patch_scores / temperature, dim=-1).unsqueeze(1)
    selection = hard_selection + (soft_weights - soft_weights.detach())  # exactly the hard value, in any dtype
    return selection @ patch_embeds, indices


class PatchSelector(nn.Module):
    """
    Scores each patch of a frame, conditioned on the frame's CLS feature, and keeps the top K.

    The scorer is `w^T GELU(W_patch p + W_frame c)`: cheap (a `hidden_dim`-wide MLP on projected features).
    """

    def __init__(self, embed_dim: int, hidden_dim: int, top_k: int, temperature: float = 1.0) -> None:
        super().__init__()
        self.top_k = top_k
        self.temperature = temperature
        self.patch_proj = nn.Linear(embed_dim, hidden_dim)
        self.frame_proj = nn.Linear(embed_dim, hidden_dim, bias=False)
        self.activation = nn.GELU()
        self.score = nn.Linear(hidden_dim, 1)

    def forward(self, patch_embeds: torch.Tensor, frame_embeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            patch_embeds: (num_frames, num_patches, dim) projected patch tokens.
            frame_embeds: (num_frames, dim) projected CLS feature of each frame.

        Returns:
            selected patches (num_frames, top_k, dim) and indices (num_frames, top_k).
        """
        hidden = self.activation(self.patch_proj(patch_embeds) + self.frame_proj(frame_embeds).unsqueeze(1))
        scores = self.score(hidden).squeeze(-1)
        return select_top_k_patches(
            patch_embeds, scores, self.top_k, straight_through=self.training, temperature=self.temperature
        )
