"""Build a UniTriM configuration and weights from a CLIP checkpoint in transformers' `CLIPModel` format."""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from transformers import CLIPConfig, CLIPModel

from .configuration_unitrim import UniTriMConfig


def load_clip_model(clip_model_or_name_or_path: CLIPModel | str | os.PathLike) -> CLIPModel:
    """Return the given `CLIPModel`, or load one from a local folder or a Hub id (cached, when offline)."""
    if isinstance(clip_model_or_name_or_path, CLIPModel):
        return clip_model_or_name_or_path
    if not isinstance(clip_model_or_name_or_path, (str, os.PathLike)):
        raise TypeError(
            "from_clip expects a transformers CLIPModel, a local folder or a Hub id, got "
            f"{type(clip_model_or_name_or_path).__name__}."
        )
    try:
        return CLIPModel.from_pretrained(clip_model_or_name_or_path)
    except OSError as error:
        raise OSError(
            f"Could not load a CLIP checkpoint from {str(clip_model_or_name_or_path)!r}: {error}\n"
            "Pass a local folder in transformers' CLIPModel format (config.json + model.safetensors), or a Hub id "
            "such as 'openai/clip-vit-base-patch32' on a machine with network access (it is cached for offline use)."
        ) from error


def unitrim_config_from_clip(clip_config: CLIPConfig, preset: str = "unitrim", **overrides: Any) -> UniTriMConfig:
    """The preset's switches with the tower sizes, projection size and logit scale of `clip_config`."""
    tower_settings = {
        "text_config": clip_config.text_config.to_dict(),
        "vision_config": clip_config.vision_config.to_dict(),
        "projection_dim": clip_config.projection_dim,
        "logit_scale_init_value": clip_config.logit_scale_init_value,
    }
    for key in ("text_config", "vision_config"):
        tower_settings[key].pop("model_type", None)
        tower_settings[key].pop("transformers_version", None)
    preset_config = UniTriMConfig.from_preset(preset)
    text = clip_config.text_config
    if temporal_layers_from_text_tower(preset_config, clip_config):
        # X-CLIP and CLIP4Clip's seqTransf copy CLIP's first text layers: the temporal layers take their shape.
        tower_settings["temporal_num_attention_heads"] = text.num_attention_heads
        tower_settings["temporal_intermediate_size"] = text.intermediate_size
    elif "temporal_num_attention_heads" not in overrides:
        # The presets use 8 heads (64-wide at D=512); keep heads that divide this checkpoint's projection size.
        tower_settings["temporal_num_attention_heads"] = math.gcd(
            preset_config.temporal_num_attention_heads, clip_config.projection_dim
        )
    config = UniTriMConfig.from_preset(preset, **{**tower_settings, **overrides})
    # Tower sizes must be CLIP's exactly (the preset's JSON only fills what the checkpoint lacks).
    config.text_config = type(clip_config.text_config)(**tower_settings["text_config"])
    config.vision_config = type(clip_config.vision_config)(**tower_settings["vision_config"])
    return config


def temporal_layers_from_text_tower(config: UniTriMConfig, clip_config: CLIPConfig) -> bool:
    """Whether `from_clip` initializes the temporal encoder from CLIP's text tower, as X-CLIP and CLIP4Clip's
    seqTransf do: for the `"plain"` encoder, when the text tower is as wide as the joint space (ViT-B/32: 512)."""
    return (
        config.num_temporal_layers > 0
        and config.temporal_residual == "plain"
        and clip_config.text_config.hidden_size == clip_config.projection_dim
    )


def copy_text_layers_into_temporal_encoder(model: torch.nn.Module, clip_model: CLIPModel) -> None:
    """
    X-CLIP's and CLIP4Clip's initialization of the temporal transformer: layer i <- CLIP text layer i (for i below
    both depths; deeper temporal layers keep their fresh initialization) and the frame position embeddings <- the
    first `max_frame_positions` text position embeddings (CLIP has 77, X-CLIP's `max_frame_positions`).
    """
    encoder = model.temporal_encoder
    text_layers = clip_model.text_model.encoder.layers
    text_positions = clip_model.text_model.embeddings.position_embedding.weight
    with torch.no_grad():
        count = min(text_positions.shape[0], encoder.frame_position_embedding.num_embeddings)
        encoder.frame_position_embedding.weight[:count].copy_(text_positions[:count])
        for layer, text_layer in zip(encoder.layers, text_layers):
            attention = text_layer.self_attn
            layer.attention_norm.load_state_dict(text_layer.layer_norm1.state_dict())
            layer.qkv_proj.weight.copy_(torch.cat([attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight]))
            layer.qkv_proj.bias.copy_(torch.cat([attention.q_proj.bias, attention.k_proj.bias, attention.v_proj.bias]))
            layer.attention_out_proj.load_state_dict(attention.out_proj.state_dict())
            layer.mlp_norm.load_state_dict(text_layer.layer_norm2.state_dict())
            layer.mlp[0].load_state_dict(text_layer.mlp.fc1.state_dict())
            layer.mlp[2].load_state_dict(text_layer.mlp.fc2.state_dict())


# Parameters that come from CLIP (a separate, smaller learning rate fine-tunes them).
CLIP_PARAMETER_PREFIXES = ("text_model.", "vision_model.", "text_projection.", "visual_projection.", "logit_scale")


def clip_parameter_names(model: torch.nn.Module) -> set[str]:
    """Names of the parameters of a `UniTriMModel` that come from CLIP."""
    return {name for name, _ in model.named_parameters() if name.startswith(CLIP_PARAMETER_PREFIXES)}


def copy_clip_weights(model: torch.nn.Module, clip_model: CLIPModel) -> None:
    """Copy CLIP's towers, projections and logit scale into a `UniTriMModel` (shapes must match)."""
    model.text_model.load_state_dict(clip_model.text_model.state_dict())
    model.vision_model.load_state_dict(clip_model.vision_model.state_dict())
    model.text_projection.load_state_dict(clip_model.text_projection.state_dict())
    model.visual_projection.load_state_dict(clip_model.visual_projection.state_dict())
    with torch.no_grad():
        model.logit_scale.copy_(clip_model.logit_scale)
    model.clamp_logit_scale_()


def unitrim_model_from_clip(
    model_class: type, clip_model_or_name_or_path: CLIPModel | str | os.PathLike, preset: str = "unitrim",
    **config_overrides: Any,
):
    """
    A `model_class` (`UniTriMModel`) whose towers, projections and logit scale come from a CLIP checkpoint; new
    modules are freshly initialized.

    Args:
        model_class: the model class to build.
        clip_model_or_name_or_path: a `CLIPModel`, or what `CLIPModel.from_pretrained` accepts.
        preset: the UniTriM switches to use (`unitrim`, `xclip`, `clip4clip-meanp`); the tower sizes always come
            from the CLIP checkpoint.
        config_overrides: further `UniTriMConfig` fields, e.g. `patch_top_k=4`.
    """
    clip_model = load_clip_model(clip_model_or_name_or_path)
    model = model_class(unitrim_config_from_clip(clip_model.config, preset, **config_overrides))
    copy_clip_weights(model, clip_model)
    if temporal_layers_from_text_tower(model.config, clip_model.config):
        copy_text_layers_into_temporal_encoder(model, clip_model)
    return model
