"""The model's outputs and keyword arguments as transformers' conventions have them (what the common tests of
`test_transformers_common.py` cannot check for a retrieval model): loss and logits first, `return_dict`,
the towers' hidden states and attentions, eager and SDPA agreeing on padded inputs, the temporal layers under
gradient checkpointing, and retrieval features without the tower outputs."""

from __future__ import annotations

import copy

import pytest
import torch

from model_inputs import random_image_inputs, random_text_inputs, random_video_inputs
from unitrim_hf import UniTriMConfig, UniTriMModel
from unitrim_hf.modeling.modeling_outputs import TOWER_OUTPUT_FIELDS
from unitrim_hf.modeling.temporal_encoder import TemporalEncoderLayer


@pytest.fixture(scope="module")
def config() -> UniTriMConfig:
    return UniTriMConfig.from_preset("unitrim-tiny")


@pytest.fixture(scope="module")
def inputs(config) -> dict[str, torch.Tensor]:
    # Captions of several lengths (padded), videos of 1 to 4 real frames (padded), images.
    return {**random_text_inputs(config), **random_video_inputs(config), **random_image_inputs(config)}


def new_model(config: UniTriMConfig, attn_implementation: str | None = None) -> UniTriMModel:
    torch.manual_seed(0)
    model = UniTriMModel(copy.deepcopy(config)).eval()  # set_attn_implementation changes the model's config
    if attn_implementation is not None:
        model.set_attn_implementation(attn_implementation)
    with torch.no_grad():  # a temporal encoder that is not the identity, so that its attention matters
        for parameter in model.temporal_encoder.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.2)
    return model


def assert_equal_outputs(first, second) -> None:
    """Exact structural equality (masks compared as booleans, floats to 1e-6)."""
    if isinstance(first, dict):
        assert list(first) == list(second)
        for name in first:
            assert_equal_outputs(first[name], second[name])
    elif isinstance(first, (tuple, list)):
        assert len(first) == len(second)
        for left, right in zip(first, second):
            assert_equal_outputs(left, right)
    elif isinstance(first, torch.Tensor):
        assert first.dtype == second.dtype and first.shape == second.shape
        if first.is_floating_point():
            torch.testing.assert_close(first, second, rtol=0, atol=1e-6)
        else:
            assert torch.equal(first, second)
    else:
        assert first == second


def test_loss_then_logits_come_first(config, inputs) -> None:
    model = new_model(config)
    with torch.no_grad():
        scored = model(**inputs)
        trained = model(**inputs, return_loss=True)
    assert list(scored)[:2] == ["logits_per_text_video", "logits_per_text_image"]
    assert scored[0] is scored.logits_per_text_video and scored.to_tuple()[0] is scored.logits_per_text_video
    assert list(trained)[:3] == ["loss", "logits_per_text_video", "logits_per_text_image"]
    assert trained[0] is trained.loss


@pytest.mark.parametrize("return_loss", [False, True])
def test_tuple_and_dict_outputs_are_equal(config, inputs, return_loss: bool) -> None:
    model = new_model(config)
    with torch.no_grad():
        as_tuple = model(**inputs, return_loss=return_loss, return_dict=False)
        as_dict = model(**inputs, return_loss=return_loss, return_dict=True)
    assert isinstance(as_tuple, tuple)
    assert_equal_outputs(as_tuple, as_dict.to_tuple())


def test_config_return_dict_is_honored(inputs) -> None:
    config = UniTriMConfig.from_preset("unitrim-tiny")
    config.return_dict = False
    model = new_model(config)
    with torch.no_grad():
        assert isinstance(model(**inputs), tuple)
        assert isinstance(model.get_text_features(**random_text_inputs(config)), tuple)
        assert not isinstance(model(**inputs, return_dict=True), tuple)


