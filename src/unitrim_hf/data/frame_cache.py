"""Decode-once frame cache: every video sampled once, stored as uint8 frames in an Arrow dataset.

Layout of `output_dir`::

    cache_info.json            settings (sampler, image size, keyframe) and the video list
    shards/00000/ ...          one `save_to_disk` dataset per `shard_size` videos (renamed into
                               place when complete, so an interrupted run redoes only unfinished shards)
    shards/00000/unreadable.json
    unreadable_videos.json     all videos that failed to decode (count + ids + reasons), written at the end

Every row carries a CRC-32 of all its values (`checksum`), verified whenever rows are read (`read_cached_batch`):
a changed byte of a frame, of a shape field or of a mask is a [`FrameCacheMismatchError`] naming the cache and
the video, never corrupted frames in training. A shard that cannot be read (truncated) is that error too.

Training reads `load_frame_cache` (memory-mapped; `.with_format("torch")` gives tensors).
"""

from __future__ import annotations

import json
import logging
import shutil
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Optional

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import FrameCacheMismatchError, VideoDecodingError
from ..media.frame_sampling import FrameSampler
from ..media.image_transforms import clip_transform
from .keyframes import select_keyframe_index

logger = logging.getLogger(__name__)

CACHE_INFO_FILE_NAME = "cache_info.json"
UNREADABLE_FILE_NAME = "unreadable_videos.json"
# 2: rows carry a checksum. A cache of another format is refused (delete it to rebuild).
CACHE_FORMAT = 2



def to_model_resolution(frames: np.ndarray, image_size: int) -> np.ndarray:
    """uint8 (T, H, W, 3) -> uint8 (T, image_size, image_size, 3): CLIP's short-side bicubic resize + center crop.

    Uses the same resize as `unitrim_hf.media.image_transforms.clip_transform`, so normalizing the
    cached frames later gives the tensor the model would get from the original frames.
    """
    if frames.shape[1] == image_size and frames.shape[2] == image_size:
        return np.ascontiguousarray(frames)
    identity = clip_transform(frames, size=image_size, mean=(0.0, 0.0, 0.0), std=(1 / 255.0,) * 3)
    return identity.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def cache_features(num_frames: int, image_size: int, keyframe: bool) -> datasets.Features:
    features = {
        "video_id": datasets.Value("string"),
        "video_index": datasets.Value("int32"),
        # Raw uint8 bytes of the (T, S, S, 3) array: Arrow's nested lists (Array4D) would add 4-byte
        # offsets per 3-byte pixel and more than double the size on disk.
        "frames": datasets.Value("binary"),
        "frame_shape": datasets.List(datasets.Value("int32"), length=4),
        "video_mask": datasets.List(datasets.Value("int64"), length=num_frames),
        "frame_indices": datasets.List(datasets.Value("int64"), length=num_frames),
        "timestamps": datasets.List(datasets.Value("float64"), length=num_frames),
    }
    if keyframe:
        features["keyframe"] = datasets.Value("binary")
    features["checksum"] = datasets.Value("int64")
    return datasets.Features(features)


def row_checksum(row: dict) -> int:
    """CRC-32 of every value of a cache row (all columns but `checksum`), in a fixed order and encoding."""
    crc = zlib.crc32(str(row["video_id"]).encode("utf-8", "surrogatepass"))
    crc = zlib.crc32(np.asarray([row["video_index"]], dtype=np.int64).tobytes(), crc)
    crc = zlib.crc32(row["frames"], crc)
    crc = zlib.crc32(np.asarray(row["frame_shape"], dtype=np.int64).tobytes(), crc)
    for name, dtype in (("video_mask", np.int64), ("frame_indices", np.int64), ("timestamps", np.float64)):
        crc = zlib.crc32(np.asarray(row[name], dtype=dtype).tobytes(), crc)
    if row.get("keyframe") is not None:
        crc = zlib.crc32(row["keyframe"], crc)
    return crc


