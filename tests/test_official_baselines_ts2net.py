"""The `ts2net` preset reproduces TS2-Net's official code (LiuRicky/ts2_net).

The fixtures `fixtures/baselines/ts2net_*.safetensors` hold inputs, weights and outputs of the official modules,
executed outside this project (numbers only; their README says how). Each test maps the official weights onto the
library's modules and compares within 1e-5 in float32: token shift inside a 12-layer vision tower, token selection
in its deterministic limit and with the official noise, the sampled selection's statistics, and the head's logits,
training loss and gradients on an unpadded and a padded batch.
"""

from __future__ import annotations

import math

import pytest
import torch

from test_official_baselines import (
    TOLERANCE,
    check_official_gradients,
    close,
    load_official_weights,
    temporal_head_name,
)
from test_official_baselines import load_fixture as load
from transformers import CLIPVisionConfig

from unitrim_hf import UniTriMConfig, UniTriMModel
from unitrim_hf.modeling.clip_towers import CLIPVisionTower
from unitrim_hf.modeling.modeling_outputs import UniTriMTextFeatures
from unitrim_hf.modeling.token_selection import hard_top_k_indicators, perturbed_top_k_indicators
from unitrim_hf.modeling.token_shift import TemporalTokenShift, shift_tokens

SCORER_NAMES = {  # official PredictorLG -> the library's TokenScorer
    "in_conv.0.weight": "input_norm.weight",
    "in_conv.0.bias": "input_norm.bias",
    "in_conv.1.weight": "input_proj.weight",
    "out_conv.0.weight": "hidden_proj.weight",
    "out_conv.2.weight": "score_proj.weight",
}


def head_library_name(official: str) -> str | None:
    """The library parameter of an official TS2-Net head parameter (None for inputs and outputs)."""
    if temporal_head_name(official) is not None:
        return temporal_head_name(official)
    prefix = "visual_token_selector.score_predictor."
    if official.startswith(prefix):
        return f"token_selector.scorer.{SCORER_NAMES[official.removeprefix(prefix)]}"
    return None


def token_selection_head(preset: str, metadata: dict[str, str], **sizes: int) -> UniTriMModel:
    """A token-selecting preset's model at a fixture's head sizes (`sizes`: further config fields)."""
    config = UniTriMConfig.from_preset(
        preset,
        projection_dim=int(metadata["D"]),
        temporal_num_attention_heads=int(metadata["heads"]),
        num_temporal_layers=int(metadata["temporal_layers"]),
        max_frames=int(metadata["max_frames"]),
        token_selection_top_k=int(metadata["top_k"]),
        token_selection_samples=int(metadata["train_samples"]),
        token_selection_sigma=float(metadata["train_sigma"]),
        **sizes,
    )
    return UniTriMModel(config)


def load_head(name: str) -> tuple[dict[str, torch.Tensor], UniTriMModel]:
    """The fixture and the `ts2net` head at its sizes, with the official weights copied in."""
    tensors, metadata = load(name)
    model = token_selection_head("ts2net-tiny", metadata)
    load_official_weights(model, tensors, head_library_name)
    return tensors, model


def head_features(model: UniTriMModel, tensors: dict[str, torch.Tensor], noise: torch.Tensor | None):
    tokens = tensors["visual_tokens"].clone().requires_grad_(True)
    sentence = tensors["sequence_output"][:, 0].clone().requires_grad_(True)
    video = model.video_features_from_tokens(tokens, tensors["video_mask"].bool(), noise)
    return UniTriMTextFeatures(pooler_output=sentence), video, {"visual_tokens": tokens, "sequence_output": sentence}


HEADS = ["ts2net_head", "ts2net_head_padded"]


@pytest.mark.parametrize("fixture", HEADS)
def test_selection_and_eval_logits_in_the_deterministic_limit(fixture: str) -> None:
    tensors, model = load_head(fixture)
    model.eval().token_selector.eval_selection = "hard"
    batch, frames, tokens_per_frame, dim = tensors["visual_tokens"].shape
    with torch.no_grad():
        selected = model.token_selector(tensors["visual_tokens"].reshape(batch * frames, tokens_per_frame, dim))
        close(selected, tensors["selected_tokens_eval"], "selected tokens ([CLS] + top-3, eval)")
        text, video, _ = head_features(model, tensors, None)
        close(model.similarity(text, video).logits, tensors["logits"], "eval logits (tiled)")


@pytest.mark.parametrize("fixture", HEADS)
def test_training_loss_and_gradients_with_the_official_noise(fixture: str) -> None:
    tensors, model = load_head(fixture)
    model.train()
    text, video, inputs = head_features(model, tensors, tensors["noise"])
    output = model._training_output(text, video, None)
    close(output.logits_per_text_video, tensors["logits_train"], "training logits")
    close(output.loss, tensors["loss"], "loss")
    output.loss.backward()
    checked = len(check_official_gradients(model, tensors, inputs, head_library_name))
    assert checked == 2 + 1 + 1 + 12 * 2 + 5  # inputs, logit scale, positions, 2 blocks, the token scorer
    if fixture.endswith("padded"):
        # TS2-Net's tiled token mask lets padded frames in (and masks some real tokens); masking per frame does not.
        padded = ~tensors["video_mask"].bool()
        assert inputs["visual_tokens"].grad[padded].abs().max() > 0.1
        model.config.token_selection_mask = "per_frame"
        text, video, inputs = head_features(model, tensors, tensors["noise"])
        output = model._training_output(text, video, None)
        assert (output.logits_per_text_video - tensors["logits_train"]).abs().max() > 0.1
        output.loss.backward()
        assert inputs["visual_tokens"].grad[padded].abs().max() == 0


