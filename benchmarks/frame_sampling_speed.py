"""Time of 12-frame sampling by `FrameSampler` on one core, with and without the CLIP transform, against the sampler
and transform of an earlier commit (same run) and against plain PyAV, on constant- and variable-frame-rate clips.

Clips (synthetic, written to a temporary folder): 10 s 320x240 and 30 s 640x360 at 25 fps with libx264's default
keyframe interval (250 frames), 30 s 640x360 with a keyframe every 2 s, and variable-frame-rate copies of the first
two (the same frames: the first half at 25 fps, then each frame shown three times longer, as ffmpeg's
``setpts='if(lt(N,n/2),PTS,PTS*3)'``; the average and nominal rates differ, so the timestamp path is taken).

Rows per clip and strategy ("uniform", and CLIP4Clip's "fps" at 1 frame per second):
- `frame_sampler`: the current sampler; `baseline_sampler`: the sampler of `--baseline-ref` (git), its media modules
  loaded from `git show` into this process; `x baseline` = median / baseline median and min / baseline min (the min
  ratio is the steadier one on a loaded machine);
- `frame_sampler+clip_transform`: what a video costs before the encoder (`clip_transform`, uint8 resize), against
  `baseline_sampler+clip_transform_float` (the baseline's sampler and the float resize of earlier versions);
  `videos/s` = 1 / median, per wall-clock second and per CPU second;
- `clip_transform_only` against `clip_transform_float_only`: the transform of the 12 decoded frames;
- `vfr_cost`: on a variable-frame-rate clip, median / the median of the current sampler on its constant-rate twin;
- references: PyAV decoding every frame, PyAV decoding only the frames other frames reference (the whole stream
  with `skip_frame="NONREF"`: about what the sampler must decode when its frames span every keyframe group), and
  PyAV seeking before each needed frame.

Every call is timed in wall-clock seconds and in CPU seconds of the process (pinned to one core, FFmpeg decoding in
the calling thread): on a shared machine the wall time also counts the time spent waiting for the core. The goals
(issue 22: >= 30 videos/s for the 10 s 320x240 clip, >= 8 for the 30 s 640x360 ones, with the transform, median)
are checked per CPU second on the "uniform" rows and printed below the table, the wall-clock rate beside them.

    python benchmarks/frame_sampling_speed.py [--repeats 7] [--baseline-ref 3fa5b15] [--clips 10s_320x240 ...]
        [--strategies uniform fps] [--json results.json] [--all-cores]
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import os
import shutil
import subprocess
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from _timing import Timing, machine_info, markdown_table, report
from unitrim_hf.media.frame_sampling import FrameSampler
from unitrim_hf.media.frame_selection import FrameGrid
from unitrim_hf.media.image_transforms import clip_transform
from unitrim_hf.media.video_writer import write_video

NUM_FRAMES = 12
FPS = 25
# The last commit before decoding skipped unreferenced frames and the transform resized uint8 frames (the sampler
# issue 22 measured).
DEFAULT_BASELINE_REF = "3fa5b15"
# The last commit whose sampler chose frames and decoded them in one module (before variable frame rate support).
SINGLE_MODULE_BASELINE_REF = "c9998ad"
# Videos per second (median, with the transform, "uniform") that issue 22 asks for, per clip.
GOALS_VIDEOS_PER_SECOND = {"10s_320x240": 30.0, "30s_640x360": 8.0, "30s_640x360_gop2s": 8.0}
# The current method each row is compared with, and the baseline row it is compared against.
BASELINE_OF = {
    "frame_sampler": "baseline_sampler",
    "frame_sampler+clip_transform": "baseline_sampler+clip_transform_float",
    "clip_transform_only": "clip_transform_float_only",
}
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
    """`FrameSampler` of git `ref`.

    From `src/unitrim_hf/media/` (the media wing): its modules are written to a temporary folder and imported as the
    package `unitrim_hf._media_at_<ref>`, so the sampler runs with the decoder and frame selection of `ref` while
    `..errors` resolves to the current `unitrim_hf.errors`. Before the media wing (`src/unitrim_hf/frame_sampling.py`,
    one module), that module is imported inside the current package, where its `.errors` resolves.
    """
    here = Path(__file__).resolve().parent
    listed = subprocess.run(["git", "ls-tree", "--full-tree", "--name-only", ref, "src/unitrim_hf/media/"], capture_output=True,
                            text=True, cwd=here)
    names = [Path(name).name for name in listed.stdout.split() if name.endswith(".py")]
    if listed.returncode == 0 and "frame_sampling.py" in names:
        return _load_media_package(ref, names, here).FrameSampler
    path = "src/unitrim_hf/frame_sampling.py"
    shown = subprocess.run(["git", "show", f"{ref}:{path}"], capture_output=True, text=True, cwd=here)
    if shown.returncode != 0:
        raise FileNotFoundError(f"no frame sampler module at git ref {ref}: {shown.stderr.strip() or listed.stderr.strip()}")
    name = "unitrim_hf._frame_sampling_baseline"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "unitrim_hf"
    sys.modules[name] = module
    exec(compile(shown.stdout, f"{ref}:{path}", "exec"), module.__dict__)
    return module.FrameSampler


def _load_media_package(ref: str, names: list[str], repository: Path):
    """The `frame_sampling` module of git `ref`, imported with the other media modules of `ref` as the package
    `unitrim_hf._media_at_<ref>` (its `__init__` left empty: only the modules the sampler imports are loaded)."""
    package_name = f"unitrim_hf._media_at_{''.join(character for character in ref if character.isalnum())}"
    if package_name not in sys.modules:
        folder = Path(tempfile.mkdtemp(prefix=f"media_at_{ref}_"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        for name in names:
            if name != "__init__.py":
                shown = subprocess.run(["git", "show", f"{ref}:src/unitrim_hf/media/{name}"], capture_output=True,
                                       text=True, cwd=repository, check=True)
                (folder / name).write_text(shown.stdout)
        (folder / "__init__.py").write_text("")
        spec = importlib.util.spec_from_file_location(package_name, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        package = importlib.util.module_from_spec(spec)
        sys.modules[package_name] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{package_name}.frame_sampling")


def decode_all(path: Path, skip_frame: str = "DEFAULT") -> int:
    """Decode the whole stream; `skip_frame="NONREF"`: only the frames other frames reference."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = skip_frame
        return sum(1 for _ in container.decode(stream))


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


