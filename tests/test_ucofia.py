"""Behaviour of the `ucofia` preset: its ISA pooling masks as if the masked entries were absent, still images are
pseudo-videos through the video side, the preset survives a save/load round trip and trains with train.py, and bad
settings fail with a clear message."""

from __future__ import annotations

import json

import pytest
import torch

from model_inputs import random_text_inputs, random_video_inputs
from unitrim_hf import UniTriMConfig, UniTriMModel
from unitrim_hf.modeling.alignment_table import ISA_ALIGNMENTS
from unitrim_hf.modeling.interactive_similarity_aggregation import ISA_ALIGNMENT_MATRICES, ISAWeights, isa_pool
from unitrim_hf.modeling.mgsa_scorer import MGSAScorer

# Fewer frame slots and samples than the preset's 12 and 500, to keep the tests fast; the computation is the same.
FAST = {"max_frames": 4, "max_words": 16, "token_selection_samples": 50}


def ucofia(seed: int = 0, **overrides) -> UniTriMModel:
    torch.manual_seed(seed)
    return UniTriMModel(UniTriMConfig.from_preset("ucofia-tiny", **{**FAST, **overrides})).eval()


def perturb(module: torch.nn.Module, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))


def test_isa_pool_with_a_mask_equals_the_pool_of_the_valid_entries_alone() -> None:
    generator = torch.Generator().manual_seed(0)
    similarity = torch.randn(3, 6, generator=generator) * 0.2
    mixing = torch.eye(6) + 0.1 * torch.randn(6, 6, generator=generator)
    valid = torch.tensor([True, True, False, True, False, True])
    masked = isa_pool(similarity, -1, mixing, 0.01, valid[None].expand(3, -1))
    alone = isa_pool(similarity[:, valid], -1, mixing[valid][:, valid], 0.01)
    torch.testing.assert_close(masked, alone)
    # At the identity the second softmax sharpens the first: the pool moves towards the maximum.
    identity = isa_pool(similarity, -1, torch.eye(6), 0.01)
    first = (torch.softmax(similarity / 0.01, dim=-1) * similarity).sum(-1)
    assert (identity >= first - 1e-6).all() and (identity <= similarity.max(-1).values + 1e-6).all()
    with pytest.raises(ValueError, match="ISA matrix of size 6 cannot pool 5 positions"):
        isa_pool(similarity[:, :5], -1, mixing, 0.01)


def test_still_images_are_videos_of_max_frames_copies_through_the_video_side() -> None:
    model = ucofia(token_selection_eval="hard")
    perturb(model.isa)
    images = torch.randn(3, 3, 32, 32)
    text = random_text_inputs(model.config)
    copies = images[:, None].expand(-1, model.config.max_frames, -1, -1, -1)
    with torch.no_grad():
        as_image = model.get_image_features(images)
        as_video = model.get_video_features(copies)
        output = model(**text, pixel_values=images)
        expected = model.similarity(model.get_text_features(**text), as_video)
    assert not as_image.is_image and as_image.token_embeds.shape[1:3] == (model.config.max_frames, 4)
    assert UniTriMConfig.from_preset("ucofia").max_frames == 12  # the paper's 12 copies
    torch.testing.assert_close(as_image.token_embeds, as_video.token_embeds)
    torch.testing.assert_close(output.logits_per_text_image, expected.logits)
    assert set(expected.alignment_scores) == {"sentence_video_bilinear", "sentence_frame_isa", "word_token_isa"}


def test_round_trip_of_the_preset(tmp_path) -> None:
    model = ucofia(token_selection_eval="hard")
    perturb(model.isa)
    perturb(model.token_selector, seed=2)
    inputs = {**random_text_inputs(model.config), **random_video_inputs(model.config)}
    model.save_pretrained(tmp_path)
    loaded = UniTriMModel.from_pretrained(tmp_path).eval()
    assert loaded.config.token_selection_output == "token_embeds" and not loaded.config.isa_token_transform_in_eval
    assert loaded.isa is not None and loaded.token_shift is not None and loaded.config.image_as_pseudo_video
    torch.testing.assert_close(loaded.isa.pixel_mat_weight, model.isa.pixel_mat_weight, rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits_per_text_video, model(**inputs).logits_per_text_video,
                                   rtol=0, atol=0)


def test_training_reaches_every_isa_matrix_and_the_token_scorer() -> None:
    model = ucofia().train()
    perturb(model.isa)
    inputs = {**random_text_inputs(model.config), **random_video_inputs(model.config)}
    model(**inputs, return_loss=True).loss.backward()
    for name, parameter in model.isa.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().max() > 0, name
    assert model.token_selector.scorer.input_proj.weight.grad.abs().max() > 0
    # Outside training the evaluation code's computation: the token transform is left out.
    with torch.no_grad():
        trained = model(**inputs).logits_per_text_video
        model.eval()
        torch.manual_seed(0)
        evaluated = model(**inputs).logits_per_text_video
        model.isa.apply_token_transform_in_eval = True
        torch.manual_seed(0)
        with_transform = model(**inputs).logits_per_text_video
    assert (evaluated - with_transform).abs().max() > 1e-4 and trained.shape == evaluated.shape


