"""Text disentangler: splits the text feature into a spatial part (aligned with still images) and a temporal part.

`t = s + mean(triplets) + mean(words)` is L2-normalized to `t̂` first. The spatial encoder is a residual MLP scaled
by a learned scalar gate that starts at zero, `E_sp(t) = t̂ + g · MLP_sp(t̂)` (as LayerScale/ReZero): at
initialization text→image scores with the disentangler on equal those with it off, and the MLP's share grows
only as fast as Adam moves one scalar (at most about the learning rate per step), so the text→image gradient
does not reach the shared text tower through a map that changes fast while it is still random (the forms compared
are in docs/results.md). The temporal encoder `E_tp` and the decoder `D` are plain MLPs.

The reconstruction and orthogonality terms shape the disentangler only. They are computed from a detached copy
of `t̂`, and the orthogonality term sees a detached `E_sp(t)`:

- no gradient of `L_rec` or `L_orth` reaches the text tower, so the text features cannot shrink or collapse to
  make the reconstruction trivial (with `t` itself as the input, a target that follows a collapsing `t` is
  reconstructed perfectly while every caption looks the same and the contrastive loss stays at ln(batch));
- the reconstruction target is `t̂`, so `L_rec` does not depend on the scale of `t`;
- `L_rec` trains `E_sp`, `E_tp` and `D` to keep all of `t` between the two parts; `L_orth` trains `E_tp` to carry
  what `E_sp` does not (the temporal part is the complement of the spatial one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .pooling import l2_normalize


def _mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, out_dim))


class TextDisentangler(nn.Module):
    """`t_sp = t̂ + g · MLP_sp(t̂)`, `t_tp = E_tp(t̂)`, and a decoder `D([t_sp; t_tp])` that reconstructs `t̂`."""

    def __init__(self, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.spatial_encoder = _mlp(embed_dim, hidden_dim, embed_dim)
        # `g`, a 0-dim parameter (no weight decay); zero at initialization (also set by the model's `_init_weights`).
        self.spatial_gate = nn.Parameter(torch.zeros(()))
        self.temporal_encoder = _mlp(embed_dim, hidden_dim, embed_dim)
        self.decoder = _mlp(2 * embed_dim, hidden_dim, embed_dim)

    def spatial(self, normalized_text: torch.Tensor) -> torch.Tensor:
        """`E_sp(t) = t̂ + g · MLP_sp(t̂)`, shapes (batch_size, dim)."""
        return normalized_text + self.spatial_gate * self.spatial_encoder(normalized_text)

    def forward(self, text_embeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
            text_embeds: (batch_size, dim), the combined text feature `t = s + mean(r) + mean(w)`.

        Returns:
            spatial `E_sp(t)` (batch_size, dim), with gradient to `t` (it is scored against images);
            temporal `E_tp(t̂)` and the reconstruction `D([E_sp(t̂); E_tp(t̂)])` (batch_size, dim), both computed
            from a detached `t̂` (they only feed `L_orth` and `L_rec`).
        """
        normalized = l2_normalize(text_embeds)
        spatial = self.spatial(normalized)
        detached = normalized.detach()
        temporal = self.temporal_encoder(detached)
        # With autograd, a second pass on the detached input keeps L_rec from reaching the text tower; without it the
        # two passes give the same values.
        spatial_for_decoder = self.spatial(detached) if torch.is_grad_enabled() else spatial
        reconstructed = self.decoder(torch.cat([spatial_for_decoder, temporal], dim=-1))
        return spatial, temporal, reconstructed


def reconstruction_loss(reconstructed: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    """`mean over the batch of ||D([t_sp; t_tp]) - t̂||^2` with `t̂ = t / ||t||` detached, shapes (batch_size, dim)."""
    target = l2_normalize(text_embeds.detach())
    return (reconstructed - target).pow(2).sum(dim=-1).mean()


def orthogonality_loss(spatial: torch.Tensor, temporal: torch.Tensor) -> torch.Tensor:
    """`mean(cos(t_sp, t_tp)^2)` over the batch, shapes (batch_size, dim); `t_sp` is detached (only `E_tp` moves)."""
    return F.cosine_similarity(spatial.detach(), temporal, dim=-1).pow(2).mean()
