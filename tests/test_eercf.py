"""Behaviour of the `eercf` preset: the text-gated interaction block scores videos (still images keep CLIP's
[CLS] against the sentence), its loss trains, the two-stage retrieval is the evaluation path, the preset survives
a save/load round trip and train.py, and bad settings fail with a clear message."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from model_inputs import random_image_inputs, random_text_inputs, random_video_inputs
from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor

# Fewer frame slots than the preset's 12, to keep the tests fast; the computation is the same.
FAST = {"max_frames": 4, "rerank_top_k": 3}


def eercf(seed: int = 0, **overrides) -> UniTriMModel:
    torch.manual_seed(seed)
    model = UniTriMModel(UniTriMConfig.from_preset("eercf-tiny", **{**FAST, **overrides})).eval()
    with torch.no_grad():  # leave the identity initialization of the block's matrices
        for parameter in model.text_gated_interaction.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    return model


def test_preset_fields() -> None:
    full, tiny = UniTriMConfig.from_preset("eercf"), UniTriMConfig.from_preset("eercf-tiny")
    assert (full.rerank_top_k, full.max_frames, full.pearson_loss_weight) == (50, 12, 0.001)
    assert full.text_gated_interaction and full.image_text_feature == "sentence" and not full.aosm
    assert tiny.projection_dim == UniTriMConfig.from_preset("xclip-tiny").projection_dim
    assert UniTriMConfig().text_gated_interaction is False and UniTriMConfig().rerank_top_k == 0
    assert torch.equal(UniTriMModel(tiny).text_gated_interaction.frame_weight, torch.eye(12))


def test_videos_carry_every_patch_and_padded_slots_are_zero_frames() -> None:
    model = eercf()
    video = random_video_inputs(model.config, batch_size=3, num_frames=3)
    garbage = {**video, "pixel_values_videos": video["pixel_values_videos"].clone()}
    garbage["pixel_values_videos"][video["video_mask"] == 0] = 1000.0
    text = model.get_text_features(**random_text_inputs(model.config))
    with torch.no_grad():
        features = model.get_video_features(**video)
        scores = model.similarity(text, features)
        with_garbage = model.similarity(text, model.get_video_features(**garbage))
    patches = (model.config.vision_config.image_size // model.config.vision_config.patch_size) ** 2
    assert features.patch_embeds.shape == (3, 4, patches, 32) and features.encoded_frame_embeds.shape == (3, 4, 32)
    assert features.patch_indices is None
    torch.testing.assert_close(with_garbage.logits, scores.logits)
    assert set(scores.alignment_scores) == {
        "sentence_video", "sentence_frame_weak", "sentence_patch_weak", "sentence_frame_strong", "sentence_patch_strong"
    }
    with pytest.raises(ValueError, match="text-gated interaction block is sized for config.max_frames=4"):
        model.get_video_features(**random_video_inputs(model.config, batch_size=1, num_frames=5))


def test_images_are_cls_against_the_sentence() -> None:
    model = eercf()
    inputs = {**random_text_inputs(model.config), **random_image_inputs(model.config)}
    with torch.no_grad():
        output = model(**inputs)
        sentence = torch.nn.functional.normalize(output.text_features.sentence_embeds, dim=-1)
        image = torch.nn.functional.normalize(output.image_features.frame_embeds[:, 0], dim=-1)
    torch.testing.assert_close(output.logits_per_text_image, model.exp_logit_scale() * sentence @ image.T)


def test_training_step_reaches_the_block_and_reports_both_terms() -> None:
    model = eercf().train()
    inputs = {**random_text_inputs(model.config, batch_size=4), **random_video_inputs(model.config, batch_size=4),
              **random_image_inputs(model.config, batch_size=4)}
    output = model(**inputs, return_loss=True)
    assert {"weak", "strong", "inter", "pearson_video", "pearson_frame", "intra", "text_image"} <= set(output.losses)
    expected = output.losses["inter"] + 0.001 * output.losses["intra"] + output.losses["text_image"]
    torch.testing.assert_close(output.loss, expected)
    output.loss.backward()
    assert model.text_gated_interaction.global_weight.grad.abs().max() > 0
    assert model.text_gated_interaction.frame_weight.grad.abs().max() > 0
    assert model.vision_model.embeddings.patch_embedding.weight.grad.abs().max() > 0
    assert output.logits_per_text_video.shape == (4, 4)


def test_round_trip_of_the_preset(tmp_path) -> None:
    model = eercf()
    inputs = {**random_text_inputs(model.config), **random_video_inputs(model.config)}
    model.save_pretrained(tmp_path)
    loaded = UniTriMModel.from_pretrained(tmp_path).eval()
    assert loaded.config.text_gated_interaction and loaded.config.rerank_top_k == 3
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits_per_text_video, model(**inputs).logits_per_text_video,
                                   rtol=0, atol=0)
        text, video = loaded.get_text_features(**random_text_inputs(model.config)), loaded.get_video_features(
            **random_video_inputs(model.config))
        torch.testing.assert_close(loaded.two_stage_similarity(text, video).logits,
                                   model.two_stage_similarity(text, video).logits, rtol=0, atol=0)


def test_evaluate_retrieval_ranks_videos_in_two_stages(tmp_path) -> None:
    from unitrim_hf.data import load_benchmark, video_table
    from unitrim_hf.evaluation import evaluate_retrieval
    from unitrim_hf.evaluation.runner import bidirectional_metrics

    model = eercf(rerank_top_k=2)
    processor = UniTriMProcessor.for_model_config(model.config, frame_sampler_config={"num_frames": 4})
    test = load_benchmark("synthetic", tmp_path / "data", "test", cache_dir=tmp_path / "cache", num_train=2,
                          num_test=6, num_frames=4, frame_size=32)
    result = evaluate_retrieval(model, processor, test, include_images=False, batch_size=6, show_progress=False)
    paths = [video["video_path"] for video in video_table(test)]
    with torch.inference_mode():
        text = model.get_text_features(**processor.encode_text(test["caption"]))
        video = model.get_video_features(**processor.encode_videos(paths))
        two_stage_output = model.two_stage_similarity(text, video)
        two_stage, sentence_video = two_stage_output.logits, two_stage_output.alignment_scores["sentence_video"]
        fine_only = model.similarity(text, video).logits
    targets = torch.from_numpy(np.asarray(test["video_index"]))
    assert result.metrics == bidirectional_metrics(two_stage, targets, "text_to_video", "video_to_text")
    # top-2 by the coarse score first: a video outside them never ranks above one inside
    coarse_top = two_stage.topk(2, dim=1).indices.sort(dim=1).values
    assert torch.equal(coarse_top, sentence_video.topk(2, dim=1).indices.sort(dim=1).values)
    assert not torch.equal(two_stage.argsort(dim=1), fine_only.argsort(dim=1))
    with pytest.raises(ValueError, match="two-stage ranking .* is not one: evaluate with rerank_top_k=0"):
        evaluate_retrieval(model, processor, test, include_images=False, dsl=True, show_progress=False)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"text_gated_interaction": False}, "`rerank_top_k` must be >= 0 and needs `text_gated_interaction=True`"),
        ({"rerank_top_k": -1}, "`rerank_top_k` must be >= 0"),
        ({"max_frames": 0, "rerank_top_k": 0}, "`text_gated_interaction` needs `max_frames` >= 1"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UniTriMModel(UniTriMConfig.from_preset("eercf-tiny", **overrides))


def test_features_without_the_blocks_inputs_are_refused() -> None:
    model = eercf()
    text = model.get_text_features(**random_text_inputs(model.config))
    video = model.get_video_features(**random_video_inputs(model.config))
    video.encoded_frame_embeds = None
    with pytest.raises(ValueError, match=r"needs video features with \['encoded_frame_embeds'\]"):
        model.similarity(text, video)
    with pytest.raises(ValueError, match="two_stage_similarity needs a model with config.text_gated_interaction"):
        UniTriMModel(UniTriMConfig.from_preset("xclip-tiny")).two_stage_similarity(text, video)


def test_the_search_index_refuses_an_eercf_model(tmp_path) -> None:
    from unitrim_hf.search.indexer import Indexer

    model = eercf()
    processor = UniTriMProcessor.for_model_config(model.config, frame_sampler_config={"num_frames": 4})
    with pytest.raises(ValueError, match="evaluate it with unitrim-evaluate instead of indexing it"):
        Indexer(tmp_path / "index", model, processor, progress=False)


def test_train_py_trains_the_preset_for_a_few_steps(tmp_path) -> None:
    from unitrim_hf.training import cli

    output_dir = tmp_path / "run"
    result = cli.run([
        "--preset", "eercf-tiny", "--config_overrides", json.dumps(FAST), "--output_dir", str(output_dir),
        "--data_dir", str(tmp_path / "data"), "--synthetic_num_train", "8", "--synthetic_num_test", "4",
        "--num_frames", "4", "--max_length", "16", "--per_device_train_batch_size", "4", "--max_steps", "2",
        "--do_eval", "false", "--report_to", "jsonl", "--logging_steps", "1",
    ])
    assert result.global_step == 2
    log = [json.loads(line) for line in (output_dir / "logs" / "training_log.jsonl").read_text().splitlines()]
    rows = [row for row in log if "train/loss" in row]
    assert len(rows) == 2 and all(np.isfinite(row["train/loss"]) for row in rows)
    assert any("train/loss_pearson_frame" in row for row in rows)