def _prepare_shard(
    shard_dir: str,
    videos: list[tuple[str, int, str]],
    sampler: FrameSampler,
    image_size: int,
    keyframe: bool,
    keyframe_strategy: str,
    embed_frames: Optional[Callable],
    progress: Optional[Callable[[], None]] = None,
) -> dict[str, str]:
    """Decode one shard's videos and save them; returns `{video_id: reason}` for unreadable ones."""
    rows: dict[str, list] = {name: [] for name in cache_features(1, 1, keyframe)}
    unreadable: dict[str, str] = {}
    for video_id, video_index, video_path in videos:
        try:
            sampled = sampler(video_path)
        except VideoDecodingError as error:
            unreadable[video_id] = error.reason
        else:
            rows["video_id"].append(video_id)
            rows["video_index"].append(video_index)
            resized = to_model_resolution(np.asarray(sampled.frames), image_size)
            rows["frames"].append(resized.tobytes())
            rows["frame_shape"].append(list(resized.shape))
            rows["video_mask"].append(np.asarray(sampled.mask, dtype=np.int64))
            rows["frame_indices"].append(np.asarray(sampled.frame_indices, dtype=np.int64))
            rows["timestamps"].append(np.asarray(sampled.timestamps, dtype=np.float64))
            if keyframe:
                position = select_keyframe_index(sampled.frames, sampled.mask, keyframe_strategy, embed_frames)
                rows["keyframe"].append(resized[position].tobytes())
            rows["checksum"].append(row_checksum({name: values[-1] for name, values in rows.items() if name != "checksum"}))
        if progress is not None:
            progress()
    final = Path(shard_dir)
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    features = cache_features(sampler.num_frames, image_size, keyframe)
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(partial))
    (partial / "unreadable.json").write_text(json.dumps(unreadable, indent=1))
    partial.rename(final)
    return unreadable


def _unique_videos(dataset: datasets.Dataset) -> list[tuple[str, int, str]]:
    """(video_id, video_index, video_path) of each video once, in order of first appearance."""
    indices = dataset["video_index"] if "video_index" in dataset.column_names else None
    seen: dict[str, tuple[str, int, str]] = {}
    for row, (video_id, video_path) in enumerate(zip(dataset["video_id"], dataset["video_path"])):
        if video_id not in seen:
            seen[video_id] = (video_id, int(indices[row]) if indices is not None else len(seen), video_path)
    return list(seen.values())


