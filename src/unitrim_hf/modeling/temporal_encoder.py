"""Temporal encoder: transformer layers over the frame features of a video, added as a zero-initialized residual."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ZeroInitLinear(nn.Linear):
    """A linear layer that the model's `_init_weights` initializes to zero (weight and bias)."""


class TemporalEncoderLayer(nn.Module):
    """Pre-norm transformer layer (self-attention over frames, then an MLP) with a key padding mask."""

    def __init__(self, embed_dim: int, num_attention_heads: int) -> None:
        super().__init__()
        self.num_attention_heads = num_attention_heads
        self.attention_norm = nn.LayerNorm(embed_dim)
        self.qkv_proj = nn.Linear(embed_dim, 3 * embed_dim)
        self.attention_out_proj = nn.Linear(embed_dim, embed_dim)
        self.mlp_norm = nn.LayerNorm(embed_dim)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, 4 * embed_dim), nn.GELU(), nn.Linear(4 * embed_dim, embed_dim))

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            hidden_states: (batch_size, num_frames, dim).
            frame_mask: (batch_size, num_frames) boolean, true for real frames (at least one per row).
        """
        batch_size, num_frames, embed_dim = hidden_states.shape
        head_dim = embed_dim // self.num_attention_heads
        query, key, value = (
            self.qkv_proj(self.attention_norm(hidden_states))
            .view(batch_size, num_frames, 3, self.num_attention_heads, head_dim)
            .permute(2, 0, 3, 1, 4)
        )
        attention_mask = frame_mask[:, None, None, :]
        attended = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask)
        attended = attended.transpose(1, 2).reshape(batch_size, num_frames, embed_dim)
        hidden_states = hidden_states + self.attention_out_proj(attended)
        return hidden_states + self.mlp(self.mlp_norm(hidden_states))


class TemporalEncoder(nn.Module):
    """
    `encoded = frames + output_proj(layers(frames + frame_position_embedding))`.

    `output_proj` starts at zero, so at initialization the encoder is the identity and UniTriM's sentence-video
    score equals CLIP4Clip-meanP's.
    """

    def __init__(self, embed_dim: int, num_layers: int, num_attention_heads: int, max_frame_positions: int) -> None:
        super().__init__()
        self.frame_position_embedding = nn.Embedding(max_frame_positions, embed_dim)
        self.layers = nn.ModuleList(TemporalEncoderLayer(embed_dim, num_attention_heads) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(embed_dim)
        self.output_proj = ZeroInitLinear(embed_dim, embed_dim)

    def forward(self, frame_embeds: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            frame_embeds: (batch_size, num_frames, dim) projected CLS features.
            frame_mask: (batch_size, num_frames) boolean.

        Returns:
            (batch_size, num_frames, dim) temporally encoded frame features.
        """
        num_frames = frame_embeds.shape[1]
        if num_frames > self.frame_position_embedding.num_embeddings:
            raise ValueError(
                f"pixel_values_videos has {num_frames} frames but the temporal encoder has "
                f"{self.frame_position_embedding.num_embeddings} frame positions (config.max_frame_positions)."
            )
        positions = torch.arange(num_frames, device=frame_embeds.device)
        hidden_states = frame_embeds + self.frame_position_embedding(positions)
        for layer in self.layers:
            hidden_states = layer(hidden_states, frame_mask)
        return frame_embeds + self.output_proj(self.final_norm(hidden_states))
