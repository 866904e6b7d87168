"""Retrieval metrics: hand-computed cases and CLIP4Clip's procedures re-implemented here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unitrim_hf.evaluation import (
    inverted_softmax,
    retrieval_metrics_table,
    text_to_video_metrics,
    video_to_text_metrics,
)
from unitrim_hf.evaluation import metrics as metrics_module

# Rows are captions, columns videos; ground truth on the diagonal.
SQUARE = [
    [0.9, 0.1, 0.3, 0.2],  # GT 0.9 beaten by none           -> rank 1
    [0.8, 0.5, 0.7, 0.1],  # GT 0.5 beaten by 0.8 and 0.7    -> rank 3
    [0.2, 0.6, 0.4, 0.3],  # GT 0.4 beaten by 0.6            -> rank 2
    [0.9, 0.8, 0.7, 0.1],  # GT 0.1 beaten by all three      -> rank 4
]
# Columns as video queries: video 0 [0.9*,0.8,0.2,0.9] GT tied once -> rank 2;
# video 1 [0.1,0.5*,0.6,0.8] -> 3; video 2 [0.3,0.7,0.4*,0.7] -> 3;
# video 3 [0.2,0.1,0.3,0.1*] beaten by 0.2, 0.3 and tied once -> rank 4.

# Six captions of three videos (2, 1 and 3 captions).
MULTI_CAPTION_TO_VIDEO = [0, 0, 1, 2, 2, 2]
MULTI = [
    [0.9, 0.2, 0.1],  # video 0: rank 1
    [0.3, 0.5, 0.4],  # video 0: beaten by 0.5, 0.4 -> rank 3
    [0.1, 0.6, 0.7],  # video 1: beaten by 0.7 -> rank 2
    [0.2, 0.3, 0.8],  # video 2: rank 1
    [0.1, 0.2, 0.4],  # video 2: rank 1
    [0.6, 0.6, 0.6],  # video 2: tied with two others -> rank 3
]
# Caption groups scored by their best caption, G[group, video]:
#   group 0: [0.9, 0.5, 0.4]; group 1: [0.1, 0.6, 0.7]; group 2: [0.6, 0.6, 0.8]
# video 0 ranks groups by [0.9*, 0.1, 0.6] -> 1; video 1 by [0.5, 0.6*, 0.6] -> tie -> 2;
# video 2 by [0.4, 0.7, 0.8*] -> 1.


def test_square_text_to_video_by_hand():
    result = text_to_video_metrics(torch.tensor(SQUARE))
    # ranks 1, 3, 2, 4
    assert result == pytest.approx(
        {"R@1": 25.0, "R@5": 100.0, "R@10": 100.0, "MdR": 2.5, "MnR": 2.5, "num_queries": 4}
    )


def test_square_video_to_text_by_hand():
    result = video_to_text_metrics(torch.tensor(SQUARE))
    # ranks 2, 3, 3, 4
    assert result == pytest.approx(
        {"R@1": 0.0, "R@5": 100.0, "R@10": 100.0, "MdR": 3.0, "MnR": 3.0, "num_queries": 4}
    )


def test_multi_caption_text_to_video_by_hand():
    result = text_to_video_metrics(torch.tensor(MULTI), MULTI_CAPTION_TO_VIDEO)
    # ranks 1, 3, 2, 1, 1, 3: sorted 1 1 1 2 3 3, lower middle 1 (mean of middles would be 1.5)
    assert result == pytest.approx(
        {"R@1": 50.0, "R@5": 100.0, "R@10": 100.0, "MdR": 1.0, "MnR": 11 / 6, "num_queries": 6}
    )


def test_multi_caption_video_to_text_by_hand():
    result = video_to_text_metrics(torch.tensor(MULTI), MULTI_CAPTION_TO_VIDEO)
    # ranks 1, 2, 1
    assert result == pytest.approx(
        {"R@1": 200 / 3, "R@5": 100.0, "R@10": 100.0, "MdR": 1.0, "MnR": 4 / 3, "num_queries": 3}
    )


def test_recall_cutoffs_by_hand():
    # 12 videos; caption i's ground truth beaten by exactly ranks[i]-1 others.
    ranks = [1, 2, 5, 6, 10, 11, 12, 3, 4, 7, 8, 9]
    num = len(ranks)
    sim = torch.zeros(num, num)
    for caption, rank in enumerate(ranks):
        others = [video for video in range(num) if video != caption]
        sim[caption, caption] = 0.5
        for position, video in enumerate(others):
            sim[caption, video] = 1.0 + position if position < rank - 1 else -1.0 - position
    result = text_to_video_metrics(sim)
    assert result["R@1"] == pytest.approx(100 / 12)
    assert result["R@5"] == pytest.approx(100 * 5 / 12)
    assert result["R@10"] == pytest.approx(100 * 10 / 12)
    assert result["MdR"] == pytest.approx(6.5)
    assert result["MnR"] == pytest.approx(sum(ranks) / 12)


def clip4clip_compute_metrics(x: np.ndarray) -> dict[str, float]:
    """CLIP4Clip's square procedure, as DATA_FORMATS.md §3 describes it."""
    sorted_negated = np.sort(-x, axis=1)
    negated_diagonal = np.diag(-x)
    positions = np.where(sorted_negated - negated_diagonal[:, None] == 0)[1]
    return {
        "R@1": 100.0 * np.sum(positions < 1) / len(positions),
        "R@5": 100.0 * np.sum(positions < 5) / len(positions),
        "R@10": 100.0 * np.sum(positions < 10) / len(positions),
        "MdR": float(np.median(positions)) + 1,
        "MnR": float(np.mean(positions)) + 1,
        "num_queries": len(positions),
    }


