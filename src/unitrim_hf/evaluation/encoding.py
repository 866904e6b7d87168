"""Encode a test split once: each unique caption, each video, and one keyframe image per video.

The gallery is encoded in batches under `torch.inference_mode`; the features are later scored
blockwise by `UniTriMModel.similarity`. Videos come either from a frame cache (uint8 frames
stored by `unitrim_hf.data.prepare_frames`) or are decoded with the processor's frame sampler;
a video that fails to decode is reported, never turned into NaN scores.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.frame_cache import read_cached_batch
from ..data.keyframes import select_keyframe_index
from ..errors import VideoDecodingError
from ..modeling.modeling_outputs import UniTriMTextFeatures, UniTriMVisualFeatures

logger = logging.getLogger(__name__)


@dataclass
class EncodedGallery:
    """Visual features of the readable videos of a split.

    Attributes:
        video_features: features of the `len(kept_positions)` readable videos, in `kept_positions` order.
        image_features: features of their keyframes (same order), or None when images were not requested.
        kept_positions: position (in the split's video order) of each encoded video.
        skipped: `{video_id: reason}` of the videos left out (failed to decode, absent from the frame cache).
    """

    video_features: UniTriMVisualFeatures | None
    image_features: UniTriMVisualFeatures | None
    kept_positions: list[int]
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class _FrameBatch:
    """Real frames of a batch of videos (uint8 (T_i, H, W, 3) each), their keyframes and split positions."""

    positions: list[int]
    frames: list[np.ndarray]
    keyframes: list[np.ndarray]
    skipped: dict[str, str]


def concatenate_features(batches: Sequence[UniTriMTextFeatures | UniTriMVisualFeatures]):
    """Concatenate feature dataclasses of several batches along the batch axis.

    Args:
        batches: non-empty sequence of features of one type; tensor fields (B_i, ...) with equal trailing shapes.

    Returns:
        The same dataclass with (sum B_i, ...) tensors; non-tensor fields (`is_image`) from the first batch.
    """
    if not batches:
        raise ValueError("concatenate_features needs at least one batch")
    first = batches[0]
    values = {}
    for item in fields(first):
        value = getattr(first, item.name)
        if isinstance(value, torch.Tensor):
            values[item.name] = torch.cat([getattr(batch, item.name) for batch in batches], dim=0)
        else:
            values[item.name] = value
    return type(first)(**values)


def model_device_and_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of the model's first parameter (where its inputs must go)."""
    parameter = next(model.parameters())
    return parameter.device, parameter.dtype


def encode_captions(
    model,
    processor,
    captions: Sequence[str],
    *,
    max_length: int | None = None,
    batch_size: int = 16,
    show_progress: bool = True,
) -> UniTriMTextFeatures:
    """Text features of `captions` (call under `torch.inference_mode` with the model in eval mode).

    Args:
        model: a [`UniTriMModel`].
        processor: a [`UniTriMProcessor`].
        captions: the N captions to encode (each is encoded exactly as given; deduplicate before).
        max_length: caption tokens (None: the processor's; 64 for DiDeMo paragraphs).
        batch_size: captions per forward pass.

    Returns:
        [`UniTriMTextFeatures`] with batch size N, on the model's device.
    """
    if not captions:
        raise ValueError("no caption to encode")
    device, _ = model_device_and_dtype(model)
    encoded = []
    starts = range(0, len(captions), batch_size)
    for start in tqdm(starts, desc="encoding captions", unit="batch", disable=not show_progress):
        inputs = processor.encode_text(list(captions[start : start + batch_size]), max_length=max_length)
        encoded.append(
            model.get_text_features(**{name: value.to(device) for name, value in inputs.items()}).retrieval_features()
        )
    return concatenate_features(encoded)


def _decoded_batches(processor, videos: Sequence[dict], batch_size: int, include_images: bool) -> Iterator[_FrameBatch]:
    """Decode each video once with the processor's frame sampler; the keyframe is the middle sampled frame."""
    for start in range(0, len(videos), batch_size):
        batch = _FrameBatch([], [], [], {})
        for position in range(start, min(start + batch_size, len(videos))):
            video = videos[position]
            try:
                sampled = processor.frame_sampler(video["video_path"])
            except VideoDecodingError as error:
                batch.skipped[video["video_id"]] = error.reason
                continue
            real = np.asarray(sampled.mask).astype(bool)
            if not real.any():
                batch.skipped[video["video_id"]] = "no frame could be decoded"
                continue
            batch.positions.append(position)
            batch.frames.append(np.asarray(sampled.frames)[real])
            if include_images:
                batch.keyframes.append(np.asarray(sampled.frames)[select_keyframe_index(sampled.frames, sampled.mask, "middle")])
        yield batch


def _cached_batches(frame_cache: datasets.Dataset, videos: Sequence[dict], batch_size: int, include_images: bool) -> Iterator[_FrameBatch]:
    """Read each video's frames from the frame cache; videos absent from it are reported as skipped."""
    cache_row = {video_id: row for row, video_id in enumerate(frame_cache["video_id"])}
    for start in range(0, len(videos), batch_size):
        batch = _FrameBatch([], [], [], {})
        rows = []
        for position in range(start, min(start + batch_size, len(videos))):
            video_id = videos[position]["video_id"]
            if video_id not in cache_row:
                batch.skipped[video_id] = "not in the frame cache (it failed to decode when the cache was made)"
                continue
            batch.positions.append(position)
            rows.append(cache_row[video_id])
        if rows:
            cached = read_cached_batch(frame_cache, rows)
            for row, (frames, mask) in enumerate(zip(cached["frames"], cached["video_mask"])):
                real = mask.astype(bool)
                if not real.any():
                    raise ValueError(f"frame cache row of video {cached['video_id'][row]!r} has an all-zero video_mask")
                batch.frames.append(frames[real])
                if include_images:
                    keyframe = cached["keyframe"][row] if "keyframe" in cached else frames[select_keyframe_index(frames, mask, "middle")]
                    batch.keyframes.append(keyframe)
        yield batch


def encode_videos_and_keyframes(
    model,
    processor,
    videos: Sequence[dict],
    *,
    frame_cache: datasets.Dataset | None = None,
    batch_size: int = 16,
    include_images: bool = True,
    show_progress: bool = True,
) -> EncodedGallery:
    """Encode every video of a split once, and its keyframe as an image from the same decoded frames.

    Args:
        model: a [`UniTriMModel`] (call under `torch.inference_mode`, eval mode).
        processor: its [`UniTriMProcessor`]; its frame sampler and image transform are used.
        videos: the split's videos in order, `[{"video_id", "video_path"}, ...]` (see `video_table`).
        frame_cache: frames cached by `prepare_frames` (rows matched by `video_id`); decoded from
            `video_path` when None.
        batch_size: videos per forward pass.
        include_images: also encode one keyframe per video (the cache's `keyframe` column when present,
            else the middle sampled frame).

    Returns:
        [`EncodedGallery`]; a video that fails to decode is listed in `skipped` and left out.
    """
    device, dtype = model_device_and_dtype(model)
    if frame_cache is not None:
        source = _cached_batches(frame_cache, videos, batch_size, include_images)
    else:
        source = _decoded_batches(processor, videos, batch_size, include_images)
    video_batches, image_batches, kept, skipped = [], [], [], {}
    with tqdm(total=len(videos), desc="encoding videos", unit="video", disable=not show_progress) as bar:
        for batch in source:
            skipped.update(batch.skipped)
            if batch.positions:
                inputs = processor.encode_videos(batch.frames)
                # Retrieval features only: the towers' patch states of every batch would otherwise be kept.
                video_batches.append(
                    model.get_video_features(
                        inputs["pixel_values_videos"].to(device=device, dtype=dtype), inputs["video_mask"].to(device)
                    ).retrieval_features()
                )
                if include_images:
                    pixel_values = processor.encode_images(batch.keyframes)["pixel_values"]
                    images = model.get_image_features(pixel_values.to(device=device, dtype=dtype))
                    image_batches.append(images.retrieval_features())
                kept.extend(batch.positions)
            bar.update(len(batch.positions) + len(batch.skipped))
    return EncodedGallery(
        video_features=concatenate_features(video_batches) if video_batches else None,
        image_features=concatenate_features(image_batches) if image_batches else None,
        kept_positions=kept,
        skipped=skipped,
    )
