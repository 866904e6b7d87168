"""Retrieval metrics of the text-video field (R@K, median and mean rank).

Conventions (those of CLIP4Clip's `metrics.py` on tie-free input):

* `sim` is (num_captions, num_videos), rows are captions, higher is better.
* A query's rank is 1 + the number of candidates scored higher than its ground truth.
  **Ties count against the query**: a ground truth tied with k other candidates and
  beaten by p gets rank p + k + 1. Every query gets exactly one rank (CLIP4Clip's
  `compute_metrics` instead emits k + 1 ranks for such a query).
* `R@K` = 100 * fraction of queries with rank <= K; `MnR` = mean rank.
* `MdR` follows CLIP4Clip's two median conventions: the *mean of the two middle
  ranks* (`np.median`, as its `compute_metrics`) for square retrieval, i.e. when
  every video has exactly one caption; the *lower middle rank* (`torch.median`, as its
  multi-sentence `tensor_text_to_video_metrics`) for text-to-video with several
  captions per video. Video-to-text always goes through the square path, so it always
  uses the mean of the two middle ranks.
* Video-to-text with several captions per video: each video query ranks the caption
  *groups* (one per video), each group scored by its best caption, as CLIP4Clip's
  `tensor_video_to_text_sim` followed by `compute_metrics`.
* NaN or infinite scores raise `ValueError`: CLIP4Clip silently drops such queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

RECALL_CUTOFFS = (1, 5, 10)
METRIC_ORDER = ("R@1", "R@5", "R@10", "MdR", "MnR", "num_queries")
# Candidate scores compared per block of queries (bounds the boolean comparison matrix).
_ELEMENTS_PER_BLOCK = 1 << 24
_MAX_LISTED_BAD_ENTRIES = 5

SimilarityLike = torch.Tensor | np.ndarray
IndexLike = Sequence[int] | np.ndarray | torch.Tensor


def text_to_video_metrics(sim: SimilarityLike, caption_to_video: IndexLike | None = None) -> dict[str, float]:
    """Text-to-video retrieval metrics: every caption is a query over all videos.

    Args:
        sim: (num_captions, num_videos) scores, torch or numpy.
        caption_to_video: (num_captions,) index of each caption's video; `None` when
            `sim` is square with the ground truth on the diagonal.

    Returns:
        `R@1`, `R@5`, `R@10` (percent), `MdR`, `MnR` and `num_queries`
        (= num_captions).
    """
    scores = _validated_similarity(sim)
    targets = _validated_targets(scores, caption_to_video, need_every_video=False)
    ranks = ground_truth_ranks(scores, targets)
    one_caption_per_video = _is_one_caption_per_video(targets, scores.shape[1])
    return _summarize(ranks, median="mean_of_middle" if one_caption_per_video else "lower_middle")


def video_to_text_metrics(sim: SimilarityLike, caption_to_video: IndexLike | None = None) -> dict[str, float]:
    """Video-to-text retrieval metrics: every video is a query over the caption groups.

    Args:
        sim: (num_captions, num_videos) scores, torch or numpy (the same matrix as for
            text-to-video, not its transpose).
        caption_to_video: (num_captions,) index of each caption's video; every video needs
            at least one caption. `None` when `sim` is square with the ground truth on
            the diagonal.

    Returns:
        `R@1`, `R@5`, `R@10` (percent), `MdR`, `MnR` and `num_queries`
        (= num_videos).
    """
    scores = _validated_similarity(sim)
    targets = _validated_targets(scores, caption_to_video, need_every_video=True)
    group_scores = best_caption_scores(scores, targets)  # (num_videos as groups, num_videos)
    video_queries = group_scores.T  # rows: videos, columns: caption groups
    diagonal = torch.arange(video_queries.shape[0], device=video_queries.device)
    ranks = ground_truth_ranks(video_queries, diagonal)
    return _summarize(ranks, median="mean_of_middle")


def ground_truth_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1-based rank of each query's ground truth, ties counted against the query.

    Args:
        scores: (num_queries, num_candidates) finite scores.
        targets: (num_queries,) index of each query's ground-truth candidate.

    Returns:
        (num_queries,) int64 ranks: the number of candidates scoring >= the ground truth
        (the ground truth itself included).
    """
    num_queries, num_candidates = scores.shape
    block_rows = max(1, _ELEMENTS_PER_BLOCK // max(num_candidates, 1))
    ranks = torch.empty(num_queries, dtype=torch.int64, device=scores.device)
    for start in range(0, num_queries, block_rows):
        block = scores[start : start + block_rows]
        block_targets = targets[start : start + block_rows]
        ground_truth = block.gather(1, block_targets[:, None])
        ranks[start : start + block_rows] = (block >= ground_truth).sum(dim=1)
    return ranks


def best_caption_scores(scores: torch.Tensor, caption_to_video: torch.Tensor) -> torch.Tensor:
    """Score of each video's caption group against each video: its best caption's score.

    Args:
        scores: (num_captions, num_videos).
        caption_to_video: (num_captions,) video index of each caption; every video must
            have at least one caption.

    Returns:
        (num_videos, num_videos) tensor `G` with `G[group, video]` the maximum of
        `scores[c, video]` over the captions `c` of video `group`.
    """
    num_videos = scores.shape[1]
    groups = torch.full((num_videos, num_videos), float("-inf"), dtype=scores.dtype, device=scores.device)
    row_index = caption_to_video[:, None].expand(-1, num_videos)
    return groups.scatter_reduce_(0, row_index, scores, reduce="amax", include_self=True)


def inverted_softmax(sim: SimilarityLike, temperature: float = 1.0) -> torch.Tensor:
    """Dual softmax / inverted softmax re-weighting (DSL), as TS2-Net evaluates it.

    `sim * softmax(sim / temperature, dim=0)`: for each video, a softmax over all text
    queries re-weights their scores. It is transductive (uses the whole test set), so
    callers report it separately from the plain metrics.

    Args:
        sim: (num_captions, num_videos) finite scores (logits, ~100 * cosine for CLIP).
        temperature: softmax temperature, > 0.

    Returns:
        (num_captions, num_videos) float64 re-weighted scores on `sim`'s device (float64
        because the softmax of ~100-scaled logits underflows float32 to exact zeros, which
        would then tie and, ties counting against the query, cost rank).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    scores = _validated_similarity(sim).to(torch.float64)
    return scores * torch.softmax(scores / temperature, dim=0)


def retrieval_metrics_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """Render metrics as a Markdown table, one row per entry of `results`.

    Args:
        results: e.g. `{"text-to-video": {...}, "video-to-text": {...}}`, each value a
            dict as returned by `text_to_video_metrics`.

    Returns:
        A Markdown table: the known metrics in the order R@1, R@5, R@10, MdR, MnR,
        num_queries, then any other keys in first-seen order; "-" where a row lacks one.
    """
    if not results:
        raise ValueError("results is empty: nothing to tabulate")
    seen = [key for row in results.values() for key in row]
    columns = [key for key in METRIC_ORDER if key in seen]
    columns += [key for key in dict.fromkeys(seen) if key not in METRIC_ORDER]
    lines = [
        "| | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, row in results.items():
        cells = [_format_cell(key, row[key]) if key in row else "-" for key in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _format_cell(key: str, value: float) -> str:
    if key == "num_queries":
        return str(int(value))
    return f"{float(value):.1f}"


def _summarize(ranks: torch.Tensor, median: str) -> dict[str, float]:
    ranks_float = ranks.to(torch.float64).cpu()
    metrics = {f"R@{k}": 100.0 * float((ranks_float <= k).to(torch.float64).mean()) for k in RECALL_CUTOFFS}
    if median == "mean_of_middle":
        metrics["MdR"] = float(np.median(ranks_float.numpy()))
    else:
        metrics["MdR"] = float(torch.median(ranks_float))  # lower middle value for even counts
    metrics["MnR"] = float(ranks_float.mean())
    metrics["num_queries"] = int(ranks.numel())
    return metrics


def _validated_similarity(sim: SimilarityLike) -> torch.Tensor:
    if isinstance(sim, np.ndarray):
        scores = torch.from_numpy(sim)
    elif isinstance(sim, torch.Tensor):
        scores = sim.detach()
    else:
        raise TypeError(f"sim must be a torch.Tensor or numpy.ndarray, got {type(sim).__name__}")
    if scores.ndim != 2:
        raise ValueError(f"sim must be 2-D (num_captions, num_videos), got shape {tuple(scores.shape)}")
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"sim is empty: shape {tuple(scores.shape)}")
    if scores.dtype in (torch.float16, torch.bfloat16) or not scores.is_floating_point():
        scores = scores.to(torch.float32 if scores.is_floating_point() else torch.float64)
    finite = torch.isfinite(scores)
    if not bool(finite.all()):
        raise ValueError(_non_finite_message(scores, finite))
    return scores


def _non_finite_message(scores: torch.Tensor, finite: torch.Tensor) -> str:
    bad_positions = (~finite).nonzero()
    num_nan = int(torch.isnan(scores).sum())
    num_inf = int(bad_positions.shape[0]) - num_nan
    listed = ", ".join(
        f"[caption {int(row)}, video {int(column)}]={float(scores[row, column])}"
        for row, column in bad_positions[:_MAX_LISTED_BAD_ENTRIES].tolist()
    )
    more = "" if bad_positions.shape[0] <= _MAX_LISTED_BAD_ENTRIES else ", ..."
    bad_rows = int((~finite).any(dim=1).sum())
    bad_columns = int((~finite).any(dim=0).sum())
    return (
        f"sim of shape {tuple(scores.shape)} (captions x videos) has {num_nan} NaN and {num_inf} "
        f"infinite entries in {bad_rows} rows (captions) and {bad_columns} columns (videos): "
        f"{listed}{more}. A video that failed to decode or an empty mask usually causes this; "
        "no query is dropped silently."
    )


def _validated_targets(
    scores: torch.Tensor, caption_to_video: IndexLike | None, need_every_video: bool
) -> torch.Tensor:
    num_captions, num_videos = scores.shape
    if caption_to_video is None:
        if num_captions != num_videos:
            raise ValueError(
                f"sim has shape {tuple(scores.shape)} (captions x videos); without caption_to_video "
                "it must be square with the ground truth on the diagonal"
            )
        return torch.arange(num_captions, device=scores.device)

    if isinstance(caption_to_video, torch.Tensor):
        targets = caption_to_video.detach()
    else:
        targets = torch.as_tensor(np.asarray(caption_to_video))
    if targets.ndim != 1 or targets.shape[0] != num_captions:
        raise ValueError(
            f"caption_to_video must have shape ({num_captions},), one video index per caption row "
            f"of sim {tuple(scores.shape)}; got shape {tuple(targets.shape)}"
        )
    if targets.dtype == torch.bool or targets.is_floating_point() or targets.is_complex():
        raise ValueError(f"caption_to_video must hold integer video indices, got dtype {targets.dtype}")
    targets = targets.to(device=scores.device, dtype=torch.int64)
    out_of_range = (targets < 0) | (targets >= num_videos)
    if bool(out_of_range.any()):
        first = int(out_of_range.nonzero()[0, 0])
        raise ValueError(
            f"caption_to_video has {int(out_of_range.sum())} indices outside [0, {num_videos}) "
            f"(sim has {num_videos} video columns); first: caption {first} -> {int(targets[first])}"
        )
    if need_every_video:
        captions_per_video = torch.bincount(targets, minlength=num_videos)
        without_caption = (captions_per_video == 0).nonzero().flatten()
        if without_caption.numel():
            shown = without_caption[:_MAX_LISTED_BAD_ENTRIES].tolist()
            raise ValueError(
                f"{without_caption.numel()} of {num_videos} videos have no caption in caption_to_video "
                f"(e.g. videos {shown}); video-to-text retrieval needs at least one caption per video"
            )
    return targets


def _is_one_caption_per_video(targets: torch.Tensor, num_videos: int) -> bool:
    if targets.shape[0] != num_videos:
        return False
    return bool((torch.bincount(targets, minlength=num_videos) == 1).all())
