"""CLIP's text and vision towers, initialized as CLIP initializes them in every loading path.

CLIP sets the scaled standard deviations of its attention and MLP projections when it visits the attention or MLP
module, after transformers' default has visited (and, when loading a checkpoint, flagged) the linear layers inside
them: a model built from a checkpoint that lacks the towers' weights got N(0, 0.02) there instead of CLIP's
initialization. These towers give each of those linear layers CLIP's value when the layer itself is visited.
"""

from __future__ import annotations

from torch import nn
from transformers import CLIPTextModel, CLIPVisionModel
from transformers import initialization as init
from transformers.models.clip.modeling_clip import CLIPAttention, CLIPMLP


def clip_projection_stds(tower: nn.Module, factor: float) -> dict[nn.Module, float]:
    """Each attention and MLP linear layer of `tower` -> the standard deviation CLIP initializes it with."""
    stds: dict[nn.Module, float] = {}
    for module in tower.modules():
        if isinstance(module, CLIPAttention):
            in_proj_std = module.embed_dim**-0.5 * (2 * module.config.num_hidden_layers) ** -0.5 * factor
            stds.update({module.q_proj: in_proj_std, module.k_proj: in_proj_std, module.v_proj: in_proj_std})
            stds[module.out_proj] = module.embed_dim**-0.5 * factor
        elif isinstance(module, CLIPMLP):
            hidden_size, num_layers = module.config.hidden_size, module.config.num_hidden_layers
            stds[module.fc1] = (2 * hidden_size) ** -0.5 * factor
            stds[module.fc2] = hidden_size**-0.5 * (2 * num_layers) ** -0.5 * factor
    return stds


class _OrderIndependentInit:
    """CLIP's `_init_weights`, with the attention and MLP linear layers given CLIP's values when visited."""

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = clip_projection_stds(self, self.config.initializer_factor).get(module)
        if std is not None:
            init.normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)


class CLIPTextTower(_OrderIndependentInit, CLIPTextModel):
    """`CLIPTextModel` (same modules and weight names) initialized as CLIP in every loading path."""


class CLIPVisionTower(_OrderIndependentInit, CLIPVisionModel):
    """`CLIPVisionModel` (same modules and weight names) initialized as CLIP in every loading path."""