def time_interleaved_with_cpu(functions: dict, repeats: int, warmup: int = 1) -> dict[str, tuple[Timing, Timing]]:
    """As `_timing.time_interleaved` (round-robin repeats after `warmup` untimed calls), recording each call's
    wall-clock time and the CPU time of this process: `name -> (wall, cpu)`.

    The process is pinned to one core and FFmpeg decodes in the calling thread, so the CPU time is the time the
    call held the core: on a loaded machine the wall time also counts waiting for the core, the CPU time does not.
    """
    for _ in range(warmup):
        for function in functions.values():
            function()
    wall: dict[str, list[float]] = {name: [] for name in functions}
    cpu: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            function()
            cpu[name].append(time.process_time() - cpu_start)
            wall[name].append(time.perf_counter() - wall_start)
    return {
        name: tuple(Timing(statistics.median(values[name]), min(values[name]), values[name]) for values in (wall, cpu))
        for name in functions
    }


def run(repeats: int, baseline_ref: str, clips: list[str] | None = None, strategies: tuple[str, ...] = STRATEGIES) -> dict:
    BaselineSampler = load_baseline_sampler(baseline_ref)
    clips = clips or list(CLIPS)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        needed = set(clips) | {name.removesuffix("_vfr") for name in clips}
        paths = {name: synthetic_clip(Path(folder) / f"{name}.mp4", *CLIPS[name]) for name in CLIPS if name in needed}
        for strategy in strategies:
            sampler = FrameSampler(num_frames=NUM_FRAMES, strategy=strategy)
            baseline = BaselineSampler(num_frames=NUM_FRAMES, strategy=strategy)
            for name in clips:
                rows.extend(_time_clip(name, paths, strategy, sampler, baseline, repeats))
    return {"repeats": repeats, "baseline_ref": baseline_ref, "num_frames": NUM_FRAMES, "machine": machine_info(1),
            "rows": rows, "goals": goal_checks(rows)}


