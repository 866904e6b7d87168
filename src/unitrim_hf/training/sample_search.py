"""A sample search after training: one text query answered from the test videos and their keyframe images.

What a newcomer can judge: the query, where its ground-truth video ranks among all test videos (and its
keyframe among the keyframe images), and the top hits with the relevance label of `unitrim search`
(`modeling.relevance`: each hit's score against what generic captions score for the same item).
"""

from __future__ import annotations

from dataclasses import dataclass

import datasets
import torch

from ..data.base import video_table
from ..evaluation.encoding import encode_captions, encode_videos_and_keyframes
from ..modeling.query_bank import GENERIC_CAPTIONS
from ..modeling.relevance import LEGEND, bank_z, relevance_label


@dataclass
class SearchHit:
    """
    Args:
        rank: 1-based rank among the gallery of its modality.
        video_id: the video (or the video whose keyframe the image is).
        score: the model's logit for the query.
        relevance: z of the score against the generic-caption bank's scores of the same item (NaN: undefined).
        label: "match", "weak" or "no match".
    """

    rank: int
    video_id: str
    score: float
    relevance: float = float("nan")
    label: str = ""

    def to_text(self, expected: str | None) -> str:
        z = "" if self.relevance != self.relevance else f", z {self.relevance:.1f}"
        mark = "  <- ground truth" if self.video_id == expected else ""
        return f"{self.rank}. {self.video_id}  score {self.score:.3f}  {self.label}{z}{mark}"


@dataclass
class SampleSearchResult:
    """
    Args:
        query: the text searched.
        expected_video_id: its ground-truth video when the query is a test caption, else None.
        videos, images: the top hits of each modality, best first.
        expected_video, expected_image: the ground truth's own hit (its rank among all) in each modality.
        num_videos, num_images: the gallery sizes.
    """

    query: str
    expected_video_id: str | None
    videos: list[SearchHit]
    images: list[SearchHit]
    expected_video: SearchHit | None = None
    expected_image: SearchHit | None = None
    num_videos: int = 0
    num_images: int = 0

    def to_text(self) -> str:
        lines = [f"Sample search: {self.query!r}"]
        if self.expected_video_id:
            lines.append(f"  ground truth: {self.expected_video_id}")
            for title, hit, total in (("video", self.expected_video, self.num_videos),
                                      ("keyframe image", self.expected_image, self.num_images)):
                if hit is not None:
                    lines.append(f"    its {title} ranks {hit.rank} of {total} ({hit.label}, score {hit.score:.3f})")
        for title, hits in (("videos", self.videos), ("keyframe images", self.images)):
            lines.append(f"  top {len(hits)} {title}:")
            lines += [f"    {hit.to_text(self.expected_video_id)}" for hit in hits]
        lines.append(f"  ({LEGEND})")
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
            bank = encode_captions(model, processor, list(GENERIC_CAPTIONS), batch_size=batch_size, show_progress=False)
            video_scores = model.similarity(text, gallery.video_features).logits[0].float().cpu()
            image_scores = model.similarity(text, gallery.image_features).logits[0].float().cpu()
            video_z = bank_z(video_scores, model.similarity(bank, gallery.video_features).logits.float().cpu())
            image_z = bank_z(image_scores, model.similarity(bank, gallery.image_features).logits.float().cpu())
    finally:
        model.train(was_training)
    ids = [videos[position]["video_id"] for position in gallery.kept_positions]

    def ranked(scores: torch.Tensor, z: torch.Tensor) -> list[SearchHit]:
        order = scores.argsort(descending=True, stable=True).tolist()
        return [SearchHit(rank, ids[i], float(scores[i]), float(z[i]), relevance_label(float(z[i])))
                for rank, i in enumerate(order, start=1)]

    all_videos, all_images = ranked(video_scores, video_z), ranked(image_scores, image_z)
    find = lambda hits: next((hit for hit in hits if hit.video_id == expected), None)  # noqa: E731
    return SampleSearchResult(
        query, expected, all_videos[:top_k], all_images[:top_k], find(all_videos) if expected else None,
        find(all_images) if expected else None, len(all_videos), len(all_images),
    )
