"""Frames decoded (+ CLIP-transformed) per second on one core, for 12 frames of a 10 s 320x240 and a 30 s 640x360 clip.

References: PyAV decoding every frame of the clip, and PyAV decoding only the 12 needed frames (seek before each).

    python benchmarks/frame_sampling_speed.py [--repeats 5] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from unitrim_hf.frame_sampling import FrameSampler
from unitrim_hf.image_transforms import clip_transform
from unitrim_hf.video_writer import write_video

NUM_FRAMES = 12
# name: (seconds, height, width, keyframe interval in frames; None = libx264's default of 250, i.e. every 10 s)
CLIPS = {
    "10s_320x240": (10, 240, 320, None),
    "30s_640x360": (30, 360, 640, None),
    "30s_640x360_gop2s": (30, 360, 640, 50),
}
FPS = 25


def synthetic_clip(path: Path, seconds: int, height: int, width: int, gop_size: int | None) -> Path:
    """Moving gradients plus mild noise: compresses like ordinary footage, keyframes at the encoder's default."""
    rows, columns = np.mgrid[:height, :width]
    noise = np.random.default_rng(0).integers(0, 24, (height, width), dtype=np.int64)
    frames = np.empty((seconds * FPS, height, width, 3), dtype=np.uint8)
    for index in range(len(frames)):
        shift = index * 3
        frames[index, ..., 0] = (columns + shift) % 256
        frames[index, ..., 1] = (rows * 2 + shift) % 256
        frames[index, ..., 2] = ((rows + columns) // 2 + noise + index) % 256
    return write_video(path, frames, fps=FPS, gop_size=gop_size)


def decode_all(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def decode_needed_with_seek(path: Path, indices: np.ndarray) -> np.ndarray:
    """The plain approach: for every target, seek to the keyframe before it and decode forward to it."""
    import av

    images = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames_per_pts = float(stream.time_base * stream.average_rate)
        start = stream.start_time or 0
        for target in indices.tolist():
            container.seek(int(start + target / frames_per_pts), stream=stream, backward=True)
            for frame in container.decode(stream):
                if round((frame.pts - start) * frames_per_pts) >= target:
                    images.append(frame.to_ndarray(format="rgb24"))
                    break
    return np.stack(images)


def median_seconds(function, repeats: int) -> float:
    function()  # warm-up (file cache, codec initialisation)
    timings = []
    for _ in range(repeats):
        begin = time.perf_counter()
        function()
        timings.append(time.perf_counter() - begin)
    return statistics.median(timings)


def run(repeats: int) -> list[dict]:
    sampler = FrameSampler(num_frames=NUM_FRAMES, strategy="uniform")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, (seconds, height, width, gop_size) in CLIPS.items():
            path = synthetic_clip(Path(folder) / f"{name}.mp4", seconds, height, width, gop_size)
            indices = sampler.sample_indices(seconds * FPS, FPS)

            def sample_and_transform():
                sampled = sampler(path)
                return clip_transform(sampled.frames[sampled.mask == 1])

            methods = {
                "pyav_decode_all_frames": lambda: decode_all(path),
                "pyav_decode_12_seek_each": lambda: decode_needed_with_seek(path, indices),
                "frame_sampler_decode": lambda: sampler(path),
                "frame_sampler_decode+clip_transform": sample_and_transform,
                "clip_transform_only": lambda frames=sampler(path).frames: clip_transform(frames),
            }
            for method, function in methods.items():
                seconds_per_clip = median_seconds(function, repeats)
                rows.append(
                    {
                        "clip": name,
                        "method": method,
                        "ms_per_clip": 1000 * seconds_per_clip,
                        "sampled_frames_per_second": NUM_FRAMES / seconds_per_clip,
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    parser.add_argument("--all-cores", action="store_true", help="do not pin the process to one CPU core")
    arguments = parser.parse_args()

    torch.set_num_threads(1)
    if not arguments.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # FFmpeg's decoder threads included
    rows = run(arguments.repeats)
    print(f"{'clip':<18} {'method':<38} {'ms/clip':>9} {'frames/s':>9}   (12 frames per clip, median of {arguments.repeats})")
    for row in rows:
        print(f"{row['clip']:<18} {row['method']:<38} {row['ms_per_clip']:9.1f} {row['sampled_frames_per_second']:9.1f}")
    if arguments.json:
        arguments.json.write_text(json.dumps({"repeats": arguments.repeats, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
