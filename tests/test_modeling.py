"""UniTriMModel on tiny configs: presets, gradients, invariances, blockwise scoring, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from model_inputs import random_image_inputs, random_text_inputs, random_video_inputs
from unitrim_hf import UniTriMConfig, UniTriMModel

TINY_PRESETS = ["unitrim-tiny", "xclip-tiny", "clip4clip-meanp-tiny"]


def tiny_model(preset: str = "unitrim-tiny", **overrides) -> UniTriMModel:
    torch.manual_seed(0)
    return UniTriMModel(UniTriMConfig.from_preset(preset, **overrides))


def all_inputs(config: UniTriMConfig, batch_size: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    return {
        **random_text_inputs(config, batch_size, seed),
        **random_video_inputs(config, batch_size, seed=seed),
        **random_image_inputs(config, batch_size, seed),
    }


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_every_preset_runs_forward_and_backward(preset: str) -> None:
    model = tiny_model(preset).train()
    output = model(**all_inputs(model.config), return_loss=True)
    assert torch.isfinite(output.loss)
    output.loss.backward()
    assert output.logits_per_text_video.shape == (3, 3)
    assert output.logits_per_text_image.shape == (3, 3)
    expected = {"text_video", "text_image"} | ({"reconstruction", "orthogonality"} if model.config.use_disentangler else set())
    assert set(output.losses) == expected


def test_every_trainable_parameter_gets_a_gradient_in_unitrim() -> None:
    model = tiny_model("unitrim-tiny").train()
    inputs = all_inputs(model.config, batch_size=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    # At step 0 the temporal layers sit behind a zero output projection; after one step all receive gradient.
    for _ in range(2):
        optimizer.zero_grad()
        model(**inputs, return_loss=True).loss.backward()
        optimizer.step()
    without_gradient = [
        name for name, parameter in model.named_parameters()
        if parameter.requires_grad and (parameter.grad is None or not parameter.grad.abs().sum() > 0)
    ]
    assert without_gradient == []


def test_switched_off_modules_have_no_parameters() -> None:
    baseline = tiny_model("clip4clip-meanp-tiny")
    assert baseline.patch_selector is None and baseline.temporal_encoder is None and baseline.disentangler is None
    clip_names = baseline.clip_parameter_names()
    assert clip_names == {name for name, _ in baseline.named_parameters()}
    full = tiny_model("unitrim-tiny")
    assert full.patch_selector is not None and full.temporal_encoder is not None and full.disentangler is not None
    text = full.get_text_features(**random_text_inputs(full.config))
    assert text.triplet_embeds is not None and text.spatial_embeds is not None
    text = baseline.get_text_features(**random_text_inputs(baseline.config))
    assert text.word_embeds is None and text.triplet_embeds is None and text.spatial_embeds is None


def test_image_features_are_clip_image_features_without_temporal_encoder_or_patches() -> None:
    model = tiny_model().eval()
    with torch.no_grad():
        for parameter in model.temporal_encoder.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)  # leave the zero initialization
        pixel_values = random_image_inputs(model.config)["pixel_values"]
        image = model.get_image_features(pixel_values)
        clip_image = model.visual_projection(model.vision_model(pixel_values=pixel_values).pooler_output)
    torch.testing.assert_close(image.frame_embeds[:, 0], clip_image, rtol=0, atol=0)
    torch.testing.assert_close(image.video_embeds, torch.nn.functional.normalize(clip_image, dim=-1), rtol=1e-6, atol=1e-6)
    assert image.is_image and image.patch_embeds is None and image.video_mask.shape == (3, 1)


def manual_text_to_image_logits(model: UniTriMModel, text, image) -> torch.Tensor:
    """The paper's text->image score written out: t = s + mean(triplets) + mean(words); cos(E_sp(t), image) with
    the disentangler, cos(t, image) without it (No-Disentangle), times the logit scale."""
    triplets = (text.triplet_embeds * text.triplet_mask[..., None]).sum(1) / text.triplet_mask.sum(1, keepdim=True)
    words = (text.word_embeds * text.word_mask[..., None]).sum(1) / text.word_mask.sum(1, keepdim=True)
    combined = text.sentence_embeds + triplets + words
    query = combined
    if model.disentangler is not None:  # E_sp(t) = t̂ + g · MLP_sp(t̂), a gated residual on the normalized t
        normalized = torch.nn.functional.normalize(combined, dim=-1)
        query = normalized + model.disentangler.spatial_gate * model.disentangler.spatial_encoder(normalized)
    cosine = torch.nn.functional.normalize(query, dim=-1) @ torch.nn.functional.normalize(image.frame_embeds[:, 0], dim=-1).t()
    return model.logit_scale.exp() * cosine


@pytest.mark.parametrize("use_disentangler", [True, False])
def test_text_to_image_is_one_text_feature_against_the_clip_image_feature(use_disentangler: bool) -> None:
    model = tiny_model(use_disentangler=use_disentangler).eval()
    inputs = all_inputs(model.config, batch_size=4)
    with torch.no_grad():
        if use_disentangler:
            model.disentangler.spatial_gate.fill_(0.7)  # as after training: the spatial MLP takes part
        output = model(**inputs)
        expected = manual_text_to_image_logits(model, output.text_features, output.image_features)
        similarity = model.similarity(output.text_features, output.image_features)
    torch.testing.assert_close(output.logits_per_text_image, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(similarity.logits, expected, rtol=1e-5, atol=1e-5)
    assert set(similarity.alignment_scores) == {"text_image"}
    text = output.text_features
    assert text.combined_embeds is not None
    assert (text.spatial_embeds is not None) == use_disentangler
    torch.testing.assert_close(text.image_text_embeds, text.spatial_embeds if use_disentangler else text.combined_embeds)


def test_clip4clip_text_to_image_is_clip() -> None:
    model = tiny_model("clip4clip-meanp-tiny").eval()
    inputs = all_inputs(model.config)
    with torch.no_grad():
        output = model(**inputs)
        sentence = torch.nn.functional.normalize(output.text_features.sentence_embeds, dim=-1)
        image = torch.nn.functional.normalize(output.image_features.frame_embeds[:, 0], dim=-1)
    torch.testing.assert_close(output.logits_per_text_image, model.logit_scale.exp() * sentence @ image.t(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_padded_frames_do_not_change_any_score(preset: str) -> None:
    model = tiny_model(preset).eval()
    with torch.no_grad():
        for parameter in model.temporal_encoder.parameters() if model.temporal_encoder else []:
            parameter.add_(torch.randn_like(parameter) * 0.1)  # leave the zero initialization
    text = model.get_text_features(**random_text_inputs(model.config))
    video = random_video_inputs(model.config, batch_size=3, num_frames=4)
    video["video_mask"] = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0]])
    garbage = video["pixel_values_videos"].clone()
    garbage[video["video_mask"] == 0] = 1000.0
    longer = {
        "pixel_values_videos": torch.cat([garbage, torch.randn(3, 2, *garbage.shape[2:])], dim=1),
        "video_mask": torch.cat([video["video_mask"], torch.zeros(3, 2, dtype=torch.long)], dim=1),
    }
    with torch.no_grad():
        reference = model.similarity(text, model.get_video_features(**video))
        padded = model.similarity(text, model.get_video_features(**longer))
    torch.testing.assert_close(padded.logits, reference.logits, rtol=1e-5, atol=1e-5)
    for name in reference.alignment_scores:
        torch.testing.assert_close(padded.alignment_scores[name], reference.alignment_scores[name], rtol=1e-5, atol=1e-5)


def test_text_features_do_not_depend_on_the_videos_in_the_batch() -> None:
    model = tiny_model().eval()
    text_inputs = random_text_inputs(model.config)
    with torch.no_grad():
        first = model(**text_inputs, **random_video_inputs(model.config, seed=1)).text_features
        second = model(**text_inputs, **random_video_inputs(model.config, seed=2)).text_features
    for field in ("sentence_embeds", "word_embeds", "triplet_embeds", "spatial_embeds"):
        torch.testing.assert_close(getattr(first, field), getattr(second, field), rtol=0, atol=0)


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_blockwise_similarity_equals_unblocked(preset: str) -> None:
    model = tiny_model(preset).eval()
    with torch.no_grad():
        text = model.get_text_features(**random_text_inputs(model.config, batch_size=7))
        video = model.get_video_features(**random_video_inputs(model.config, batch_size=5))
        whole = model.similarity(text, video, text_block_size=100, visual_block_size=100)
        blocked = model.similarity(text, video, text_block_size=2, visual_block_size=3)
        direct = model.similarity(text, video, max_block_elements=None).logits
    torch.testing.assert_close(blocked.logits, whole.logits, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(direct, whole.logits, rtol=1e-6, atol=1e-6)
    assert set(whole.alignment_scores) == set(model.config.alignments)
    mean = torch.stack(list(whole.alignment_scores.values())).mean(0) * model.logit_scale.exp()
    torch.testing.assert_close(whole.logits, mean, rtol=1e-5, atol=1e-5)


def test_batch_results_equal_rows_run_alone() -> None:
    model = tiny_model().eval()
    text_inputs = random_text_inputs(model.config, batch_size=4)
    video_inputs = random_video_inputs(model.config, batch_size=4)
    with torch.no_grad():
        batched = model(**text_inputs, **video_inputs).logits_per_text_video
        for row in range(4):
            single_text = {key: value[row : row + 1] for key, value in text_inputs.items()}
            single_video = {key: value[row : row + 1] for key, value in video_inputs.items()}
            alone = model(**single_text, **single_video).logits_per_text_video
            torch.testing.assert_close(alone[0, 0], batched[row, row], rtol=1e-5, atol=1e-5)


def test_scores_are_bounded_cosines_and_logits_finite() -> None:
    model = tiny_model().eval()
    with torch.no_grad():
        output = model(**all_inputs(model.config))
    for name, score in output.alignment_scores.items():
        assert torch.isfinite(score).all(), name
        assert score.abs().max() <= 1.0 + 1e-5, name


def test_patch_selection_keeps_top_k_in_eval_and_is_differentiable_in_training() -> None:
    from unitrim_hf.modeling.patch_selection import select_top_k_patches

    patches = torch.randn(2, 5, 3, requires_grad=True)
    scores = torch.tensor([[0.1, 0.9, 0.3, 0.8, 0.0], [1.0, 0.0, 0.5, 0.2, 0.7]], requires_grad=True)
    hard, indices = select_top_k_patches(patches, scores, top_k=2, straight_through=False)
    assert indices.tolist() == [[1, 3], [0, 4]]
    torch.testing.assert_close(hard, torch.stack([patches[0, [1, 3]], patches[1, [0, 4]]]))
    soft, soft_indices = select_top_k_patches(patches, scores, top_k=2, straight_through=True)
    torch.testing.assert_close(soft, hard)  # same forward value
    soft.sum().backward()
    assert scores.grad is not None and scores.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="top_k"):
        select_top_k_patches(patches, scores, top_k=6, straight_through=False)


def test_caption_without_triplets_uses_its_sentence() -> None:
    model = tiny_model().eval()
    inputs = random_text_inputs(model.config, batch_size=3)
    inputs["triplet_mask"][0] = 0
    with torch.no_grad():
        text = model.get_text_features(**inputs)
    torch.testing.assert_close(text.triplet_embeds[0, 0], text.sentence_embeds[0])
    assert text.triplet_mask[0].tolist() == [True, False, False, False]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"input_ids": torch.zeros(3, 2, 12, dtype=torch.long)}, r"input_ids.*\(batch_size, sequence_length\)"),
        ({"pixel_values_videos": torch.zeros(3, 3, 32, 32)}, r"pixel_values_videos.*\(batch_size, num_frames, 3, height, width\)"),
        ({"video_mask": torch.zeros(3, 4)}, r"video_mask.*no valid frame"),
        ({"video_mask": torch.ones(3, 5)}, r"video_mask.*must match `pixel_values_videos`"),
        ({"triplet_input_ids": None}, r"triplet_input_ids.*\(batch_size, max_triplets, triplet_length\)"),
        ({"triplet_mask": torch.ones(2, 4)}, r"triplet_mask.*must match"),
        ({"pixel_values": torch.zeros(3, 32, 32)}, r"pixel_values.*\(batch_size, 3, height, width\)"),
    ],
)
def test_bad_input_names_the_argument_and_shape(changes: dict, message: str) -> None:
    model = tiny_model()
    inputs = {**all_inputs(model.config), **changes}
    with pytest.raises(ValueError, match=message):
        model(**inputs)


def test_mismatched_batch_sizes_raise_for_the_loss() -> None:
    model = tiny_model()
    inputs = {**random_text_inputs(model.config, batch_size=3), **random_video_inputs(model.config, batch_size=2)}
    with pytest.raises(ValueError, match="same batch size"):
        model(**inputs, return_loss=True)


def test_config_rejects_contradicting_switches() -> None:
    with pytest.raises(ValueError, match="word_patch"):
        UniTriMConfig.from_preset("unitrim-tiny", patch_top_k=0)
    with pytest.raises(ValueError, match="triplet_frame"):
        UniTriMConfig.from_preset("unitrim-tiny", use_triplets=False)
    with pytest.raises(ValueError, match="Unknown preset"):
        UniTriMConfig.from_preset("nope")
    with pytest.raises(ValueError, match="Unknown alignments"):
        UniTriMConfig(alignments=["sentence_video", "word_word"])


def test_presets_match_the_design() -> None:
    unitrim = UniTriMConfig.from_preset("unitrim")
    assert unitrim.alignments == ["sentence_video", "sentence_frame", "triplet_frame", "word_frame", "word_patch"]
    assert (unitrim.num_temporal_layers, unitrim.patch_top_k, unitrim.use_disentangler) == (4, 6, True)
    assert unitrim.vision_config.patch_size == 32 and unitrim.projection_dim == 512
    xclip = UniTriMConfig.from_preset("xclip")
    assert xclip.alignments == ["sentence_video", "sentence_frame", "word_frame", "word_video"]
    assert (xclip.patch_top_k, xclip.use_triplets, xclip.use_disentangler) == (0, False, False)
    meanp = UniTriMConfig.from_preset("clip4clip-meanp", patch_top_k=0)
    assert meanp.alignments == ["sentence_video"] and meanp.num_temporal_layers == 0


def test_default_tiles_bound_memory_and_match_one_tile() -> None:
    model = tiny_model().eval()
    with torch.no_grad():
        text = model.get_text_features(**random_text_inputs(model.config, batch_size=6))
        video = model.get_video_features(**random_video_inputs(model.config, batch_size=5))
        per_pair = model.scorer.units_per_pair(text, video)
        # AOSM matrices size the frame slots: videos are padded to config.max_frames.
        assert per_pair["word_patch"] == text.word_embeds.shape[1] * model.config.max_frames * model.config.patch_top_k
        assert max(per_pair.values()) == per_pair["word_patch"]
        tiny_tiles = model.similarity(text, video, max_block_elements=per_pair["word_patch"] * 5)  # one text per tile
        one_tile = model.similarity(text, video, text_block_size=6, visual_block_size=5)
    torch.testing.assert_close(tiny_tiles.logits, one_tile.logits, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_compiled_scoring_gives_the_same_numbers() -> None:
    model = tiny_model().eval()
    with torch.no_grad():
        text = model.get_text_features(**random_text_inputs(model.config, batch_size=5))
        video = model.get_video_features(**random_video_inputs(model.config, batch_size=4))
        eager = model.similarity(text, video)
        model.compile_similarity()
        compiled = model.similarity(text, video, text_block_size=2, visual_block_size=3)
    torch.testing.assert_close(compiled.logits, eager.logits, rtol=1e-4, atol=1e-4)


def test_half_precision_scores_are_finite_with_padding() -> None:
    model = tiny_model().eval().to(torch.float16)
    inputs = all_inputs(model.config)  # padded frames and empty triplet slots
    inputs = {key: value.half() if value.is_floating_point() else value for key, value in inputs.items()}
    with torch.no_grad():
        output = model(**inputs)
    for name, score in output.alignment_scores.items():
        assert torch.isfinite(score).all(), name
    assert torch.isfinite(output.logits_per_text_image).all()


def test_logit_scale_at_clips_cap_still_learns() -> None:
    model = tiny_model().train()
    with torch.no_grad():
        model.logit_scale.fill_(4.6052)  # OpenAI CLIP's stored value, a hair above ln(100)
    model.clamp_logit_scale_()
    assert model.logit_scale.item() <= torch.tensor(math.log(100.0)).item()  # in float32
    model(**all_inputs(model.config), return_loss=True).loss.backward()
    assert model.logit_scale.grad is not None and model.logit_scale.grad.abs() > 0


def test_video_mask_with_padding_before_a_real_frame_is_rejected() -> None:
    model = tiny_model()
    inputs = {**random_text_inputs(model.config), **random_video_inputs(model.config)}
    inputs["video_mask"] = torch.tensor([[1, 1, 1, 1], [0, 1, 1, 0], [1, 0, 0, 0]])
    with pytest.raises(ValueError, match=r"batch index \[1\].*real frames come first"):
        model(**inputs)