def padded_three_d(sim: torch.Tensor, caption_to_video: list[int], num_videos: int) -> torch.Tensor:
    """(num_videos, max_captions, num_videos) with missing caption slots at -inf."""
    max_captions = max(caption_to_video.count(video) for video in range(num_videos))
    cube = torch.full((num_videos, max_captions, num_videos), float("-inf"), dtype=sim.dtype)
    filled = [0] * num_videos
    for row, video in enumerate(caption_to_video):
        cube[video, filled[video]] = sim[row]
        filled[video] += 1
    return cube


def clip4clip_multi_caption_text_to_video(cube: torch.Tensor) -> dict[str, float]:
    """The (V, C, V) procedure: double argsort, diagonal ranks, padding masked, torch.median."""
    per_slot = cube.permute(1, 0, 2)  # (C, V, V)
    order = torch.argsort(per_slot, dim=-1, descending=True)
    positions = torch.argsort(order, dim=-1)
    diagonal_positions = torch.diagonal(positions, dim1=1, dim2=2).flatten()
    ground_truth = torch.diagonal(per_slot, dim1=1, dim2=2).flatten()
    valid = torch.isfinite(ground_truth)
    ranks = diagonal_positions[valid]
    return {
        "R@1": 100.0 * float((ranks < 1).sum()) / len(ranks),
        "R@5": 100.0 * float((ranks < 5).sum()) / len(ranks),
        "R@10": 100.0 * float((ranks < 10).sum()) / len(ranks),
        "MdR": float(torch.median(ranks.double() + 1)),
        "MnR": float(ranks.double().mean() + 1),
        "num_queries": len(ranks),
    }


def clip4clip_multi_caption_video_to_text(cube: torch.Tensor) -> dict[str, float]:
    cube = torch.nan_to_num(cube, nan=float("-inf"))
    groups_by_video = cube.max(dim=1).values  # (V groups, V videos)
    return clip4clip_compute_metrics(groups_by_video.T.numpy())


@pytest.mark.parametrize("num_videos", [37, 50, 101])
@pytest.mark.parametrize("seed", [0, 1])
def test_square_matches_clip4clip_on_tie_free_input(num_videos, seed):
    generator = np.random.default_rng(seed)
    sim = generator.standard_normal((num_videos, num_videos)) + 2.0 * np.eye(num_videos)
    assert text_to_video_metrics(sim) == pytest.approx(clip4clip_compute_metrics(sim))
    assert video_to_text_metrics(sim) == pytest.approx(clip4clip_compute_metrics(sim.T))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_multi_caption_matches_clip4clip_tensor_procedure(seed):
    generator = torch.Generator().manual_seed(seed)
    num_videos = 24
    counts = torch.randint(1, 6, (num_videos,), generator=generator).tolist()
    if sum(counts) % 2:  # an even number of queries makes the median convention visible
        counts[0] += 1
    caption_to_video = [video for video, count in enumerate(counts) for _ in range(count)]
    sim = torch.randn(len(caption_to_video), num_videos, generator=generator, dtype=torch.float64)
    sim[torch.arange(len(caption_to_video)), caption_to_video] += 1.5
    cube = padded_three_d(sim, caption_to_video, num_videos)

    expected_t2v = clip4clip_multi_caption_text_to_video(cube)
    expected_v2t = clip4clip_multi_caption_video_to_text(cube)
    assert text_to_video_metrics(sim, caption_to_video) == pytest.approx(expected_t2v)
    assert video_to_text_metrics(sim, caption_to_video) == pytest.approx(expected_v2t)

    # The caption order does not matter, only each caption's video.
    shuffle = torch.randperm(len(caption_to_video), generator=generator)
    shuffled_targets = torch.tensor(caption_to_video)[shuffle]
    assert text_to_video_metrics(sim[shuffle], shuffled_targets) == pytest.approx(expected_t2v)
    assert video_to_text_metrics(sim[shuffle], shuffled_targets) == pytest.approx(expected_v2t)


