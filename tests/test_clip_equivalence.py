"""A model made by `from_clip` reproduces CLIP and CLIP4Clip-meanP at initialization."""

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


@pytest.mark.parametrize("preset", ["unitrim", "xclip", "clip4clip-meanp"])
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