def test_selection_in_training_equals_the_official_with_its_noise() -> None:
    tensors, model = load_head("ts2net_head")
    batch, frames, tokens_per_frame, dim = tensors["visual_tokens"].shape
    selected = model.train().token_selector(
        tensors["visual_tokens"].reshape(batch * frames, tokens_per_frame, dim), tensors["noise"]
    )
    close(selected, tensors["selected_tokens_train"], "selected tokens (train, official noise)")
    # Averaged over 20 noisy copies the picks are mixtures, not the hard top-3 of eval.
    assert (tensors["selected_tokens_train"] - tensors["selected_tokens_eval"]).abs().max() > 0.1


def test_sampled_selection_statistics_match_the_official() -> None:
    """The official selector, called 40 times (20 000 samples, its 500 per call and σ = 0.05), against the library's
    with as many samples from another generator: each entry is a frequency of n = 20 000 Bernoulli draws, so the
    difference of two independent estimates has standard deviation sqrt(p(1 − p) · 2 / n) <= 0.005; 0.025 is
    5 standard deviations (a false alarm below 1e-4 over the 288 entries). Wrong order of the picked patches,
    another σ or a missing sort all move entries by > 0.1."""
    tensors, metadata = load("ts2net_topk_statistics")
    scores, expected = tensors["scores"], tensors["mean_indicators"]
    k, sigma, total = int(metadata["top_k"]), float(metadata["sigma"]), int(metadata["samples_total"])
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(scores.shape[0], total, scores.shape[1], generator=generator)
    mean = perturbed_top_k_indicators(scores, k, total, sigma, noise)
    bound = 5 * math.sqrt(0.25 * 2 / total)
    assert (mean - expected).abs().max() < bound
    assert (hard_top_k_indicators(scores, k) - expected).abs().max() > 0.5  # the samples are far from hard
    assert (perturbed_top_k_indicators(scores, k, total, 2 * sigma, noise) - expected).abs().max() > 4 * bound


def test_token_shift_inside_the_vision_tower_equals_the_official() -> None:
    tensors, metadata = load("ts2net_token_shift")
    width, layers, heads = int(metadata["width"]), int(metadata["layers"]), int(metadata["heads"])
    vision = {"hidden_size": width, "intermediate_size": 4 * width, "num_hidden_layers": layers,
              "num_attention_heads": heads, "image_size": 56, "patch_size": 8}
    shift_layers = [int(index) for index in metadata["shift_layers"].split(",")]
    tower = CLIPVisionTower(CLIPVisionConfig(**vision))  # the model's tower class, built alone (12 layers)
    token_shift = TemporalTokenShift(tower, shift_layers, int(metadata["n_div"]))
    encoder = tower.encoder
    names = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
             "attn.out_proj": "self_attn.out_proj"}
    state = {}
    for key, value in tensors.items():
        if not key.startswith("clip.visual.transformer.resblocks."):
            continue
        index, rest = key.removeprefix("clip.visual.transformer.resblocks.").split(".", 1)
        if rest.startswith("attn.in_proj_"):
            kind = rest.removeprefix("attn.in_proj_")
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3)):
                state[f"layers.{index}.self_attn.{name}.{kind}"] = part
            continue
        module, kind = rest.rsplit(".", 1)
        state[f"layers.{index}.{names[module]}.{kind}"] = value
    encoder.load_state_dict(state)
    hidden = tensors["hidden_states"].clone().requires_grad_(True)
    with token_shift.frames(int(metadata["frames"])):
        output = encoder(inputs_embeds=hidden).last_hidden_state
    close(output, tensors["output"], "vision encoder output with token shift", rtol=TOLERANCE)
    (output * tensors["cotangent"]).sum().backward()
    close(hidden.grad, tensors["grad.hidden_states"], "gradient of the hidden states", rtol=TOLERANCE)
    with torch.no_grad():  # outside a video the hooks do nothing: CLIP's computation, the fixture's unshifted run
        close(encoder(inputs_embeds=hidden).last_hidden_state, tensors["output_without_shift"], "without shift",
              rtol=TOLERANCE)
    assert (tensors["output"] - tensors["output_without_shift"]).abs().max() > 0.1


def test_shift_tokens_moves_whole_tokens_between_neighbouring_frames() -> None:
    frames, tokens = 3, 50
    states = torch.arange(frames * tokens, dtype=torch.float32).reshape(frames, tokens, 1).expand(-1, -1, 2)
    shifted = shift_tokens(states, frames, divisor=7)
    source_frame = (shifted[..., 0] // tokens).long()  # which frame each output token came from
    from_previous, from_next = list(range(1, 50, 7)), list(range(4, 50, 7))
    assert source_frame[1:, from_previous].eq(torch.arange(frames - 1)[:, None]).all()
    assert source_frame[:-1, from_next].eq(torch.arange(1, frames)[:, None]).all()
    unmoved = [p for p in range(tokens) if p not in from_previous + from_next]
    assert torch.equal(shifted[:, unmoved], states[:, unmoved])
    assert torch.equal(shifted[0, from_previous], states[0, from_previous])  # no frame before the first
    assert torch.equal(shifted[-1, from_next], states[-1, from_next])  # none after the last
    assert torch.equal(shifted[..., 0], shifted[..., 1])  # every channel moves with its token
    with pytest.raises(ValueError, match="multiple of 4 frames"):
        shift_tokens(states, 4, divisor=7)


def test_fixtures_name_the_official_commit() -> None:
    for name in ("ts2net_head", "ts2net_head_padded", "ts2net_token_shift", "ts2net_topk_statistics"):
        _, metadata = load(name)
        assert (metadata["repo"], metadata["commit"]) == ("LiuRicky/ts2_net", "1d9d4d53d27057f29fbdba9c4c1586dbda294519")
