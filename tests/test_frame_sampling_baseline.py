"""The constant-frame-rate path picks and decodes the same frames as the samplers of earlier commits, loaded as
benchmarks/frame_sampling_speed.py loads them: before decoding skipped unreferenced frames (its baseline) and before
variable-frame-rate support; and the benchmark's clips take the paths it says they take."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unitrim_hf import FrameSampler
from unitrim_hf.media.video_decoding import KeyframeDecoder
from unitrim_hf.media.video_writer import write_video

from media_files import coded_frames

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import frame_sampling_speed  # noqa: E402


def load_baseline(ref: str):
    try:
        return frame_sampling_speed.load_baseline_sampler(ref)
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        pytest.skip(f"the baseline commit {ref} is not available here ({error})")


BASELINE_REFS = [frame_sampling_speed.DEFAULT_BASELINE_REF, frame_sampling_speed.SINGLE_MODULE_BASELINE_REF]


@pytest.fixture(scope="module", params=BASELINE_REFS)
def baseline_sampler(request):
    return load_baseline(request.param)


@pytest.mark.parametrize("strategy", ["uniform", "fps", "random"])
@pytest.mark.parametrize("extension", ["mp4", "mkv", "m2ts"])
def test_constant_frame_rate_sampling_is_unchanged(tmp_path, baseline_sampler, strategy, extension):
    path = write_video(tmp_path / f"clip.{extension}", coded_frames(90), fps=25, gop_size=20)
    current = FrameSampler(8, strategy, seed=0)(path, start_time=0.5)
    before = baseline_sampler(8, strategy, seed=0)(path, start_time=0.5)
    np.testing.assert_array_equal(current.frame_indices, before.frame_indices)
    np.testing.assert_array_equal(current.frames, before.frames)
    np.testing.assert_allclose(current.timestamps, before.timestamps)


def test_the_baseline_runs_its_own_decoder():
    """The default baseline's sampler decodes with the decoder of its commit, not the current one."""
    sampler = load_baseline(frame_sampling_speed.DEFAULT_BASELINE_REF)
    decoding = sys.modules[sampler.__module__].KeyframeDecoder
    assert decoding.__module__ != KeyframeDecoder.__module__
    assert "skip_unused_frames" not in inspect.signature(decoding).parameters


def test_goal_checks_read_the_uniform_rows_with_the_transform():
    def row(clip, strategy, method, per_cpu_second):
        return {"clip": clip, "strategy": strategy, "method": method, "videos_per_cpu_second": per_cpu_second,
                "videos_per_second": None if per_cpu_second is None else per_cpu_second / 2}

    rows = [
        row("10s_320x240", "uniform", "frame_sampler+clip_transform", 31.0),
        row("10s_320x240", "fps", "frame_sampler+clip_transform", 5.0),
        row("10s_320x240", "uniform", "baseline_sampler+clip_transform_float", 40.0),
        row("30s_640x360", "uniform", "frame_sampler+clip_transform", 7.5),
        row("30s_640x360", "uniform", "pyav_decode_all_frames", None),
    ]
    checks = frame_sampling_speed.goal_checks(rows)
    assert [(check["clip"], check["met"]) for check in checks] == [("10s_320x240", True), ("30s_640x360", False)]


def test_benchmark_clips(tmp_path):
    constant = frame_sampling_speed.synthetic_clip(tmp_path / "c.mp4", 2, 48, 64, None, False)
    variable = frame_sampling_speed.synthetic_clip(tmp_path / "v.mp4", 2, 48, 64, None, True)
    sampled = FrameSampler(12)(variable)
    assert sampled.mask.sum() == 12
    assert sampled.timestamps[-1] > 2.5, "the slow second half stretches the clip to 3.9 s"
    assert FrameSampler(12)(constant).timestamps[-1] < 2.0
    with pytest.raises(ValueError):
        load_baseline(frame_sampling_speed.SINGLE_MODULE_BASELINE_REF)(12)(variable)