def test_towers_hidden_states_and_attentions_on_request(config, inputs) -> None:
    model = new_model(config, attn_implementation="eager")
    layers_text, layers_vision = config.text_config.num_hidden_layers, config.vision_config.num_hidden_layers
    with torch.no_grad():
        plain = model(**inputs)
        detailed = model(**inputs, output_hidden_states=True, output_attentions=True)
    assert plain.text_features.hidden_states is None and plain.video_features.attentions is None
    text, videos, images = detailed.text_features, detailed.video_features, detailed.image_features
    # With AOSM matrices (the preset's X-CLIP head) texts and videos run padded to max_words and max_frames.
    batch, length, num_frames = inputs["input_ids"].shape[0], config.max_words, config.max_frames
    assert len(text.hidden_states) == layers_text + 1 and len(text.attentions) == layers_text
    assert text.hidden_states[-1].shape == (batch, length, config.text_config.hidden_size)
    assert len(videos.hidden_states) == layers_vision + 1 and len(videos.attentions) == layers_vision
    assert videos.last_hidden_state.shape[:2] == (batch, num_frames)
    assert videos.attentions[0].shape[:3] == (batch, num_frames, config.vision_config.num_attention_heads)
    padded_states = videos.last_hidden_state[~videos.video_mask]
    assert padded_states.shape[0] > 0
    if config.mask_padding:
        assert padded_states.abs().sum() == 0  # the tower never sees padded frames
    else:  # X-CLIP's padding: every padded slot is a zero-pixel frame run through the tower
        assert padded_states.abs().sum() > 0
        torch.testing.assert_close(padded_states, padded_states[:1].expand_as(padded_states))
    assert len(images.hidden_states) == layers_vision + 1 and images.last_hidden_state.shape[0] == batch
    torch.testing.assert_close(detailed.logits_per_text_video, plain.logits_per_text_video)


def test_unknown_keyword_is_refused_by_name(config, inputs) -> None:
    model = new_model(config)
    with pytest.raises(ValueError, match="output_hiden_states"):
        model(**inputs, output_hiden_states=True)
    with pytest.raises(ValueError, match="frames"):
        model.get_video_features(**random_video_inputs(config), frames=3)


def test_eager_matches_sdpa(config, inputs) -> None:
    """Both attention implementations, in the towers and in the temporal encoder, on padded captions and videos."""
    eager, sdpa = new_model(config, attn_implementation="eager"), new_model(config, attn_implementation="sdpa")
    assert eager.config._attn_implementation == "eager" and sdpa.config._attn_implementation == "sdpa"
    with torch.no_grad():
        eager_output, sdpa_output = eager(**inputs), sdpa(**inputs)
    torch.testing.assert_close(eager_output.logits_per_text_video, sdpa_output.logits_per_text_video, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(eager_output.logits_per_text_image, sdpa_output.logits_per_text_image, rtol=1e-5, atol=1e-5)


def test_temporal_encoder_runs_the_attention_asked_for(config, inputs, monkeypatch) -> None:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    used = []
    real_sdpa = ALL_ATTENTION_FUNCTIONS["sdpa"]
    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS, "sdpa", lambda module, *args, **kwargs: (
        used.append(type(module).__name__), real_sdpa(module, *args, **kwargs))[1])
    video = random_video_inputs(config)
    with torch.no_grad():
        new_model(config, attn_implementation="eager").get_video_features(**video)
        assert "TemporalEncoderLayer" not in used
        new_model(config, attn_implementation="sdpa").get_video_features(**video)
    assert "TemporalEncoderLayer" in used


def test_gradient_checkpointing_covers_the_temporal_encoder(config, inputs) -> None:
    model = new_model(config)
    model.train()
    model.gradient_checkpointing_enable()
    layers = [module for module in model.modules() if isinstance(module, TemporalEncoderLayer)]
    assert layers and all(layer.gradient_checkpointing for layer in layers)
    calls = []
    for layer in layers:
        layer._gradient_checkpointing_func = lambda function, *args, _wrapped=layer._gradient_checkpointing_func, **kwargs: (
            calls.append(1), _wrapped(function, *args, **kwargs))[1]
    loss = model(**inputs, return_loss=True).loss
    loss.backward()
    assert len(calls) == len(layers)
    assert all(parameter.grad is not None for parameter in model.temporal_encoder.layers[0].parameters())


def test_retrieval_features_leave_the_tower_outputs(config, inputs) -> None:
    model = new_model(config)
    with torch.no_grad():
        videos = model.get_video_features(**random_video_inputs(config), output_hidden_states=True)
    assert videos.last_hidden_state is not None and videos.hidden_states is not None
    for kept in (videos.retrieval_features(), videos.take(slice(0, 2)), videos.to(torch.float64)):
        assert all(getattr(kept, name) is None for name in TOWER_OUTPUT_FIELDS)
        assert kept.pooler_output is not None and kept.frame_embeds is not None
    torch.testing.assert_close(videos.video_embeds, videos.pooler_output)
    with torch.no_grad():
        again = model.similarity(model.get_text_features(**random_text_inputs(config)), videos.retrieval_features())
        full = model.similarity(model.get_text_features(**random_text_inputs(config)), videos)
    torch.testing.assert_close(again.logits, full.logits)