def prepare_frames(
    dataset: datasets.Dataset,
    sampler: FrameSampler,
    output_dir: str | Path,
    image_size: int = 224,
    num_proc: int = 1,
    keyframe: bool = True,
    keyframe_strategy: str = "middle",
    embed_frames: Optional[Callable[[np.ndarray], torch.Tensor]] = None,
    shard_size: int = 64,
) -> datasets.Dataset:
    """Decode each unique video of `dataset` once and store its sampled frames at model resolution.

    Args:
        dataset: a split of a builder (columns `video_id`, `video_path`, optionally `video_index`).
        sampler: the training/evaluation sampler; frames are stored exactly as it returns them,
            resized to `image_size` (a `"random"` sampler is drawn once and frozen).
        output_dir: cache folder (created; an existing cache with the same settings is resumed).
        image_size: side S of the stored frames (short-side bicubic resize + center crop, uint8).
        num_proc: worker processes (`spawn`; the sampler and `embed_frames` must be picklable).
        keyframe: also store one keyframe per video (`keyframe_strategy`, see `select_keyframe_index`;
            `"self_attention"` and `"clip_centroid"` need `embed_frames`, e.g. a `CLIPFrameEmbedder`, whose
            `name` is recorded in `cache_info.json`).
        shard_size: videos per shard, the unit of resumption.

    Returns:
        The cache (see `load_frame_cache`): one row per readable video with `video_id`,
        `video_index`, `frames` (raw bytes of uint8 (T, S, S, 3); shape in `frame_shape`),
        `video_mask` (T,), `frame_indices` (T,), `timestamps` (T,) and `keyframe` (bytes of
        uint8 (S, S, 3)); `read_cached_batch` returns them as arrays. Unreadable videos are
        left out, logged and listed in `output_dir/unreadable_videos.json`.
    """
    if image_size < 1 or shard_size < 1 or num_proc < 1:
        raise ValueError(f"image_size, shard_size and num_proc must be >= 1, got {image_size}, {shard_size}, {num_proc}")
    output_dir = Path(output_dir)
    videos = _unique_videos(dataset)
    settings = {
        "format": CACHE_FORMAT,
        "sampler": sampler.to_dict(),
        "image_size": int(image_size),
        "keyframe": bool(keyframe),
        "keyframe_strategy": keyframe_strategy if keyframe else None,
        "shard_size": int(shard_size),
        "video_ids": [video_id for video_id, _, _ in videos],
    }
    if keyframe and embed_frames is not None:
        # Which features chose the keyframes (e.g. the CLIP checkpoint of a CLIPFrameEmbedder).
        settings["keyframe_features"] = str(getattr(embed_frames, "name", type(embed_frames).__name__))
    info_path = output_dir / CACHE_INFO_FILE_NAME
    if info_path.is_file():
        existing = json.loads(info_path.read_text())
        if existing.get("format") != CACHE_FORMAT:
            raise FrameCacheMismatchError(
                f"{output_dir} holds a frame cache of another format (format {existing.get('format', 1)}, this "
                f"version reads format {CACHE_FORMAT}, whose rows carry checksums); delete it to rebuild it"
            )
        if existing != settings:
            changed = sorted(key for key in settings if existing.get(key) != settings[key])
            raise FrameCacheMismatchError(
                f"{output_dir} holds a frame cache made with different {', '.join(changed)}; use another output_dir"
            )
    else:
        output_dir.mkdir(parents=True, exist_ok=True)
        info_path.write_text(json.dumps(settings, indent=1))

    shard_folder = output_dir / "shards"
    shard_folder.mkdir(exist_ok=True)
    shards = [videos[start : start + shard_size] for start in range(0, len(videos), shard_size)]
    shard_dirs = [shard_folder / f"{number:05d}" for number in range(len(shards))]
    pending = [number for number, shard_dir in enumerate(shard_dirs) if not shard_dir.is_dir()]
    done_videos = len(videos) - sum(len(shards[number]) for number in pending)
    arguments = (sampler, image_size, keyframe, keyframe_strategy, embed_frames)

    with tqdm(total=len(videos), initial=done_videos, unit="video", desc="decoding frames") as bar:
        if num_proc == 1 or len(pending) <= 1:
            for number in pending:
                _prepare_shard(str(shard_dirs[number]), shards[number], *arguments, progress=lambda: bar.update(1))
        else:
            with ProcessPoolExecutor(max_workers=num_proc, mp_context=get_context("spawn")) as executor:
                futures = {
                    executor.submit(_prepare_shard, str(shard_dirs[number]), shards[number], *arguments): number
                    for number in pending
                }
                for future in as_completed(futures):
                    future.result()
                    bar.update(len(shards[futures[future]]))
    return _finish(output_dir, shard_dirs)


def _finish(output_dir: Path, shard_dirs: list[Path]) -> datasets.Dataset:
    unreadable: dict[str, str] = {}
    for shard_dir in shard_dirs:
        unreadable.update(json.loads((shard_dir / "unreadable.json").read_text()))
    (output_dir / UNREADABLE_FILE_NAME).write_text(
        json.dumps({"count": len(unreadable), "ids": sorted(unreadable), "reasons": unreadable}, indent=1)
    )
    if unreadable:
        ids = sorted(unreadable)
        logger.warning(
            "%d videos could not be decoded and are not in the frame cache: %s%s (full list: %s)",
            len(ids), ", ".join(ids[:20]), " ..." if len(ids) > 20 else "", output_dir / UNREADABLE_FILE_NAME,
        )
    return load_frame_cache(output_dir)


