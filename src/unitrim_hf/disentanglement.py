"""Text disentangler: splits a text feature into a spatial part (aligned with still images) and a temporal part."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, out_dim))


class TextDisentangler(nn.Module):
    """`t_sp = E_sp(t)`, `t_tp = E_tp(t)`, and a decoder `D([t_sp; t_tp])` that reconstructs `t`."""

    def __init__(self, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.spatial_encoder = _mlp(embed_dim, hidden_dim, embed_dim)
        self.temporal_encoder = _mlp(embed_dim, hidden_dim, embed_dim)
        self.decoder = _mlp(2 * embed_dim, hidden_dim, embed_dim)

    def forward(self, text_embeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
            text_embeds: (batch_size, dim), the combined text feature `t = s + mean(r) + mean(w)`.

        Returns:
            spatial (batch_size, dim), temporal (batch_size, dim), reconstructed `t` (batch_size, dim).
        """
        spatial = self.spatial_encoder(text_embeds)
        temporal = self.temporal_encoder(text_embeds)
        reconstructed = self.decoder(torch.cat([spatial, temporal], dim=-1))
        return spatial, temporal, reconstructed


def reconstruction_loss(reconstructed: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`mean over the batch of ||D([t_sp; t_tp]) - t||^2 / dim` (mean squared error), shapes (batch_size, dim)."""
    return F.mse_loss(reconstructed, target)


def orthogonality_loss(spatial: torch.Tensor, temporal: torch.Tensor) -> torch.Tensor:
    """`mean(cos(t_sp, t_tp)^2)` over the batch, shapes (batch_size, dim)."""
    return F.cosine_similarity(spatial, temporal, dim=-1).pow(2).mean()
