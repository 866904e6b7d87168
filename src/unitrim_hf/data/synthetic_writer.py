"""Write the SyntheticTriM benchmark to disk in the MSR-VTT layout (real mp4 files, JSON, CSVs)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..benchmark_names import (
    SYNTHETIC_GENERATOR_KEY,
    SYNTHETIC_MANIFEST_FILE_NAME,
    read_synthetic_manifest,
    resolve_synthetic_settings,
)
from ..errors import BenchmarkFormatError
from ..media.video_writer import write_video
from .synthetic import SCENE_SETS, generate_clip_specs, render_clip

MANIFEST_FILE_NAME = SYNTHETIC_MANIFEST_FILE_NAME
# 2: training and test scenes drawn from disjoint halves of the scene space (1: test clips were the clips after the
# training ones, i.e. training clips of any larger benchmark with the same seed).
SCENE_GENERATOR_VERSION = 2
GENERATOR_KEY = SYNTHETIC_GENERATOR_KEY


def synthetic_settings(
    num_train: int, num_test: int, seed: int, num_frames: int, frame_size: int, fps: float, scenes: str = "mixed"
) -> dict:
    """The manifest of a benchmark written with these settings (the generator's version included)."""
    return {
        "num_train": int(num_train),
        "num_test": int(num_test),
        "seed": int(seed),
        "num_frames": int(num_frames),
        "frame_size": int(frame_size),
        "fps": float(fps),
        "scenes": str(scenes),
        GENERATOR_KEY: SCENE_GENERATOR_VERSION,
    }


def _check_generator_version(root: Path) -> None:
    """Refuse a folder written by the earlier scene generator (its test scenes are training scenes elsewhere)."""
    existing = read_synthetic_manifest(root)
    if existing is not None and existing.get(GENERATOR_KEY) != SCENE_GENERATOR_VERSION:
        raise BenchmarkFormatError(
            f"{root / MANIFEST_FILE_NAME}: this folder holds SyntheticTriM written by an earlier version, whose test "
            "videos are training videos of larger benchmarks; delete the folder (it is regenerated) or use another one"
        )


def _check_settings(num_train: int, num_test: int, num_frames: int, frame_size: int, scenes: str) -> None:
    if scenes not in SCENE_SETS:
        raise ValueError(f"scenes must be one of {', '.join(SCENE_SETS)}, got {scenes!r}")
    if num_train < 1 or num_test < 1:
        raise ValueError(f"num_train and num_test must be >= 1, got {num_train} and {num_test}")
    if frame_size % 2 or frame_size < 16:
        raise ValueError(f"frame_size must be an even number >= 16 (yuv420 mp4), got {frame_size}")
    if num_frames < 2:
        raise ValueError(f"num_frames must be >= 2 (temporal captions need motion), got {num_frames}")


def write_synthetic_benchmark(
    root: str | Path,
    num_train: int | None = None,
    num_test: int | None = None,
    seed: int | None = None,
    num_frames: int | None = None,
    frame_size: int | None = None,
    fps: float | None = None,
    scenes: str | None = None,
) -> Path:
    """Generate SyntheticTriM and write it under `root` exactly as MSR-VTT is laid out.

    Writes `videos/all/video{i}.mp4` (`num_frames` frames of `frame_size` x `frame_size`),
    `MSRVTT_data.json` (every caption, each sentence with an extra `kind` field: spatial /
    temporal / combined), `MSRVTT_train.9k.csv` (videos `0..num_train-1`) and
    `MSRVTT_JSFUSION_test.csv` (the next `num_test` videos, one row each with the clip's
    combined caption, which is unique in the benchmark), plus `synthetic_trim.json` (the settings, written last).
    Test videos are test scenes (`scene_split`): never a training video of
    this or any other SyntheticTriM benchmark, whatever its size, seed or scene set.

    `scenes` is the scene set: `"mixed"` or `"temporal_order"` (each scene beside its reversal; see
    `unitrim_hf.data.synthetic`).

    Settings left at None are the folder's own when it has been generated, else `SYNTHETIC_DEFAULTS` (400 training
    and 100 test clips of 16 frames of 64 x 64 at 8 fps, seed 0, mixed scenes: the main job's benchmark).

    Returns `root`. Raises [`BenchmarkFormatError`] if `root` already holds a benchmark whose settings contradict
    the ones given (naming the setting), or one that is not SyntheticTriM; rewriting the same settings is a no-op.
    """
    root = Path(root)
    _check_generator_version(root)
    resolved = resolve_synthetic_settings(
        root, num_train=num_train, num_test=num_test, seed=seed, num_frames=num_frames, frame_size=frame_size, fps=fps,
        scenes=scenes,
    )
    num_train, num_test, seed = int(resolved["num_train"]), int(resolved["num_test"]), int(resolved["seed"])
    num_frames, frame_size, fps = int(resolved["num_frames"]), int(resolved["frame_size"]), float(resolved["fps"])
    scenes = str(resolved["scenes"])
    _check_settings(num_train, num_test, num_frames, frame_size, scenes)
    settings = synthetic_settings(num_train, num_test, seed, num_frames, frame_size, fps, scenes)
    manifest = root / MANIFEST_FILE_NAME
    if manifest.is_file():
        return root
    if (root / "MSRVTT_data.json").exists():
        raise BenchmarkFormatError(f"{root} already holds an MSRVTT_data.json that is not SyntheticTriM's; refusing to overwrite it")

    specs = generate_clip_specs(num_train, seed, num_frames, split="train", scene_set=scenes) + generate_clip_specs(
        num_test, seed, num_frames, split="test", scene_set=scenes
    )
    video_folder = root / "videos" / "all"
    video_folder.mkdir(parents=True, exist_ok=True)
    videos, sentences, test_rows = [], [], []
    duration = num_frames / fps
    for clip_index, spec in enumerate(specs):
        video_id = f"video{clip_index}"
        split = "train" if clip_index < num_train else "test"
        # MPEG-4 Part 2 rather than x264: its output is byte-identical from run to run (x264's threaded
        # encoder is not), so the same seed gives the same pixels after decoding.
        write_video(video_folder / f"{video_id}.mp4", render_clip(spec, frame_size), fps=fps, codec="mpeg4")
        videos.append(
            {"category": 0, "url": "", "video_id": video_id, "start time": 0.0, "end time": duration, "split": split, "id": clip_index}
        )
        captions = spec.captions()
        for caption in captions:
            sentences.append({"caption": caption.text, "video_id": video_id, "sen_id": len(sentences), "kind": caption.kind})
        if split == "test":
            test_rows.append((f"ret{len(test_rows)}", f"msr{clip_index}", video_id, captions[-1].text))

    (root / "MSRVTT_data.json").write_text(
        json.dumps({"info": {"description": "SyntheticTriM", **settings}, "videos": videos, "sentences": sentences})
    )
    with open(root / "MSRVTT_train.9k.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_id"])
        writer.writerows([[f"video{index}"] for index in range(num_train)])
    with open(root / "MSRVTT_JSFUSION_test.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "vid_key", "video_id", "sentence"])
        writer.writerows(test_rows)
    # Written last: its presence means the folder is complete.
    manifest.write_text(json.dumps(settings))
    return root
