"""A sample search after training: one text query answered from the test videos and their keyframe images."""

from __future__ import annotations

from dataclasses import dataclass

import datasets
import torch

from ..data.base import video_table
from ..evaluation.encoding import encode_captions, encode_videos_and_keyframes


@dataclass
class SearchHit:
    rank: int
    video_id: str
    score: float


@dataclass
class SampleSearchResult:
    """The query, the id of its ground-truth video (when the query is a test caption) and the top hits."""

    query: str
    expected_video_id: str | None
    videos: list[SearchHit]
    images: list[SearchHit]

    def to_text(self) -> str:
        lines = [f"Sample search: {self.query!r}" + (f" (ground truth: {self.expected_video_id})" if self.expected_video_id else "")]
        for title, hits in (("videos", self.videos), ("keyframe images", self.images)):
            lines.append(f"  top {len(hits)} {title}:")
            for hit in hits:
                mark = "  <- ground truth" if hit.video_id == self.expected_video_id else ""
                lines.append(f"    {hit.rank}. {hit.video_id}  score {hit.score:.3f}{mark}")
        return "\n".join(lines)


def default_query(split: datasets.Dataset) -> tuple[str, str]:
    """The first caption of the split and its video id."""
    text_column = "caption" if "caption" in split.column_names else "captions"
    first = split[0]
    caption = first[text_column] if text_column == "caption" else first[text_column][0]
    return caption, first["video_id"]


def sample_search(
    model,
    processor,
    split: datasets.Dataset,
    query: str | None = None,
    frame_cache: datasets.Dataset | None = None,
    top_k: int = 3,
    batch_size: int = 32,
) -> SampleSearchResult:
    """
    Rank every video of `split` and every keyframe image for `query` with `model.similarity`.

    Args:
        model: a `UniTriMModel`.
        processor: its `UniTriMProcessor`.
        split: the test split (columns `video_id`, `video_path`, `video_index`, captions).
        query: the text; None takes the split's first caption (its video is then the ground truth).
        frame_cache: the split's frame cache (the videos are decoded when None).
        top_k: hits listed per modality.
    """
    expected = None
    if query is None:
        query, expected = default_query(split)
    videos = video_table(split)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            gallery = encode_videos_and_keyframes(
                model, processor, videos, frame_cache=frame_cache, batch_size=batch_size, include_images=True, show_progress=False
            )
            text = encode_captions(model, processor, [query], batch_size=1, show_progress=False)
            video_scores = model.similarity(text, gallery.video_features).logits[0].float().cpu()
            image_scores = model.similarity(text, gallery.image_features).logits[0].float().cpu()
    finally:
        model.train(was_training)
    ids = [videos[position]["video_id"] for position in gallery.kept_positions]

    def top(scores: torch.Tensor) -> list[SearchHit]:
        values, indices = scores.topk(min(top_k, scores.numel()))
        return [SearchHit(rank + 1, ids[int(index)], float(value)) for rank, (value, index) in enumerate(zip(values, indices))]

    return SampleSearchResult(query, expected, top(video_scores), top(image_scores))
