"""The main job's closing sample search: the query, the ground truth's rank and labelled top hits."""

from __future__ import annotations

import math

import torch

from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor
from unitrim_hf.data import load_benchmark
from unitrim_hf.data.synthetic_writer import write_synthetic_benchmark
from unitrim_hf.modeling.relevance import LABELS
from unitrim_hf.training.sample_search import sample_search


def test_sample_search_ranks_the_ground_truth_and_labels_every_hit(tmp_path) -> None:
    data = write_synthetic_benchmark(tmp_path / "data", num_train=2, num_test=5, num_frames=8, frame_size=32)
    split = load_benchmark("synthetic", data, "test", cache_dir=tmp_path / "cache")
    torch.manual_seed(0)
    model = UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny", max_frames=12)).eval()
    processor = UniTriMProcessor.for_model_config(model.config)
    result = sample_search(model, processor, split, top_k=3)
    assert result.expected_video_id == split[0]["video_id"]
    assert 1 <= result.expected_video.rank <= result.num_videos == 5
    assert len(result.videos) == 3 and [hit.rank for hit in result.videos] == [1, 2, 3]
    for hit in [*result.videos, *result.images]:
        assert hit.label in LABELS and not math.isnan(hit.relevance)
    text = result.to_text()
    assert split[0]["caption"] in text and f"ranks {result.expected_video.rank} of 5" in text
    assert all(hit.label in text for hit in result.videos)