@pytest.mark.usefixtures("fresh_accelerate_state")
def test_train_py_runs_the_preset_for_a_few_steps(tmp_path) -> None:
    from unitrim_hf.training import cli

    output_dir = tmp_path / "run"
    result = cli.run([
        "--output_dir", str(output_dir), "--data_dir", str(tmp_path / "data"), "--preset", "ucofia-tiny",
        "--synthetic_num_train", "8", "--synthetic_num_test", "4", "--num_frames", "2", "--max_length", "16",
        "--per_device_train_batch_size", "4", "--report_to", "jsonl", "--logging_steps", "1", "--do_eval", "false",
        "--max_steps", "2", "--config_overrides", '{"token_selection_samples": 20}',
    ])
    assert result.global_step == 2
    log = [json.loads(line) for line in (output_dir / "logs" / "training_log.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(row["train/loss"])) for row in log if "train/loss" in row)
    saved = UniTriMConfig.from_pretrained(output_dir / "final_model")
    assert (saved.max_words, saved.max_frames) == (16, 2)  # the ISA matrices are sized by the run
    assert list(saved.alignments) == ["sentence_video_bilinear", "sentence_frame_isa", "word_token_isa"]


def test_bad_settings_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="needs token selection into the token features"):
        ucofia(token_selection_output="temporal_encoder")
    with pytest.raises(ValueError, match="token_selection_output"):
        ucofia(token_selection_output="patches")
    with pytest.raises(ValueError, match="need the model's ISA matrices"):
        MGSAScorer(["sentence_frame_isa"], 0.01)
    model = ucofia()
    text = random_text_inputs(model.config, length=20)
    with pytest.raises(ValueError, match="ISA matrices are sized for config.max_words=16"):
        model.get_text_features(**text)
    video = random_video_inputs(model.config, batch_size=1, num_frames=5)
    with pytest.raises(ValueError, match="ISA matrices are sized for config.max_frames=4"):
        model.get_video_features(**video)
    with torch.no_grad():  # features without the kept tokens (as read back from a search index)
        text = model.get_text_features(**random_text_inputs(model.config))
        features = model.get_video_features(**random_video_inputs(model.config, batch_size=2))
        features.token_embeds = None
        with pytest.raises(ValueError, match="reads `token_embeds`"):
            model.similarity(text, features)


def test_other_presets_have_no_isa_matrices() -> None:
    for name in ("xclip-tiny", "ts2net-tiny", "unitrim-tiny"):
        config = UniTriMConfig.from_preset(name)
        assert not config.uses_isa and config.token_selection_output == "temporal_encoder"
    assert isinstance(ucofia().isa, ISAWeights)
    assert tuple(ISA_ALIGNMENT_MATRICES) == ISA_ALIGNMENTS  # the table and the matrices name the same alignments


def test_evaluation_sk_norm_normalizes_each_level_as_ucofia(tmp_path) -> None:
    from unitrim_hf import UniTriMProcessor
    from unitrim_hf.data import load_benchmark, video_table
    from unitrim_hf.evaluation import evaluate_retrieval, text_to_video_metrics
    from unitrim_hf.modeling.level_sinkhorn import sinkhorn_normalized_level_logits
    from unitrim_hf.modeling.mgsa_scorer import alignment_logits

    model = ucofia(token_selection_eval="hard")
    perturb(model.isa)
    processor = UniTriMProcessor.for_model_config(model.config, frame_sampler_config={"num_frames": 4})
    splits = {split: load_benchmark("synthetic", tmp_path / "data", split, cache_dir=tmp_path / "cache", num_train=6,
                                    num_test=4, num_frames=4, frame_size=32) for split in ("train", "test")}
    test, train = splits["test"], splits["train"]
    result = evaluate_retrieval(model, processor, test, include_images=False, per_alignment=False,
                                postprocessing="sk_norm", query_bank=train, show_progress=False)
    paths = [video["video_path"] for video in video_table(test)]
    with torch.inference_mode():
        videos = model.get_video_features(**processor.encode_videos(paths))
        scale = model.exp_logit_scale()
        levels = {name: alignment_logits(model.similarity(model.get_text_features(**processor.encode_text(captions)),
                                                          videos).alignment_scores, scale)
                  for name, captions in (("test", test["caption"]), ("bank", train["caption"]))}
    expected = sinkhorn_normalized_level_logits(levels["test"], levels["bank"])
    targets = torch.as_tensor(test["video_index"])
    assert result.postprocessed_metrics["sk_norm"]["text_to_video"]["MnR"] == pytest.approx(
        text_to_video_metrics(expected, targets)["MnR"])
    assert result.settings["postprocessing_details"]["sk_norm"] == {"text_to_video_normalized_levels": 3}


def test_the_processor_cuts_captions_to_the_isa_matrices_size() -> None:
    from unitrim_hf import UniTriMProcessor

    config = UniTriMConfig.from_preset("ucofia-tiny", max_words=10)
    assert UniTriMProcessor.for_model_config(config).max_length == 10
    with pytest.raises(ValueError, match="exceeds the model's config.max_words=10"):
        UniTriMProcessor.for_model_config(config, max_length=16)


def test_from_clip_builds_the_preset_with_identity_isa_matrices() -> None:
    from transformers import CLIPConfig, CLIPModel

    tiny = UniTriMConfig.from_preset("ucofia-tiny")
    clip = CLIPModel(CLIPConfig(text_config=tiny.text_config.to_dict(), vision_config=tiny.vision_config.to_dict(),
                                projection_dim=32)).eval()
    model = UniTriMModel.from_clip(clip, preset="ucofia-tiny", **FAST).eval()
    for name, parameter in model.isa.named_parameters():
        assert torch.equal(parameter, torch.eye(parameter.shape[0])), name
    assert model.isa.pixel_mat_weight.shape == (4 * 4, 4 * 4)  # max_frames x (1 + 3 kept tokens)
    torch.testing.assert_close(model.logit_scale, clip.logit_scale)
