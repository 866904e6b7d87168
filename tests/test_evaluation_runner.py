"""evaluate_retrieval, its reports and the unitrim-eval CLI on a tiny random model and real-format fixtures."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import torch

from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor
from unitrim_hf.data import MSVD, load_benchmark, prepare_frames, select_keyframe_index, video_table
from unitrim_hf.evaluation import (
    RetrievalEvaluation,
    evaluate_retrieval,
    inverted_softmax,
    text_to_video_metrics,
    video_to_text_metrics,
)
from unitrim_hf.evaluation.cli import main as eval_main
from unitrim_hf.evaluation.postprocessing import (
    dual_softmax_text_to_video,
    dual_softmax_video_to_text,
    querybank_normalize,
    sinkhorn_normalize,
)
from unitrim_hf.evaluation.report import METRIC_FIELDS, round_metrics

try:
    from test_data_support import write_msvd
except ImportError:  # tests collected as a package
    from tests.test_data_support import write_msvd

NUM_TEST_VIDEOS = 8
METRIC_KEYS = {"R@1", "R@5", "R@10", "MdR", "MnR", "Rsum", "num_queries"}
DIRECTIONS = {"text_to_video", "video_to_text", "text_to_image", "image_to_text"}


@pytest.fixture(scope="module")
def tiny_model_and_processor():
    torch.manual_seed(0)
    config = UniTriMConfig.from_preset("unitrim-tiny")
    model = UniTriMModel(config).eval()
    processor = UniTriMProcessor.for_model_config(config, frame_sampler_config={"num_frames": 4})
    return model, processor


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    return tmp_path_factory.mktemp("synthetic")


@pytest.fixture(scope="module")
def synthetic_test(synthetic_root, tmp_path_factory):
    # frame_size = the tiny model's image size, so cached frames are the decoded frames bit for bit.
    return load_benchmark(
        "synthetic", synthetic_root, "test", cache_dir=tmp_path_factory.mktemp("hf_cache"),
        num_train=2, num_test=NUM_TEST_VIDEOS, num_frames=8, frame_size=32,
    )


@pytest.fixture(scope="module")
def evaluation(tiny_model_and_processor, synthetic_test):
    model, processor = tiny_model_and_processor
    return evaluate_retrieval(model, processor, synthetic_test, dsl=True, batch_size=3, block_size=5, show_progress=False)


@pytest.fixture(scope="module")
def direct_scores(tiny_model_and_processor, synthetic_test):
    """Similarity computed without the runner: processor on the raw captions and files, one forward each."""
    model, processor = tiny_model_and_processor
    videos = video_table(synthetic_test)
    paths = [video["video_path"] for video in videos]
    keyframes = []
    for path in paths:
        sampled = processor.frame_sampler(path)
        keyframes.append(sampled.frames[select_keyframe_index(sampled.frames, sampled.mask)])
    with torch.inference_mode():
        text = model.get_text_features(**processor.encode_text(synthetic_test["caption"]))
        video = model.get_video_features(**processor.encode_videos(paths))
        image = model.get_image_features(**processor.encode_images(keyframes))
        video_similarity = model.similarity(text, video)
        image_similarity = model.similarity(text, image)
    return {
        "caption_to_video": np.asarray(synthetic_test["video_index"]),
        "video_logits": video_similarity.logits,
        "alignment_scores": video_similarity.alignment_scores,
        "image_logits": image_similarity.logits,
    }


def test_metric_keys_and_ranges(evaluation):
    assert set(evaluation.metrics) == DIRECTIONS
    for direction, values in evaluation.metrics.items():
        assert set(values) == METRIC_KEYS, direction
        assert values["num_queries"] == NUM_TEST_VIDEOS
        for key in ("R@1", "R@5", "R@10"):
            assert 0.0 <= values[key] <= 100.0
        assert values["R@1"] <= values["R@5"] <= values["R@10"]
        assert 1.0 <= values["MdR"] <= NUM_TEST_VIDEOS and 1.0 <= values["MnR"] <= NUM_TEST_VIDEOS
        assert values["Rsum"] == pytest.approx(values["R@1"] + values["R@5"] + values["R@10"])
    assert evaluation.num_captions == evaluation.num_videos == NUM_TEST_VIDEOS
    assert evaluation.skipped_videos == []


def test_runner_matches_metrics_computed_by_hand(evaluation, direct_scores):
    targets = direct_scores["caption_to_video"]
    assert evaluation.metrics["text_to_video"] == pytest.approx(
        {**text_to_video_metrics(direct_scores["video_logits"], targets), "Rsum": evaluation.metrics["text_to_video"]["Rsum"]}
    )
    assert evaluation.metrics["video_to_text"]["R@1"] == pytest.approx(
        video_to_text_metrics(direct_scores["video_logits"], targets)["R@1"]
    )
    assert evaluation.metrics["text_to_image"]["MnR"] == pytest.approx(
        text_to_video_metrics(direct_scores["image_logits"], targets)["MnR"]
    )


def test_training_mode_is_restored(tiny_model_and_processor, synthetic_test):
    model, processor = tiny_model_and_processor
    model.train()
    try:
        evaluate_retrieval(model, processor, synthetic_test, include_images=False, per_alignment=False, show_progress=False)
        assert model.training
    finally:
        model.eval()


def test_per_alignment_metrics_from_the_same_pass(evaluation, direct_scores, tiny_model_and_processor):
    model, _ = tiny_model_and_processor
    assert set(evaluation.alignment_metrics) == set(model.config.alignments) | {"all"}
    targets = direct_scores["caption_to_video"]
    for name, scores in direct_scores["alignment_scores"].items():
        assert evaluation.alignment_metrics[name]["text_to_video"]["MnR"] == pytest.approx(
            text_to_video_metrics(scores, targets)["MnR"]
        ), name
    assert evaluation.alignment_metrics["all"]["text_to_video"]["MnR"] == pytest.approx(evaluation.metrics["text_to_video"]["MnR"])


def test_dsl_is_reported_separately(evaluation, direct_scores, tiny_model_and_processor, synthetic_test):
    targets = direct_scores["caption_to_video"]
    expected = text_to_video_metrics(inverted_softmax(direct_scores["video_logits"]), targets)
    assert evaluation.dsl_metrics["text_to_video"]["MnR"] == pytest.approx(expected["MnR"])
    # The plain metrics are the same with and without DSL.
    model, processor = tiny_model_and_processor
    plain = evaluate_retrieval(model, processor, synthetic_test, include_images=False, per_alignment=False, show_progress=False)
    assert plain.dsl_metrics is None and plain.alignment_metrics is None
    assert plain.metrics["text_to_video"] == evaluation.metrics["text_to_video"]


def test_corrupt_video_is_skipped_and_reported(tiny_model_and_processor, synthetic_test, direct_scores, tmp_path, caplog):
    model, processor = tiny_model_and_processor
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    bad_index = 3
    bad_id = video_table(synthetic_test)[bad_index]["video_id"]
    broken = synthetic_test.map(
        lambda row: {"video_path": str(corrupt) if row["video_index"] == bad_index else row["video_path"]}
    )
    with caplog.at_level(logging.WARNING):
        result = evaluate_retrieval(model, processor, broken, dsl=True, show_progress=False)
    assert result.skipped_videos == [bad_id] and bad_id in result.skipped_reasons
    assert any("1 of 8 videos could not be decoded" in message for message in caplog.messages)
    assert result.num_videos == result.num_captions == NUM_TEST_VIDEOS - 1
    for table in (result.metrics, result.dsl_metrics):
        assert all(math.isfinite(value) for values in table.values() for value in values.values())
    keep = np.asarray([index for index in range(NUM_TEST_VIDEOS) if index != bad_index])
    remaining = direct_scores["video_logits"][keep][:, keep]
    assert result.metrics["text_to_video"]["MnR"] == pytest.approx(text_to_video_metrics(remaining)["MnR"])
    assert result.metrics["video_to_text"]["R@1"] == pytest.approx(video_to_text_metrics(remaining)["R@1"])
    assert bad_id in result.to_markdown()


def test_frame_cache_gives_the_same_metrics(tiny_model_and_processor, synthetic_test, evaluation, tmp_path):
    model, processor = tiny_model_and_processor
    cache = prepare_frames(synthetic_test, processor.frame_sampler, tmp_path / "frames", image_size=32)
    cached = evaluate_retrieval(model, processor, synthetic_test, frame_cache=cache, dsl=True, show_progress=False)
    assert cached.settings["frames_from"] == "frame_cache"
    for direction in DIRECTIONS:
        assert cached.metrics[direction] == pytest.approx(evaluation.metrics[direction]), direction
    for name, directions in evaluation.alignment_metrics.items():
        assert cached.alignment_metrics[name]["text_to_video"] == pytest.approx(directions["text_to_video"]), name


def test_multi_caption_msvd_protocol(tiny_model_and_processor, tmp_path):
    captions = {
        "train_1_2": [["a", "cat", "sleeps"]],
        "val_1_2": [["a", "bird", "sings"]],
        "aaa_1_5": [["a", "dog", "runs"], ["a", "dog", "is", "running"], ["the", "dog", "runs", "fast"]],
        "bbb_2_9": [["a", "man", "cooks"], ["a", "dog", "runs"]],  # a caption shared with aaa_1_5
        "ccc_3_4": [["a", "woman", "sings"]],
    }
    splits = {"train": ["train_1_2"], "validation": ["val_1_2"], "test": ["aaa_1_5", "bbb_2_9", "ccc_3_4"]}
    extensions = {video_id: ".mp4" for video_id in captions}
    root = write_msvd(tmp_path / "msvd", captions, splits, extensions)
    builder = MSVD(data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    test = builder.as_dataset("test")
    model, processor = tiny_model_and_processor
    result = evaluate_retrieval(model, processor, test, show_progress=False)
    assert result.num_captions == 6 and result.num_videos == 3
    assert result.settings["num_unique_captions"] == 5
    assert result.metrics["text_to_video"]["num_queries"] == 6
    assert result.metrics["video_to_text"]["num_queries"] == 3

    targets = np.asarray(test["video_index"])
    assert targets.tolist() == [0, 0, 0, 1, 1, 2]
    paths = [video["video_path"] for video in video_table(test)]
    with torch.inference_mode():
        logits = model.similarity(
            model.get_text_features(**processor.encode_text(test["caption"])),
            model.get_video_features(**processor.encode_videos(paths)),
        ).logits
    assert result.metrics["text_to_video"]["MnR"] == pytest.approx(text_to_video_metrics(logits, targets)["MnR"])
    assert result.metrics["video_to_text"]["MnR"] == pytest.approx(video_to_text_metrics(logits, targets)["MnR"])

    # Post-processing with several captions per video and a caption text ("a dog runs") of two videos.
    train = builder.as_dataset("train")
    post = evaluate_retrieval(model, processor, test, include_images=False, per_alignment=False, show_progress=False,
                              postprocessing=["dsl", "qb_norm", "sk_norm"], query_bank=train)
    assert post.metrics["text_to_video"] == result.metrics["text_to_video"]
    distinct = list(dict.fromkeys(test["caption"]))
    query_ids = [distinct.index(caption) for caption in test["caption"]]
    with torch.inference_mode():  # each distinct caption encoded once, as the runner does
        logits = model.similarity(
            model.get_text_features(**processor.encode_text(distinct)), model.get_video_features(**processor.encode_videos(paths)),
        ).logits[query_ids]
    dsl = dual_softmax_text_to_video(logits, caption_to_video=targets, query_ids=query_ids)
    assert post.postprocessed_metrics["dsl"]["text_to_video"]["MnR"] == pytest.approx(text_to_video_metrics(dsl, targets)["MnR"])
    assert post.postprocessed_metrics["dsl"]["video_to_text"]["MnR"] == pytest.approx(
        video_to_text_metrics(dual_softmax_video_to_text(logits), targets)["MnR"]
    )
    with torch.inference_mode():
        bank_logits = model.similarity(
            model.get_text_features(**processor.encode_text(train["caption"])),
            model.get_video_features(**processor.encode_videos(paths)),
        ).logits
    scale = float(model.exp_logit_scale())
    qb = querybank_normalize(logits.double() / scale, bank_logits.double() / scale)
    sk = sinkhorn_normalize(logits, bank_logits)
    assert post.postprocessed_metrics["qb_norm"]["text_to_video"]["MnR"] == pytest.approx(text_to_video_metrics(qb, targets)["MnR"])
    assert post.postprocessed_metrics["sk_norm"]["text_to_video"]["MnR"] == pytest.approx(text_to_video_metrics(sk, targets)["MnR"])
    assert set(post.postprocessed_metrics["qb_norm"]) == {"text_to_video"}  # a caption bank ranks text queries only
    assert post.settings["query_bank"] == {"num_captions": 1, "split": "train"}
    with pytest.raises(ValueError, match="shares 3 videos.*leaks the answers"):
        evaluate_retrieval(model, processor, test, postprocessing="sk_norm", query_bank=test, show_progress=False)
    with pytest.raises(ValueError, match="qb_norm normalize by a bank of training captions: pass query_bank"):
        evaluate_retrieval(model, processor, test, postprocessing="qb_norm", show_progress=False)


def test_dataset_without_video_index_is_rejected(tiny_model_and_processor, synthetic_test):
    model, processor = tiny_model_and_processor
    with pytest.raises(ValueError, match="video_index"):
        evaluate_retrieval(model, processor, synthetic_test.remove_columns("video_index"), show_progress=False)


def test_json_and_markdown_reports(evaluation, tmp_path):
    evaluation.save(tmp_path / "report")
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    # Numbers are kept to two decimals in the file (29.0, not 28.999999999999996).
    expected = evaluation.to_dict()
    for key in (*METRIC_FIELDS, "timings"):
        expected[key] = round_metrics(expected[key])
    assert saved == json.loads(json.dumps(expected))
    assert RetrievalEvaluation.from_dict(saved).metrics == round_metrics(evaluation.metrics)
    markdown = (tmp_path / "report" / "metrics.md").read_text()
    assert markdown == evaluation.to_markdown()
    assert f"{evaluation.metrics['text_to_video']['R@10']:.1f}" in markdown
    assert "text → image" in markdown and "DSL" in markdown and "word_patch" in markdown


def test_cli_end_to_end(tiny_model_and_processor, synthetic_root, synthetic_test, tmp_path, capsys):
    model, processor = tiny_model_and_processor
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    output_dir = tmp_path / "eval"
    exit_code = eval_main([
        "--model", str(tmp_path / "model"), "--benchmark", "synthetic", "--data_dir", str(synthetic_root),
        "--split", "test", "--cache_dir", str(tmp_path / "hf_cache"), "--output_dir", str(output_dir),
        "--dsl", "--qb_norm", "--sk_norm", "--query_bank_size", "3", "--batch_size", "4", "--device", "cpu",
        "--no_progress",
    ])
    assert exit_code == 0
    printed = capsys.readouterr().out
    assert "text → video" in printed
    assert "| R@1 raw | R@1 DSL | R@1 QB-Norm | R@1 SK-norm |" in printed  # post-processed beside the raw numbers
    saved = json.loads((output_dir / "metrics.json").read_text())
    assert (output_dir / "metrics.md").is_file()
    assert saved["settings"]["benchmark"] == "synthetic" and saved["num_videos"] == NUM_TEST_VIDEOS
    reloaded = UniTriMModel.from_pretrained(tmp_path / "model")
    expected = evaluate_retrieval(reloaded, processor, synthetic_test, dsl=True, show_progress=False)
    for direction in DIRECTIONS:  # the file keeps two decimals
        assert saved["metrics"][direction] == pytest.approx(expected.metrics[direction], abs=0.005), direction
        assert saved["dsl_metrics"][direction] == pytest.approx(expected.dsl_metrics[direction], abs=0.005), direction
    assert saved["settings"]["query_bank"] == {"num_captions": 3, "split": "train"}
    assert set(saved["postprocessed_metrics"]) == {"dsl", "qb_norm", "sk_norm"}
    assert saved["settings"]["postprocessing"]["qb_norm"]["bank_size"] == 3


def test_cli_refuses_the_evaluated_split_as_query_bank(capsys):
    with pytest.raises(SystemExit) as exit_info:
        eval_main(["--model", "unused", "--benchmark", "synthetic", "--data_dir", "unused", "--qb_norm",
                   "--query_bank_split", "test"])
    assert exit_info.value.code == 2
    assert "--query_bank_split test is the evaluated split" in capsys.readouterr().err
