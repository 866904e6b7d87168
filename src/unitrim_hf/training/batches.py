"""Training data: one item per video (a caption drawn per epoch), frames from the frame cache or decoded.

By default each training item is one video with one of its captions, drawn from the video's captions with a
generator seeded by (seed, epoch, item); the "random" frame sampler (when decoding) is seeded the same way, so an
epoch is a pure function of (seed, epoch): resuming mid-epoch replays exactly the same batches. One video per item
keeps a video from appearing twice in a contrastive batch (CLIP4Clip's MSR-VTT setting). With
`expand_captions=True` every (video, caption) pair is an item (CLIP4Clip's MSVD setting: ~41 captions per video).

Undecodable training videos never stop training. With a frame cache, the videos the cache could not decode are
dropped up front (`skipped_video_ids`; an error only when none is left). When decoding on the fly, an item whose
video fails to decode is replaced by the item of the next decodable video (a pure function of the item, so batch
shapes and resumes stay exact) and its id is recorded once in `skipped_video_ids`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator

import datasets
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..data import read_cached_batch, select_keyframe_index
from ..data.frame_cache import to_model_resolution
from ..errors import UniTriMError, VideoDecodingError
from ..media.frame_sampling import FrameSampler
from ..processing_unitrim import UniTriMProcessor

logger = logging.getLogger(__name__)


def group_captions_by_video(split: datasets.Dataset) -> tuple[list[str], list[str], list[list[str]]]:
    """(video ids, video paths, captions of each video) of a builder split, in `video_index` order."""
    if "captions" in split.column_names:
        texts = split["captions"]
    elif "caption" in split.column_names:
        texts = [[caption] for caption in split["caption"]]
    else:
        raise UniTriMError(f"The training split needs a 'caption' or 'captions' column, has {split.column_names}.")
    videos: dict[int, tuple[str, str, list[str]]] = {}
    for video_index, video_id, video_path, captions in zip(split["video_index"], split["video_id"], split["video_path"], texts):
        entry = videos.setdefault(int(video_index), (video_id, video_path, []))
        entry[2].extend(captions)
    ordered = [videos[index] for index in sorted(videos)]
    return [entry[0] for entry in ordered], [entry[1] for entry in ordered], [entry[2] for entry in ordered]


class VideoCaptionDataset(Dataset):
    """
    One item per training video: `{"video_id", "caption", "frames" uint8 (T, S, S, 3), "video_mask" (T,),
    "keyframe" uint8 (S, S, 3)}`.

    Args:
        split: a builder split (columns `video_id`, `video_path`, `video_index`, `caption` or `captions`).
        image_size: S, the model's input resolution.
        num_frames: T.
        seed: seed of the caption draw and of the random frame sampler.
        frame_cache: a frame cache of this split (`prepare_frames`); the videos are decoded when None.
        expand_captions: one item per (video, caption) pair instead of one per video.
        frame_sampler: the sampler used when decoding (seeded per item through its `rng`); default "random".
    """

    def __init__(
        self,
        split: datasets.Dataset,
        image_size: int,
        num_frames: int,
        seed: int,
        frame_cache: datasets.Dataset | None = None,
        expand_captions: bool = False,
        frame_sampler: FrameSampler | None = None,
    ) -> None:
        self.video_ids, self.video_paths, self.captions = group_captions_by_video(split)
        self.pairs: list[tuple[int, int]] | None = None
        if expand_captions:
            self.pairs = [(video, caption) for video, captions in enumerate(self.captions) for caption in range(len(captions))]
        self.image_size = image_size
        self.num_frames = num_frames
        self.seed = seed
        self.epoch = 0
        self.frame_cache = frame_cache
        self.sampler = frame_sampler or FrameSampler(num_frames, strategy="random")
        self.cache_rows: list[int] | None = None
        # Ids of training videos left out (not in the frame cache) or replaced (failed to decode), in order found.
        self.skipped_video_ids: list[str] = []
        if frame_cache is not None:
            rows = {video_id: row for row, video_id in enumerate(frame_cache["video_id"])}
            missing = [video_id for video_id in self.video_ids if video_id not in rows]
            if len(missing) == len(self.video_ids):
                raise UniTriMError(
                    f"None of the {len(missing)} training videos is in the frame cache (e.g. {missing[:5]}); it was "
                    "made for another split or no video could be decoded (see unreadable.json in the cache's shards)."
                )
            if missing:
                logger.warning(
                    "%d training videos are not in the frame cache (they could not be decoded) and are left out: %s%s",
                    len(missing), missing[:20], " ..." if len(missing) > 20 else "",
                )
                self.skipped_video_ids = list(missing)
                kept = [index for index, video_id in enumerate(self.video_ids) if video_id in rows]
                self.video_ids = [self.video_ids[index] for index in kept]
                self.video_paths = [self.video_paths[index] for index in kept]
                self.captions = [self.captions[index] for index in kept]
                if self.pairs is not None:
                    self.pairs = [(video, caption) for video, captions in enumerate(self.captions) for caption in range(len(captions))]
            self.cache_rows = [rows[video_id] for video_id in self.video_ids]
            frame_shape = frame_cache[0]["frame_shape"]
            if frame_shape[0] != num_frames:
                raise UniTriMError(f"The frame cache holds {frame_shape[0]} frames per video, training wants {num_frames}.")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs) if self.pairs is not None else len(self.video_ids)

    def _generator(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, item: int) -> dict[str, Any]:
        generator = self._generator(item)
        if self.pairs is not None:
            index, caption_number = self.pairs[item]
        else:
            index = item
            caption_number = int(generator.integers(len(self.captions[index])))
        if self.cache_rows is not None:
            return self._load(index, caption_number, generator)
        for offset in range(len(self.video_ids)):
            candidate = (index + offset) % len(self.video_ids)
            if offset > 0:
                # The substitute's caption and frames are drawn from (seed, epoch, item, offset): deterministic.
                generator = np.random.default_rng([self.seed, self.epoch, item, offset])
                caption_number = int(generator.integers(len(self.captions[candidate])))
            try:
                return self._load(candidate, caption_number, generator)
            except VideoDecodingError as error:
                self._record_failure(self.video_ids[candidate], error)
        raise UniTriMError(f"None of the {len(self.video_ids)} training videos could be decoded (e.g. {self.video_paths[:3]}).")

    def _record_failure(self, video_id: str, error: VideoDecodingError) -> None:
        if video_id not in self.skipped_video_ids:
            self.skipped_video_ids.append(video_id)
            logger.warning("Training video %s could not be decoded and is replaced by the next one: %s", video_id, error)

    def _load(self, index: int, caption_number: int, generator: np.random.Generator) -> dict[str, Any]:
        """The item of video `index` with its caption `caption_number` (frames from the cache or decoded)."""
        caption = self.captions[index][caption_number]
        if self.cache_rows is not None:
            batch = read_cached_batch(self.frame_cache, [self.cache_rows[index]])
            frames, mask = batch["frames"][0], batch["video_mask"][0]
            keyframe = batch["keyframe"][0] if "keyframe" in batch else frames[select_keyframe_index(frames, mask)]
        else:
            sampled = self.sampler(self.video_paths[index], rng=generator)
            real = int(np.asarray(sampled.mask).sum())
            frames = np.zeros((self.num_frames, self.image_size, self.image_size, 3), dtype=np.uint8)
            frames[:real] = to_model_resolution(sampled.frames[:real], self.image_size)
            mask = np.asarray(sampled.mask, dtype=np.int64)
            keyframe = frames[select_keyframe_index(frames, mask)]
        if frames.shape[1] != self.image_size:
            frames = to_model_resolution(frames, self.image_size)
            keyframe = to_model_resolution(keyframe[None], self.image_size)[0]
        return {"video_id": self.video_ids[index], "caption": caption, "frames": frames, "video_mask": mask, "keyframe": keyframe}


@dataclass
class RetrievalCollator:
    """Stacks items into model inputs: captions through `processor.encode_text`, frames and keyframes normalized.

    Output: the text inputs, `pixel_values_videos` (B, T, 3, S, S) (zero on padded frames), `video_mask` (B, T),
    `pixel_values` (B, 3, S, S) when `include_images`, and `video_ids` (list of B strings, for error messages).
    """

    processor: UniTriMProcessor
    max_length: int
    include_images: bool = True

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = dict(self.processor.encode_text([item["caption"] for item in items], self.max_length))
        frames = np.stack([item["frames"] for item in items])
        batch_size, num_frames = frames.shape[:2]
        mask = torch.as_tensor(np.stack([item["video_mask"] for item in items]), dtype=torch.long)
        pixels = self.processor.image_transform(frames.reshape(batch_size * num_frames, *frames.shape[2:]))
        pixels = pixels.reshape(batch_size, num_frames, *pixels.shape[1:]) * mask[:, :, None, None, None]
        batch["pixel_values_videos"] = pixels
        batch["video_mask"] = mask
        if self.include_images:
            batch["pixel_values"] = self.processor.image_transform(np.stack([item["keyframe"] for item in items]))
        batch["video_ids"] = [item["video_id"] for item in items]
        return batch


class EpochShuffleSampler(Sampler[int]):
    """A permutation of `range(size)` that depends only on (seed, epoch), so a resumed epoch has the same order."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())