def test_median_conventions_differ_where_clip4clip_differs():
    # Multi-caption T2V takes the lower middle; square (and V2T) the mean of the middles.
    assert text_to_video_metrics(torch.tensor(MULTI), MULTI_CAPTION_TO_VIDEO)["MdR"] == 1.0
    assert text_to_video_metrics(torch.tensor(SQUARE))["MdR"] == 2.5
    # A one-caption-per-video mapping is the square case whatever the caption order.
    permutation = [2, 0, 3, 1]
    permuted = torch.tensor(SQUARE)[:, permutation]
    caption_to_video = [permutation.index(video) for video in range(4)]
    assert text_to_video_metrics(permuted, caption_to_video) == text_to_video_metrics(torch.tensor(SQUARE))
    assert video_to_text_metrics(permuted, caption_to_video) == video_to_text_metrics(torch.tensor(SQUARE))


def test_ties_count_against_the_query():
    tied = torch.ones(3, 3)
    result = text_to_video_metrics(tied)
    assert result == pytest.approx({"R@1": 0.0, "R@5": 100.0, "R@10": 100.0, "MdR": 3.0, "MnR": 3.0, "num_queries": 3})
    # CLIP4Clip's compute_metrics would report R@1 = 33.3 over 9 "queries" here.
    assert clip4clip_compute_metrics(tied.numpy())["R@1"] == pytest.approx(100 / 3)

    # GT beaten by one and tied with two: rank p + k + 1 = 1 + 2 + 1 = 4.
    row = torch.tensor([[0.5, 0.9, 0.5, 0.5, 0.1]])
    assert text_to_video_metrics(row, [0])["MnR"] == 4.0


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("metric", [text_to_video_metrics, video_to_text_metrics])
def test_non_finite_similarity_raises(metric, bad_value):
    sim = torch.rand(3, 4)
    sim[1, 2] = bad_value
    with pytest.raises(ValueError, match=r"\(3, 4\).*\[caption 1, video 2\]"):
        metric(sim, [0, 1, 3])


def test_non_finite_message_counts_rows_and_columns():
    sim = np.random.default_rng(0).random((5, 5))
    sim[0, 0] = np.nan
    sim[4, 0] = np.inf
    with pytest.raises(ValueError, match="1 NaN and 1 infinite entries in 2 rows .captions. and 1 columns"):
        text_to_video_metrics(sim)
    with pytest.raises(ValueError, match="NaN"):
        inverted_softmax(sim)


@pytest.mark.parametrize(
    ("caption_to_video", "message"),
    [
        ([0, 1], r"shape \(3,\)"),
        ([[0, 1, 2]], r"shape \(3,\)"),
        ([0, 1, 4], r"outside \[0, 4\).*caption 2 -> 4"),
        ([0, -1, 2], r"outside \[0, 4\).*caption 1 -> -1"),
        ([0.0, 1.0, 2.0], "integer"),
        (np.array([True, False, True]), "integer"),
    ],
)
@pytest.mark.parametrize("metric", [text_to_video_metrics, video_to_text_metrics])
def test_bad_caption_to_video_raises(metric, caption_to_video, message):
    with pytest.raises(ValueError, match=message):
        metric(torch.rand(3, 4), caption_to_video)


def test_video_without_caption():
    sim = torch.rand(4, 3)
    caption_to_video = [0, 0, 2, 2]
    # Text-to-video: video 1 is only a distractor.
    assert text_to_video_metrics(sim, caption_to_video)["num_queries"] == 4
    with pytest.raises(ValueError, match=r"1 of 3 videos have no caption.*\[1\]"):
        video_to_text_metrics(sim, caption_to_video)


def test_shape_errors():
    with pytest.raises(ValueError, match="square"):
        text_to_video_metrics(torch.rand(3, 4))
    with pytest.raises(ValueError, match="2-D"):
        text_to_video_metrics(torch.rand(4))
    with pytest.raises(ValueError, match="empty"):
        text_to_video_metrics(torch.rand(0, 4), [])
    with pytest.raises(TypeError, match="list"):
        text_to_video_metrics([[1.0]])


