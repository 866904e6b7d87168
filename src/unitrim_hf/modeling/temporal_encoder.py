"""Temporal encoder: transformer layers over the frame features of a video, added as a residual: a zero-initialized
projection (`temporal_residual="gated"`) or plainly, as CLIP4Clip's seqTransf and X-CLIP (`"plain"`)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.clip.modeling_clip import eager_attention_forward

# The attention implementations the frame layers run as asked; any other (flash attention, flex attention) runs
# them with SDPA: a frame sequence is at most `max_frame_positions` long with a padding mask per video, where
# those kernels would need variable-length inputs and bring nothing.
FRAME_ATTENTION_IMPLEMENTATIONS = ("eager", "sdpa")


class ZeroInitLinear(nn.Linear):
    """A linear layer that the model's `_init_weights` initializes to zero (weight and bias)."""


def frame_attention_implementation(config: PretrainedConfig) -> str:
    """The attention implementation of the frame layers for `config._attn_implementation` (see
    `FRAME_ATTENTION_IMPLEMENTATIONS`)."""
    requested = getattr(config, "_attn_implementation", None) or "sdpa"
    return requested if requested in FRAME_ATTENTION_IMPLEMENTATIONS else "sdpa"


class TemporalEncoderLayer(GradientCheckpointingLayer):
    """Pre-norm transformer layer (self-attention over frames, then an MLP) with a key padding mask; checkpointed
    with the model's gradient checkpointing."""

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__()
        embed_dim = config.projection_dim
        self.config = config
        self.num_attention_heads = config.temporal_num_attention_heads
        self.scaling = (embed_dim // self.num_attention_heads) ** -0.5
        self.is_causal = False
        eps = config.temporal_layer_norm_eps
        self.attention_norm = nn.LayerNorm(embed_dim, eps=eps)
        self.qkv_proj = nn.Linear(embed_dim, 3 * embed_dim)
        self.attention_out_proj = nn.Linear(embed_dim, embed_dim)
        self.mlp_norm = nn.LayerNorm(embed_dim, eps=eps)
        width = config.temporal_intermediate_size or 4 * embed_dim
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim, width), ACT2FN[config.temporal_hidden_act], nn.Linear(width, embed_dim)
        )

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            hidden_states (`(B, T, D)`): frame features.
            frame_mask (`(B, T)` bool): true for real frames (at least one per row).
        """
        batch_size, num_frames, embed_dim = hidden_states.shape
        head_dim = embed_dim // self.num_attention_heads
        query, key, value = (
            self.qkv_proj(self.attention_norm(hidden_states))
            .view(batch_size, num_frames, 3, self.num_attention_heads, head_dim)
            .permute(2, 0, 3, 1, 4)
        )
        implementation = frame_attention_implementation(self.config)
        attention_mask = frame_mask[:, None, None, :]
        if implementation == "eager":
            attention_mask = torch.zeros(attention_mask.shape, dtype=query.dtype, device=query.device).masked_fill(
                ~attention_mask, torch.finfo(query.dtype).min
            )
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        attended, _ = attention(self, query, key, value, attention_mask, scaling=self.scaling, dropout=0.0)
        attended = attended.reshape(batch_size, num_frames, embed_dim)
        hidden_states = hidden_states + self.attention_out_proj(attended)
        return hidden_states + self.mlp(self.mlp_norm(hidden_states))


class TemporalEncoder(nn.Module):
    """
    `config.temporal_residual="gated"`: `encoded = frames + output_proj(LN(layers(frames + position)))`;
    `output_proj` starts at zero, so at initialization the encoder is the identity and the sentence-video score
    equals CLIP4Clip-meanP's.

    `"plain"`: `encoded = frames + layers(frames + position)`, CLIP4Clip's seqTransf and X-CLIP's form (with
    `temporal_hidden_act="quick_gelu"`, `temporal_layer_norm_eps=1e-12` and `max_frame_positions=77` theirs;
    `from_clip` copies CLIP's first text layers and position embeddings into it, as they do).

    Sizes from the config: `projection_dim`, `num_temporal_layers`, `temporal_num_attention_heads`,
    `max_frame_positions`; attention as `config._attn_implementation` (see `FRAME_ATTENTION_IMPLEMENTATIONS`).
    """

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__()
        embed_dim = config.projection_dim
        self.frame_position_embedding = nn.Embedding(config.max_frame_positions, embed_dim)
        self.layers = nn.ModuleList(TemporalEncoderLayer(config) for _ in range(config.num_temporal_layers))
        if config.temporal_residual == "gated":
            self.final_norm = nn.LayerNorm(embed_dim)
            self.output_proj = ZeroInitLinear(embed_dim, embed_dim)
        else:
            self.final_norm = self.output_proj = None

    def forward(self, frame_embeds: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            frame_embeds (`(B, T, D)`): projected CLS features.
            frame_mask (`(B, T)` bool): true for real frames.

        Returns:
            `(B, T, D)` temporally encoded frame features.
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
        if self.output_proj is None:
            return frame_embeds + hidden_states
        return frame_embeds + self.output_proj(self.final_norm(hidden_states))
