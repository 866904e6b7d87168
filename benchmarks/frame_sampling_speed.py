"""Time of 12-frame sampling by `FrameSampler` on one core, against the sampler of an earlier commit (same run) and
against plain PyAV, on constant- and variable-frame-rate clips.

Clips (synthetic, written to a temporary folder): 10 s 320x240 and 30 s 640x360 at 25 fps with libx264's default
keyframe interval (250 frames), 30 s 640x360 with a keyframe every 2 s, and variable-frame-rate copies of the first
two (the same frames: the first half at 25 fps, then each frame shown three times longer, as ffmpeg's
``setpts='if(lt(N,n/2),PTS,PTS*3)'``; the average and nominal rates differ, so the timestamp path is taken).

Rows per clip and strategy ("uniform", and CLIP4Clip's "fps" at 1 frame per second):
- `frame_sampler`: the current sampler; `baseline_sampler`: the sampler of `--baseline-ref` (git), loaded from
  `git show` into this process; `x baseline` = median / baseline median and min / baseline min (about 1.0 or
  less: no regression; the min ratio is the steadier one on a loaded machine);
- `vfr_cost`: on a variable-frame-rate clip, median / the median of the current sampler on its constant-rate twin;
- references: PyAV decoding every frame, PyAV seeking before each needed frame, and the CLIP transform alone.

    python benchmarks/frame_sampling_speed.py [--repeats 7] [--baseline-ref c9998ad] [--json results.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from _timing import machine_info, markdown_table, report, time_interleaved
from unitrim_hf.media.frame_sampling import FrameSampler
from unitrim_hf.media.frame_selection import FrameGrid
from unitrim_hf.media.image_transforms import clip_transform
from unitrim_hf.media.video_writer import write_video

NUM_FRAMES = 12
FPS = 25
# The last commit whose sampler chose frames and decoded them in one module (before variable frame rate support).
DEFAULT_BASELINE_REF = "c9998ad"
# name: (seconds, height, width, keyframe interval in frames (None: libx264's 250), variable frame rate)
CLIPS = {
    "10s_320x240": (10, 240, 320, None, False),
    "30s_640x360": (30, 360, 640, None, False),
    "30s_640x360_gop2s": (30, 360, 640, 50, False),
    "10s_320x240_vfr": (10, 240, 320, None, True),
    "30s_640x360_vfr": (30, 360, 640, None, True),
}
STRATEGIES = ("uniform", "fps")
# Variable-frame-rate timing: time base 1/75 s; 3 ticks (25 fps) per frame for the first half, then 9.
VFR_TIME_BASE = Fraction(1, 75)


def synthetic_clip(path: Path, seconds: int, height: int, width: int, gop_size: int | None, variable: bool) -> Path:
    """Moving gradients plus mild noise: compresses like ordinary footage."""
    rows, columns = np.mgrid[:height, :width]
    noise = np.random.default_rng(0).integers(0, 24, (height, width), dtype=np.int64)
    frames = np.empty((seconds * FPS, height, width, 3), dtype=np.uint8)
    for index in range(len(frames)):
        shift = index * 3
        frames[index, ..., 0] = (columns + shift) % 256
        frames[index, ..., 1] = (rows * 2 + shift) % 256
        frames[index, ..., 2] = ((rows + columns) // 2 + noise + index) % 256
    if not variable:
        return write_video(path, frames, fps=FPS, gop_size=gop_size)
    half = len(frames) // 2
    steps = [3 if index < half else 9 for index in range(len(frames) - 1)]
    pts = np.concatenate([[0], np.cumsum(steps)])
    return write_video(path, frames, fps=FPS, gop_size=gop_size, pts=pts.tolist(), time_base=VFR_TIME_BASE)


def load_baseline_sampler(ref: str):
    """`FrameSampler` of the sampler's module at git `ref` (`src/unitrim_hf/media/frame_sampling.py`, or
    `src/unitrim_hf/frame_sampling.py` before the media wing), imported inside the current package next to where
    it lived, so its relative imports (e.g. `.errors`) resolve to the current modules."""
    here = Path(__file__).resolve().parent
    for package, path in (("unitrim_hf.media", "src/unitrim_hf/media/frame_sampling.py"),
                          ("unitrim_hf", "src/unitrim_hf/frame_sampling.py")):
        shown = subprocess.run(["git", "show", f"{ref}:{path}"], capture_output=True, text=True, cwd=here)
        if shown.returncode == 0:
            break
    else:
        raise FileNotFoundError(f"no frame sampler module at git ref {ref}: {shown.stderr.strip()}")
    name = f"{package}._frame_sampling_baseline"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = package
    sys.modules[name] = module
    exec(compile(shown.stdout, f"{ref}:{path}", "exec"), module.__dict__)
    return module.FrameSampler


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


def runs_without_error(function) -> bool:
    try:
        function()
        return True
    except ValueError:
        return False


def run(repeats: int, baseline_ref: str) -> dict:
    BaselineSampler = load_baseline_sampler(baseline_ref)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        paths = {name: synthetic_clip(Path(folder) / f"{name}.mp4", *settings) for name, settings in CLIPS.items()}
        for strategy in STRATEGIES:
            sampler = FrameSampler(num_frames=NUM_FRAMES, strategy=strategy)
            baseline = BaselineSampler(num_frames=NUM_FRAMES, strategy=strategy)
            for name, path in paths.items():
                seconds, _, _, _, variable = CLIPS[name]
                functions = {"frame_sampler": lambda path=path: sampler(path)}
                baseline_works = runs_without_error(lambda: baseline(path))
                if baseline_works:
                    functions["baseline_sampler"] = lambda path=path: baseline(path)
                if variable:
                    twin = paths[name.removesuffix("_vfr")]
                    functions["frame_sampler_on_constant_rate_twin"] = lambda twin=twin: sampler(twin)
                else:
                    indices = sampler.sample_indices(FrameGrid(seconds * FPS, FPS))
                    frames = sampler(path).frames
                    functions["frame_sampler+clip_transform"] = lambda path=path: clip_transform(
                        sampler(path).frames[:NUM_FRAMES]
                    )
                    functions["clip_transform_only"] = lambda frames=frames: clip_transform(frames)
                    functions["pyav_decode_12_seek_each"] = lambda path=path, indices=indices: decode_needed_with_seek(path, indices)
                    functions["pyav_decode_all_frames"] = lambda path=path: decode_all(path)
                timings = time_interleaved(functions, repeats, warmup=1)
                current = timings["frame_sampler"].median_seconds
                for method, timing in timings.items():
                    row = {
                        "clip": name,
                        "strategy": strategy,
                        "method": method,
                        "ms_median": 1000 * timing.median_seconds,
                        "ms_min": 1000 * timing.min_seconds,
                        "ratio_to_baseline": None,
                        "min_ratio_to_baseline": None,
                        "vfr_cost": None,
                    }
                    if method == "frame_sampler":
                        if baseline_works:
                            row["ratio_to_baseline"] = current / timings["baseline_sampler"].median_seconds
                            row["min_ratio_to_baseline"] = timing.min_seconds / timings["baseline_sampler"].min_seconds
                        if variable:
                            row["vfr_cost"] = current / timings["frame_sampler_on_constant_rate_twin"].median_seconds
                    rows.append(row)
                if not baseline_works:
                    rows.append({"clip": name, "strategy": strategy, "method": "baseline_sampler (fails on this file)",
                                 "ms_median": None, "ms_min": None, "ratio_to_baseline": None,
                                 "min_ratio_to_baseline": None, "vfr_cost": None})
    return {"repeats": repeats, "baseline_ref": baseline_ref, "num_frames": NUM_FRAMES, "machine": machine_info(1), "rows": rows}


def print_report(results: dict) -> None:
    headers = ["clip", "strategy", "method", "ms median", "ms min", "x baseline (median)", "x baseline (min)", "VFR cost"]
    table = [
        [row["clip"], row["strategy"], row["method"], row["ms_median"], row["ms_min"], row["ratio_to_baseline"],
         row["min_ratio_to_baseline"], row["vfr_cost"]]
        for row in results["rows"]
    ]
    print(f"12 frames per clip, one core, median and min of {results['repeats']} interleaved repeats; "
          f"baseline = FrameSampler at {results['baseline_ref']}")
    print(markdown_table(headers, table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE_REF, help="git commit/branch of the baseline sampler")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--all-cores", action="store_true", help="do not pin the process to one CPU core")
    arguments = parser.parse_args()

    torch.set_num_threads(1)
    if not arguments.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # FFmpeg's decoder threads included
    report(run(arguments.repeats, arguments.baseline_ref), print_report, arguments.json)


if __name__ == "__main__":
    main()
