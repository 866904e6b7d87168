"""One keyframe image per video, for text->image retrieval on the video benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import datasets
import numpy as np
import torch

from ..frame_sampling import FrameSampler
from .exceptions import BenchmarkFormatError

KEYFRAME_STRATEGIES = ("middle", "clip_centroid")
EmbedFrames = Callable[[np.ndarray], torch.Tensor]


def select_keyframe_index(
    frames: np.ndarray,
    mask: np.ndarray,
    strategy: str = "middle",
    embed_frames: Optional[EmbedFrames] = None,
) -> int:
    """Index (into ``frames``) of the keyframe among the real frames.

    Args:
        frames: uint8 (num_frames, height, width, 3), zero-padded after the real frames.
        mask: (num_frames,) 1 for real frames.
        strategy: ``"middle"``: the middle real frame (``num_real // 2``); ``"clip_centroid"``: the
            real frame whose embedding has the highest cosine similarity to the mean embedding.
        embed_frames: for ``"clip_centroid"``: uint8 (n, height, width, 3) -> (n, dim) tensor
            (e.g. CLIP image features).
    """
    if strategy not in KEYFRAME_STRATEGIES:
        raise ValueError(f"keyframe strategy must be one of {KEYFRAME_STRATEGIES}, got {strategy!r}")
    real = np.flatnonzero(np.asarray(mask) > 0)
    if real.size == 0:
        raise ValueError("the video has no real frame (mask is all zero)")
    if strategy == "middle":
        return int(real[real.size // 2])
    if embed_frames is None:
        raise ValueError('keyframe strategy "clip_centroid" needs embed_frames=<frames -> (num_frames, dim) embeddings>')
    embeddings = torch.as_tensor(embed_frames(frames[real])).float()
    if embeddings.ndim != 2 or embeddings.shape[0] != real.size:
        raise ValueError(
            f"embed_frames must return (num_frames={real.size}, dim) embeddings, got shape {tuple(embeddings.shape)}"
        )
    embeddings = torch.nn.functional.normalize(embeddings, dim=-1)
    centroid = torch.nn.functional.normalize(embeddings.mean(dim=0), dim=-1)
    return int(real[int(torch.argmax(embeddings @ centroid))])


def keyframe_dataset(
    video_dataset: datasets.Dataset,
    strategy: str = "middle",
    sampler: Optional[FrameSampler] = None,
    embed_frames: Optional[EmbedFrames] = None,
) -> datasets.Dataset:
    """The image split of a video split: one keyframe per video, in ``video_index`` order.

    Args:
        video_dataset: a split of one of the builders (columns ``video_id``, ``video_path``,
            ``video_index``, and ``caption`` or ``captions``).
        strategy: see :func:`select_keyframe_index`.
        sampler: frames the keyframe is chosen among; ``FrameSampler(num_frames=12)`` (uniform) by default.
        embed_frames: needed by ``"clip_centroid"``.

    Returns:
        A dataset with ``video_id``, ``video_path``, ``video_index`` (= row, = image index),
        ``captions`` (all captions of the video in the split), ``frame_index`` (decoded frame
        number) and ``image`` (:class:`datasets.Image`). Caption rows of ``video_dataset`` keep
        pointing at the right image through their ``video_index``.
    """
    sampler = sampler or FrameSampler(num_frames=12)
    videos: dict[int, dict] = {}
    has_list = "captions" in video_dataset.column_names
    if not has_list and "caption" not in video_dataset.column_names:
        raise BenchmarkFormatError(f"video_dataset needs a 'caption' or 'captions' column, has {video_dataset.column_names}")
    text_column = "captions" if has_list else "caption"
    for video_index, video_id, video_path, text in zip(
        video_dataset["video_index"], video_dataset["video_id"], video_dataset["video_path"], video_dataset[text_column]
    ):
        entry = videos.setdefault(int(video_index), {"video_id": video_id, "video_path": video_path, "captions": []})
        entry["captions"].extend(text if has_list else [text])

    def rows():
        for video_index in sorted(videos):
            entry = videos[video_index]
            sampled = sampler(entry["video_path"])
            position = select_keyframe_index(sampled.frames, sampled.mask, strategy, embed_frames)
            yield {
                **entry,
                "video_index": video_index,
                "frame_index": int(sampled.frame_indices[position]),
                "image": sampled.frames[position],
            }

    features = datasets.Features(
        {
            "video_id": datasets.Value("string"),
            "video_path": datasets.Value("string"),
            "captions": datasets.List(datasets.Value("string")),
            "video_index": datasets.Value("int32"),
            "frame_index": datasets.Value("int64"),
            "image": datasets.Image(),
        }
    )
    # Built in memory: one small image per video; no cache fingerprinting of the closures.
    return datasets.Dataset.from_list(list(rows()), features=features)