def test_numpy_and_torch_inputs_agree():
    generator = np.random.default_rng(3)
    sim = generator.standard_normal((30, 10)).astype(np.float32)
    caption_to_video = generator.permutation(np.arange(30) % 10)
    reference_t2v = text_to_video_metrics(torch.from_numpy(sim), torch.from_numpy(caption_to_video))
    reference_v2t = video_to_text_metrics(torch.from_numpy(sim), torch.from_numpy(caption_to_video))
    for sim_input in (sim, sim.astype(np.float64), torch.from_numpy(sim).double()):
        for targets in (caption_to_video, caption_to_video.tolist(), torch.from_numpy(caption_to_video)):
            assert text_to_video_metrics(sim_input, targets) == reference_t2v
            assert video_to_text_metrics(sim_input, targets) == reference_v2t
    half = torch.from_numpy(sim).half()
    assert text_to_video_metrics(half, caption_to_video) == text_to_video_metrics(half.float(), caption_to_video)
    requires_grad = torch.from_numpy(sim).requires_grad_()
    assert text_to_video_metrics(requires_grad, caption_to_video) == reference_t2v


def test_blocked_ranking_equals_single_block(monkeypatch):
    generator = torch.Generator().manual_seed(5)
    sim = torch.randn(103, 17, generator=generator)
    caption_to_video = torch.arange(103) % 17
    whole_t2v = text_to_video_metrics(sim, caption_to_video)
    whole_v2t = video_to_text_metrics(sim, caption_to_video)
    monkeypatch.setattr(metrics_module, "_ELEMENTS_PER_BLOCK", 40)  # blocks of 2 queries
    assert text_to_video_metrics(sim, caption_to_video) == whole_t2v
    assert video_to_text_metrics(sim, caption_to_video) == whole_v2t


def test_msvd_sized_input():
    generator = torch.Generator().manual_seed(0)
    num_captions, num_videos = 27_763, 670
    caption_to_video = torch.cat(
        [torch.arange(num_videos), torch.randint(0, num_videos, (num_captions - num_videos,), generator=generator)]
    )
    sim = torch.randn(num_captions, num_videos, generator=generator)
    sim[torch.arange(num_captions), caption_to_video] += 3.0
    t2v = text_to_video_metrics(sim, caption_to_video)
    v2t = video_to_text_metrics(sim, caption_to_video)
    assert t2v["num_queries"] == num_captions and v2t["num_queries"] == num_videos
    assert 1.0 <= t2v["MdR"] <= t2v["MnR"] + num_videos and 0.0 < t2v["R@1"] <= t2v["R@5"] <= t2v["R@10"]


def test_inverted_softmax_matches_definition():
    generator = np.random.default_rng(7)
    sim = generator.standard_normal((6, 4)) * 10
    for temperature in (1.0, 0.5, 100.0):
        scaled = sim / temperature
        weights = np.exp(scaled - scaled.max(axis=0)) / np.exp(scaled - scaled.max(axis=0)).sum(axis=0)
        result = inverted_softmax(torch.from_numpy(sim), temperature)
        np.testing.assert_allclose(result.numpy(), sim * weights, rtol=1e-12)
    ratios = inverted_softmax(sim) / torch.from_numpy(sim)
    np.testing.assert_allclose(ratios.sum(dim=0).numpy(), np.ones(4), rtol=1e-12)
    with pytest.raises(ValueError, match="temperature"):
        inverted_softmax(sim, temperature=0.0)


def test_inverted_softmax_changes_rankings_where_a_video_attracts_many_queries():
    # Video 0 scores high for every caption (a "hub" video); DSL demotes it for captions 1 and 2.
    sim = torch.tensor([[5.0, 0.0, 0.0], [4.0, 3.0, 0.0], [4.0, 0.0, 3.0]])
    assert text_to_video_metrics(sim)["R@1"] == pytest.approx(100 / 3)
    assert text_to_video_metrics(inverted_softmax(sim))["R@1"] == pytest.approx(100.0)


def test_metrics_table():
    table = retrieval_metrics_table(
        {
            "text-to-video": text_to_video_metrics(torch.tensor(SQUARE)),
            "video-to-text": {"R@1": 12.345, "Rsum": 99.0},
        }
    )
    lines = table.splitlines()
    assert lines[0] == "| | R@1 | R@5 | R@10 | MdR | MnR | num_queries | Rsum |"
    assert lines[1] == "|---|---:|---:|---:|---:|---:|---:|---:|"
    assert lines[2] == "| text-to-video | 25.0 | 100.0 | 100.0 | 2.5 | 2.5 | 4 | - |"
    assert lines[3] == "| video-to-text | 12.3 | - | - | - | - | - | 99.0 |"
    with pytest.raises(ValueError, match="empty"):
        retrieval_metrics_table({})