def _time_clip(name: str, paths: dict, strategy: str, sampler, baseline, repeats: int) -> list[dict]:
    path = paths[name]
    seconds, _, _, _, variable = CLIPS[name]
    functions = {"frame_sampler": lambda: sampler(path)}
    baseline_works = runs_without_error(lambda: baseline(path))
    if baseline_works:
        functions["baseline_sampler"] = lambda: baseline(path)
    if variable:
        twin = paths[name.removesuffix("_vfr")]
        functions["frame_sampler_on_constant_rate_twin"] = lambda: sampler(twin)
    else:
        indices = sampler.sample_indices(FrameGrid(seconds * FPS, FPS))
        frames = sampler(path).frames
        functions["frame_sampler+clip_transform"] = lambda: clip_transform(sampler(path).frames)
        functions["baseline_sampler+clip_transform_float"] = lambda: clip_transform(baseline(path).frames, resize="float")
        functions["clip_transform_only"] = lambda: clip_transform(frames)
        functions["clip_transform_float_only"] = lambda: clip_transform(frames, resize="float")
        functions["pyav_decode_all_frames"] = lambda: decode_all(path)
        functions["pyav_decode_referenced_frames"] = lambda: decode_all(path, skip_frame="NONREF")
        functions["pyav_decode_12_seek_each"] = lambda: decode_needed_with_seek(path, indices)
    timings = time_interleaved_with_cpu(functions, repeats, warmup=1)
    rows = []
    for method, (wall, cpu) in timings.items():
        pipeline = "clip_transform" in method and "only" not in method
        row = {
            "clip": name,
            "strategy": strategy,
            "method": method,
            "ms_median": 1000 * wall.median_seconds,
            "ms_min": 1000 * wall.min_seconds,
            "cpu_ms_median": 1000 * cpu.median_seconds,
            "cpu_ms_min": 1000 * cpu.min_seconds,
            "videos_per_second": 1 / wall.median_seconds if pipeline else None,
            "videos_per_cpu_second": 1 / cpu.median_seconds if pipeline else None,
            "ratio_to_baseline": None,
            "min_ratio_to_baseline": None,
            "cpu_ratio_to_baseline": None,
            "vfr_cost": None,
        }
        if BASELINE_OF.get(method) in timings:
            reference_wall, reference_cpu = timings[BASELINE_OF[method]]
            row["ratio_to_baseline"] = wall.median_seconds / reference_wall.median_seconds
            row["min_ratio_to_baseline"] = wall.min_seconds / reference_wall.min_seconds
            row["cpu_ratio_to_baseline"] = cpu.median_seconds / reference_cpu.median_seconds
        if method == "frame_sampler" and variable:
            row["vfr_cost"] = wall.median_seconds / timings["frame_sampler_on_constant_rate_twin"][0].median_seconds
        rows.append(row)
    if not baseline_works:
        empty = {key: None for key in rows[0] if key not in ("clip", "strategy", "method")}
        rows.append({"clip": name, "strategy": strategy, "method": "baseline_sampler (fails on this file)", **empty})
    return rows


def goal_checks(rows: list[dict]) -> list[dict]:
    """Each goal of `GOALS_VIDEOS_PER_SECOND` against the "uniform" sampler + transform row of its clip: met when
    the videos per CPU second of the one core (median) reach it; the wall-clock rate is reported beside it."""
    checks = []
    for row in rows:
        goal = GOALS_VIDEOS_PER_SECOND.get(row["clip"])
        if goal is not None and row["strategy"] == "uniform" and row["method"] == "frame_sampler+clip_transform":
            checks.append({"clip": row["clip"], "goal_videos_per_second": goal,
                           "videos_per_cpu_second": row["videos_per_cpu_second"],
                           "videos_per_second": row["videos_per_second"], "met": row["videos_per_cpu_second"] >= goal})
    return checks


def print_report(results: dict) -> None:
    headers = ["clip", "strategy", "method", "ms median", "ms min", "CPU ms median", "CPU ms min",
               "videos/s (wall / CPU median)", "x baseline (median)", "x baseline (min)", "x baseline (CPU median)",
               "VFR cost"]
    table = []
    for row in results["rows"]:
        rate = (f"{row['videos_per_second']:.1f} / {row['videos_per_cpu_second']:.1f}"
                if row.get("videos_per_second") is not None else None)
        table.append([row["clip"], row["strategy"], row["method"], row["ms_median"], row["ms_min"], row["cpu_ms_median"],
                      row["cpu_ms_min"], rate, row["ratio_to_baseline"], row["min_ratio_to_baseline"],
                      row["cpu_ratio_to_baseline"], row["vfr_cost"]])
    print(f"12 frames per clip, one core, median and min of {results['repeats']} interleaved repeats; "
          f"baseline = FrameSampler at {results['baseline_ref']} (+ clip_transform resize='float')")
    print(markdown_table(headers, table))
    for check in results["goals"]:
        print(f"goal {check['clip']}: {check['videos_per_cpu_second']:.1f} videos per CPU second with the transform "
              f"({check['videos_per_second']:.1f} per wall-clock second; goal >= {check['goal_videos_per_second']:g}): "
              f"{'met' if check['met'] else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE_REF, help="git commit/branch of the baseline sampler")
    parser.add_argument("--clips", nargs="+", choices=list(CLIPS), default=None, help="clips to time (default: all)")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--all-cores", action="store_true", help="do not pin the process to one CPU core")
    arguments = parser.parse_args()
    if arguments.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {arguments.repeats}")

    torch.set_num_threads(1)
    if not arguments.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # FFmpeg's decoder threads included
    report(run(arguments.repeats, arguments.baseline_ref, arguments.clips, tuple(arguments.strategies)), print_report,
           arguments.json)


if __name__ == "__main__":
    main()