def load_frame_cache(output_dir: str | Path) -> datasets.Dataset:
    """The frame cache written by `prepare_frames` (all shards, memory-mapped)."""
    output_dir = Path(output_dir)
    info_path = output_dir / CACHE_INFO_FILE_NAME
    if not info_path.is_file():
        raise FrameCacheMismatchError(f"{output_dir} is not a frame cache ({CACHE_INFO_FILE_NAME} is missing)")
    settings = json.loads(info_path.read_text())
    if settings.get("format") != CACHE_FORMAT:
        raise FrameCacheMismatchError(
            f"{output_dir} holds a frame cache of another format (format {settings.get('format', 1)}, this version "
            f"reads format {CACHE_FORMAT}); delete it to rebuild it"
        )
    num_shards = -(-len(settings["video_ids"]) // settings["shard_size"])
    shard_dirs = [output_dir / "shards" / f"{number:05d}" for number in range(num_shards)]
    unfinished = [shard_dir.name for shard_dir in shard_dirs if not shard_dir.is_dir()]
    if unfinished:
        raise FrameCacheMismatchError(
            f"{output_dir}: shards {', '.join(unfinished[:10])} are not finished; run prepare_frames again to complete them"
        )
    if not shard_dirs:
        features = cache_features(settings["sampler"]["num_frames"], settings["image_size"], settings["keyframe"])
        return datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    return datasets.concatenate_datasets([_load_shard(shard_dir) for shard_dir in shard_dirs])


def _load_shard(shard_dir: Path) -> datasets.Dataset:
    try:
        return datasets.load_from_disk(str(shard_dir))
    except Exception as error:  # truncated Arrow files raise pyarrow's OSError, ArrowInvalid, or JSON errors
        raise FrameCacheMismatchError(
            f"{shard_dir} (a frame cache shard) cannot be read ({type(error).__name__}: {error}); delete the shard "
            "to decode its videos again"
        ) from error


def read_cached_batch(cache: datasets.Dataset, indices: list[int]) -> dict[str, object]:
    """Rows `indices` of a frame cache as stacked arrays with their stored dtypes.

    `datasets`' numpy/torch formats widen every integer column to int64 (8x the memory for
    frames), so this reads the Arrow columns directly.

    Returns:
        `frames` uint8 (B, T, S, S, 3), `video_mask` int64 (B, T), `frame_indices` int64 (B, T),
        `timestamps` float64 (B, T), `keyframe` uint8 (B, S, S, 3) when stored, `video_index`
        int32 (B,), `video_id` list of B strings.
    """
    rows = cache.with_format("arrow")[list(indices)].to_pylist()
    _verify_rows(rows, indices)
    batch: dict[str, object] = {"video_id": [row["video_id"] for row in rows]}
    shapes = [tuple(row["frame_shape"]) for row in rows]
    frames = [np.frombuffer(row["frames"], dtype=np.uint8).reshape(shape) for row, shape in zip(rows, shapes)]
    batch["frames"] = np.stack(frames) if frames else np.zeros((0,), dtype=np.uint8)
    if "keyframe" in cache.column_names:
        keyframes = [np.frombuffer(row["keyframe"], dtype=np.uint8).reshape(shape[1:]) for row, shape in zip(rows, shapes)]
        batch["keyframe"] = np.stack(keyframes) if keyframes else np.zeros((0,), dtype=np.uint8)
    batch["video_index"] = np.asarray([row["video_index"] for row in rows], dtype=np.int32)
    for name, dtype in (("video_mask", np.int64), ("frame_indices", np.int64), ("timestamps", np.float64)):
        batch[name] = np.asarray([row[name] for row in rows], dtype=dtype)
    return batch


def _verify_rows(rows: list[dict], indices: list[int]) -> None:
    """FrameCacheMismatchError naming the first of `rows` whose values do not match their checksum."""
    for position, row in enumerate(rows):
        stored = row.get("checksum")
        if stored is None or row_checksum(row) != stored:
            raise FrameCacheMismatchError(
                f"frame cache row {indices[position]} (video {row.get('video_id')!r}) does not match its checksum: the "
                "cache is corrupt; delete it to decode the videos again"
            )
