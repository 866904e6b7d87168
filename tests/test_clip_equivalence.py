"""A model made by `from_clip` reproduces CLIP and CLIP4Clip-meanP at initialization, and gives the plain temporal
encoder (X-CLIP, CLIP4Clip seqTransf, UniTriM on X-CLIP) X-CLIP's initialization from CLIP's text layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPModel

from model_inputs import random_text_inputs, random_video_inputs
from unitrim_hf import UniTriMConfig, UniTriMModel


@pytest.fixture(scope="module")
def tiny_clip() -> CLIPModel:
    torch.manual_seed(0)
    tiny = UniTriMConfig.from_preset("unitrim-tiny")
    config = CLIPConfig(
        text_config=tiny.text_config.to_dict(), vision_config=tiny.vision_config.to_dict(), projection_dim=32
    )
    return CLIPModel(config).eval()


@pytest.mark.parametrize("preset", ["unitrim", "xclip", "clip4clip-meanp"])
def test_image_features_equal_clip(tiny_clip: CLIPModel, preset: str) -> None:
    model = UniTriMModel.from_clip(tiny_clip, preset=preset, temporal_num_attention_heads=4).eval()
    pixel_values = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = tiny_clip.get_image_features(pixel_values=pixel_values).pooler_output
        features = model.get_image_features(pixel_values)
    # frame_embeds: projected CLS before normalization; video_embeds: the same after normalization.
    torch.testing.assert_close(features.frame_embeds[:, 0], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(features.video_embeds, F.normalize(expected, dim=-1), rtol=1e-5, atol=1e-5)


# Presets whose temporal encoder starts as the identity (or have none): their sentence-video score is meanP's.
@pytest.mark.parametrize("preset", ["unitrim-simple-head", "clip4clip-meanp"])
def test_sentence_video_score_equals_clip4clip_meanp(tiny_clip: CLIPModel, preset: str) -> None:
    model = UniTriMModel.from_clip(tiny_clip, preset=preset, temporal_num_attention_heads=4).eval()
    text_inputs = random_text_inputs(model.config, batch_size=3)
    video_inputs = random_video_inputs(model.config, batch_size=3, num_frames=4)
    with torch.no_grad():
        scores = model.similarity(model.get_text_features(**text_inputs), model.get_video_features(**video_inputs))
        text = tiny_clip.get_text_features(
            input_ids=text_inputs["input_ids"], attention_mask=text_inputs["attention_mask"]
        ).pooler_output
        frames = tiny_clip.get_image_features(pixel_values=video_inputs["pixel_values_videos"].flatten(0, 1)).pooler_output
    # CLIP4Clip meanP by hand: normalize frames, masked mean, normalize; cosine with the normalized text.
    frames = F.normalize(frames.view(3, 4, -1), dim=-1)
    mask = video_inputs["video_mask"].float()
    video = F.normalize((frames * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=-1)
    expected = F.normalize(text, dim=-1) @ video.t()
    torch.testing.assert_close(scores.alignment_scores["sentence_video"], expected, rtol=1e-5, atol=1e-5)
    if preset == "clip4clip-meanp":
        torch.testing.assert_close(scores.logits, tiny_clip.logit_scale.exp() * expected, rtol=1e-5, atol=1e-4)


def test_from_clip_takes_tower_sizes_from_the_checkpoint_and_loads_a_folder(tiny_clip: CLIPModel, tmp_path) -> None:
    tiny_clip.save_pretrained(tmp_path / "clip")
    model = UniTriMModel.from_clip(str(tmp_path / "clip"), preset="xclip", temporal_num_attention_heads=4)
    assert model.config.vision_config.hidden_size == tiny_clip.config.vision_config.hidden_size
    assert model.config.alignments == UniTriMConfig.from_preset("xclip").alignments
    torch.testing.assert_close(model.logit_scale, tiny_clip.logit_scale)
    for name, parameter in tiny_clip.vision_model.state_dict().items():
        torch.testing.assert_close(model.vision_model.state_dict()[name], parameter)


def test_from_clip_missing_checkpoint_says_how_to_get_one(tmp_path) -> None:
    with pytest.raises(OSError, match="CLIPModel format"):
        UniTriMModel.from_clip(str(tmp_path / "missing"))


def test_from_clip_picks_temporal_heads_that_divide_the_projection() -> None:
    tiny = UniTriMConfig.from_preset("unitrim-tiny")
    clip = CLIPModel(
        CLIPConfig(text_config=tiny.text_config.to_dict(), vision_config=tiny.vision_config.to_dict(), projection_dim=36)
    )
    model = UniTriMModel.from_clip(clip, preset="unitrim")
    assert model.config.projection_dim == 36 and model.config.temporal_num_attention_heads == 4


@pytest.mark.parametrize("preset", ["xclip", "unitrim", "clip4clip-seqtransf"])
def test_plain_temporal_encoder_starts_from_clips_text_layers(tiny_clip: CLIPModel, preset: str) -> None:
    model = UniTriMModel.from_clip(tiny_clip, preset=preset)
    encoder, text = model.temporal_encoder, tiny_clip.text_model
    assert model.config.temporal_residual == "plain" and model.config.temporal_hidden_act == "quick_gelu"
    assert model.config.temporal_num_attention_heads == tiny_clip.config.text_config.num_attention_heads
    assert model.config.max_frame_positions == 77
    torch.testing.assert_close(encoder.frame_position_embedding.weight, text.embeddings.position_embedding.weight)
    copied = min(len(encoder.layers), len(text.encoder.layers))
    assert copied == 2  # the tiny CLIP has 2 text layers: temporal layers 0-1 from them, 2-3 fresh
    for layer, text_layer in zip(encoder.layers[:copied], text.encoder.layers):
        attention = text_layer.self_attn
        qkv = torch.cat([attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight])
        torch.testing.assert_close(layer.qkv_proj.weight, qkv, rtol=0, atol=0)
        torch.testing.assert_close(layer.attention_out_proj.weight, attention.out_proj.weight, rtol=0, atol=0)
        torch.testing.assert_close(layer.mlp[0].weight, text_layer.mlp.fc1.weight, rtol=0, atol=0)
        torch.testing.assert_close(layer.mlp[2].bias, text_layer.mlp.fc2.bias, rtol=0, atol=0)
        torch.testing.assert_close(layer.mlp_norm.weight, text_layer.layer_norm2.weight, rtol=0, atol=0)
    # The layers run as CLIP's text layer would (QuickGELU), with X-CLIP's LayerNorm epsilon.
    assert layer.attention_norm.eps == 1e-12
    fresh = encoder.layers[copied].qkv_proj.weight
    assert not any(torch.equal(fresh, layer.qkv_proj.weight) for layer in encoder.layers[:copied])


def test_the_simple_head_keeps_its_fresh_gated_encoder(tiny_clip: CLIPModel) -> None:
    model = UniTriMModel.from_clip(tiny_clip, preset="unitrim-simple-head", temporal_num_attention_heads=4)
    assert model.config.temporal_residual == "gated"
    assert not torch.equal(
        model.temporal_encoder.frame_position_embedding.weight[:77], tiny_clip.text_model.embeddings.position_embedding.weight
    )


@pytest.mark.slow
def test_a_vit_b32_clip_folder_gives_xclip_its_encoder_initialization(tmp_path) -> None:
    clip = CLIPModel(CLIPConfig())  # transformers' defaults are CLIP ViT-B/32's sizes (text 512 wide, 12 layers)
    clip.save_pretrained(tmp_path / "clip")
    model = UniTriMModel.from_clip(str(tmp_path / "clip"), preset="xclip")
    assert (model.config.temporal_num_attention_heads, model.config.temporal_intermediate_size) == (8, 2048)
    text = clip.text_model
    torch.testing.assert_close(
        model.temporal_encoder.frame_position_embedding.weight, text.embeddings.position_embedding.weight, rtol=0, atol=0
    )
    for layer, text_layer in zip(model.temporal_encoder.layers, text.encoder.layers[:4]):
        attention = text_layer.self_attn
        qkv = torch.cat([attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight])
        torch.testing.assert_close(layer.qkv_proj.weight, qkv, rtol=0, atol=0)
        torch.testing.assert_close(layer.mlp[2].weight, text_layer.mlp.fc2.weight, rtol=0, atol=0)
