"""The constant-frame-rate path picks the same frames as the sampler before variable-frame-rate support (the
baseline of benchmarks/frame_sampling_speed.py), and the benchmark's clips take the paths it says they take."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unitrim_hf import FrameSampler
from unitrim_hf.media.video_writer import write_video

from media_files import coded_frames

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import frame_sampling_speed  # noqa: E402


@pytest.fixture(scope="module")
def baseline_sampler():
    try:
        return frame_sampling_speed.load_baseline_sampler(frame_sampling_speed.DEFAULT_BASELINE_REF)
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        pytest.skip(f"the baseline commit is not available here ({error})")


@pytest.mark.parametrize("strategy", ["uniform", "fps", "random"])
@pytest.mark.parametrize("extension", ["mp4", "mkv", "m2ts"])
def test_constant_frame_rate_sampling_is_unchanged(tmp_path, baseline_sampler, strategy, extension):
    path = write_video(tmp_path / f"clip.{extension}", coded_frames(90), fps=25, gop_size=20)
    current = FrameSampler(8, strategy, seed=0)(path, start_time=0.5)
    before = baseline_sampler(8, strategy, seed=0)(path, start_time=0.5)
    np.testing.assert_array_equal(current.frame_indices, before.frame_indices)
    np.testing.assert_array_equal(current.frames, before.frames)
    np.testing.assert_allclose(current.timestamps, before.timestamps)


def test_benchmark_clips(tmp_path, baseline_sampler):
    constant = frame_sampling_speed.synthetic_clip(tmp_path / "c.mp4", 2, 48, 64, None, False)
    variable = frame_sampling_speed.synthetic_clip(tmp_path / "v.mp4", 2, 48, 64, None, True)
    sampled = FrameSampler(12)(variable)
    assert sampled.mask.sum() == 12
    assert sampled.timestamps[-1] > 2.5, "the slow second half stretches the clip to 3.9 s"
    assert FrameSampler(12)(constant).timestamps[-1] < 2.0
    with pytest.raises(ValueError):
        baseline_sampler(12)(variable)
