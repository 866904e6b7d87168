"""FrameSampler on real clips written with PyAV whose frame index is painted into the pixels."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from unitrim_hf.errors import UniTriMError, VideoDecodingError
from unitrim_hf.media.frame_sampling import FrameSampler, SampledFrames
from unitrim_hf.media.frame_selection import FrameGrid
from unitrim_hf.media.video_decoding import FrameRateTimeline, KeyframeDecoder, probe_stream
from unitrim_hf.media.video_writer import write_video

from media_files import HEIGHT, WIDTH, coded_frames, read_index

NTSC = Fraction(30000, 1001)
CONTAINERS = ["mp4", "avi", "webm", "mkv", "mov", "3gp", "m2ts"]


def painted_indices(sampled: SampledFrames) -> list[int]:
    return [read_index(frame) for frame in sampled.frames[sampled.mask == 1]]


def real_indices(sampled: SampledFrames) -> list[int]:
    return sampled.frame_indices[sampled.mask == 1].tolist()


CLIP_FRAMES = 80


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """One 80-frame clip per (container, fps), keyframe every 10 frames (B-frames where the codec uses them)."""
    folder = tmp_path_factory.mktemp("clips")
    frames = coded_frames(CLIP_FRAMES)
    written = {}
    for extension in CONTAINERS:
        for fps in (25, NTSC):
            path = folder / f"clip_{int(fps)}.{extension}"
            written[extension, fps] = write_video(path, frames, fps=fps, gop_size=10)
    return written


def test_coded_frames_round_trip_without_compression():
    frames = coded_frames(300)
    assert [read_index(frame) for frame in frames] == list(range(300))


@pytest.mark.parametrize("fps", [25, NTSC], ids=["25fps", "29.97fps"])
@pytest.mark.parametrize("extension", CONTAINERS)
def test_uniform_sampling_returns_the_expected_frames(clips, extension, fps):
    sampler = FrameSampler(num_frames=12, strategy="uniform")
    sampled = sampler(clips[extension, fps])
    expected = sampler.sample_indices(FrameGrid(CLIP_FRAMES, float(fps))).tolist()
    assert expected == [int((k + 0.5) * CLIP_FRAMES / 12) for k in range(12)]
    assert real_indices(sampled) == expected
    assert painted_indices(sampled) == expected
    assert sampled.mask.tolist() == [1] * 12
    assert sampled.frames.shape == (12, HEIGHT, WIDTH, 3) and sampled.frames.dtype == np.uint8
    np.testing.assert_allclose(sampled.timestamps, np.asarray(expected) / float(fps), atol=1e-3)


@pytest.mark.parametrize("fps", [25, NTSC], ids=["25fps", "29.97fps"])
@pytest.mark.parametrize("extension", CONTAINERS)
def test_start_and_end_time_select_frames_inside_the_moment(clips, extension, fps):
    sampler = FrameSampler(num_frames=6, strategy="uniform")
    sampled = sampler(clips[extension, fps], start_time=1.0, end_time=2.0)
    first, stop = int(np.ceil(1.0 * float(fps))), int(np.ceil(2.0 * float(fps)))
    expected = [first + int((k + 0.5) * (stop - first) / 6) for k in range(6)]
    assert real_indices(sampled) == expected
    assert painted_indices(sampled) == expected


@pytest.mark.parametrize("fps", [25, NTSC], ids=["25fps", "29.97fps"])
@pytest.mark.parametrize("extension", ["mp4", "webm", "m2ts", "avi"])
def test_fps_strategy_takes_first_frame_of_each_second(clips, extension, fps):
    sampler = FrameSampler(num_frames=12, strategy="fps", frames_per_second=1)
    sampled = sampler(clips[extension, fps])
    whole_fps = int(fps)  # 29.97 -> 29, as CLIP4Clip
    expected = [second * whole_fps for second in range(CLIP_FRAMES // whole_fps + 1) if second * whole_fps < CLIP_FRAMES]
    assert real_indices(sampled) == expected
    assert painted_indices(sampled) == expected
    assert sampled.mask.tolist() == [1] * len(expected) + [0] * (12 - len(expected))


@pytest.mark.parametrize("extension", ["mp4", "webm", "avi", "3gp"])
def test_random_strategy_decodes_the_frames_it_reports(clips, extension):
    sampled = FrameSampler(num_frames=8, strategy="random", seed=3)(clips[extension, 25])
    assert painted_indices(sampled) == real_indices(sampled)


@pytest.mark.parametrize("extension", ["mp4", "webm", "mkv"])
def test_clip_shorter_than_num_frames_is_padded_and_masked(tmp_path, extension):
    path = write_video(tmp_path / f"short.{extension}", coded_frames(5), fps=NTSC)
    sampled = FrameSampler(num_frames=12)(path)
    assert sampled.mask.tolist() == [1] * 5 + [0] * 7
    assert sampled.frame_indices.tolist() == [0, 1, 2, 3, 4] + [-1] * 7
    assert painted_indices(sampled) == [0, 1, 2, 3, 4]
    assert (sampled.timestamps[5:] == -1).all()
    assert not sampled.frames[5:].any()
    assert sampled.frames[:5].any()


def test_seeking_decodes_only_the_needed_keyframe_groups(tmp_path):
    path = write_video(tmp_path / "long.mp4", coded_frames(300), fps=25, gop_size=10)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = probe_stream(container, stream, path, path.stat().st_size)
        decoder = KeyframeDecoder(container, stream, FrameRateTimeline(info), path)
        budget = decoder.packet_budget
        decoded = decoder.decode(np.array([5, 151, 295]))
        packets_read = budget - decoder.packet_budget
    assert sorted(decoded) == [5, 151, 295]
    assert [read_index(decoded[index][0]) for index in (5, 151, 295)] == [5, 151, 295]
    assert packets_read < 60, f"read {packets_read} packets of 300 for 3 frames"


def test_uniform_sampling_of_a_long_clip_with_sparse_keyframes(tmp_path):
    path = write_video(tmp_path / "long.mkv", coded_frames(260), fps=NTSC, gop_size=40)
    sampler = FrameSampler(num_frames=12)
    sampled = sampler(path)
    assert painted_indices(sampled) == real_indices(sampled) == sampler.sample_indices(FrameGrid(260, float(NTSC))).tolist()


# ---------------------------------------------------------------- pure index selection


def test_fps_strategy_matches_clip4clip_for_a_10_5_second_30fps_clip():
    indices = FrameSampler(num_frames=12, strategy="fps").sample_indices(FrameGrid(315, 30.0))
    assert indices.tolist() == [30 * second for second in range(11)]


def test_fps_strategy_uniform_slice_matches_linspace_example():
    # 21 seconds at 25 fps -> 21 one-per-second frames, sliced to 12 with np.linspace(0, 20, 12, dtype=int)
    indices = FrameSampler(num_frames=12, strategy="fps", slice_position="uniform").sample_indices(FrameGrid(525, 25.0))
    assert (indices // 25).tolist() == [0, 1, 3, 5, 7, 9, 10, 12, 14, 16, 18, 20]


def test_fps_strategy_head_and_tail_slices():
    head = FrameSampler(num_frames=4, strategy="fps", slice_position="head").sample_indices(FrameGrid(250, 25.0))
    tail = FrameSampler(num_frames=4, strategy="fps", slice_position="tail").sample_indices(FrameGrid(250, 25.0))
    assert head.tolist() == [0, 25, 50, 75]
    assert tail.tolist() == [150, 175, 200, 225]


def test_fps_strategy_truncates_ntsc_rate_and_honours_start_end():
    sampler = FrameSampler(num_frames=20, strategy="fps")
    assert sampler.sample_indices(FrameGrid(300, 29.97)).tolist() == [29 * second for second in range(11)]
    # seconds 2..5 inclusive, as CLIP4Clip's start/end loop
    assert sampler.sample_indices(FrameGrid(300, 29.97), start_time=2, end_time=5).tolist() == [58, 87, 116, 145]


def test_fps_strategy_with_two_frames_per_second():
    indices = FrameSampler(num_frames=12, strategy="fps", frames_per_second=2).sample_indices(FrameGrid(75, 25.0))
    assert indices.tolist() == [0, 12, 25, 37, 50, 62]


def test_random_strategy_is_reproducible_and_seed_dependent():
    first = FrameSampler(num_frames=12, strategy="random", seed=0).sample_indices(FrameGrid(1000, 25.0))
    again = FrameSampler(num_frames=12, strategy="random", seed=0).sample_indices(FrameGrid(1000, 25.0))
    other = FrameSampler(num_frames=12, strategy="random", seed=1).sample_indices(FrameGrid(1000, 25.0))
    assert first.tolist() == again.tolist()
    assert first.tolist() != other.tolist()
    segment_of = (first * 12) // 1000
    assert segment_of.tolist() == list(range(12)), "one frame per segment"
    sampler = FrameSampler(num_frames=12, strategy="random")
    with_rng = sampler.sample_indices(FrameGrid(1000, 25.0), rng=np.random.default_rng(5))
    assert with_rng.tolist() == sampler.sample_indices(FrameGrid(1000, 25.0), rng=np.random.default_rng(5)).tolist()


def test_random_strategy_on_a_file_with_rng_argument(clips):
    path = clips["mp4", 25]
    sampler = FrameSampler(num_frames=6, strategy="random")
    first = sampler(path, rng=np.random.default_rng(11))
    second = sampler(path, rng=np.random.default_rng(11))
    assert real_indices(first) == real_indices(second) == painted_indices(first)


def test_short_range_keeps_every_frame():
    assert FrameSampler(num_frames=12).sample_indices(FrameGrid(7, 25.0)).tolist() == list(range(7))
    assert FrameSampler(num_frames=12, strategy="random", seed=0).sample_indices(FrameGrid(7, 25.0)).tolist() == list(range(7))


def test_bad_times_raise():
    sampler = FrameSampler(num_frames=4)
    with pytest.raises(ValueError, match="past the end"):
        sampler.sample_indices(FrameGrid(50, 25.0), start_time=10.0)
    with pytest.raises(ValueError, match="end_time"):
        sampler.sample_indices(FrameGrid(50, 25.0), start_time=1.0, end_time=1.0)
    with pytest.raises(ValueError, match="start_time"):
        sampler.sample_indices(FrameGrid(50, 25.0), start_time=-1.0)


def test_settings_round_trip_and_validation():
    sampler = FrameSampler(num_frames=8, strategy="fps", frames_per_second=2, slice_position="tail", seed=4)
    restored = FrameSampler.from_dict(sampler.to_dict())
    assert restored.to_dict() == sampler.to_dict()
    with pytest.raises(ValueError, match="unknown"):
        FrameSampler.from_dict({"num_frame": 3})
    for bad in ({"num_frames": 0}, {"strategy": "dense"}, {"slice_position": "middle"},
                {"frames_per_second": 0.5}, {"backend": "gstreamer"}):
        with pytest.raises(ValueError):
            FrameSampler(**bad)


# ---------------------------------------------------------------- bad input


def _assert_decoding_error(path, reason_fragment: str, **call_arguments):
    with pytest.raises(VideoDecodingError) as caught:
        FrameSampler(num_frames=12)(path, **call_arguments)
    error = caught.value
    assert isinstance(error, UniTriMError) and isinstance(error, ValueError)
    assert str(path) in str(error) and error.path == str(path)
    assert reason_fragment in error.reason.lower(), error.reason


def test_missing_file(tmp_path):
    _assert_decoding_error(tmp_path / "nope.mp4", "does not exist")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    _assert_decoding_error(path, "empty")


def test_directory_instead_of_file(tmp_path):
    _assert_decoding_error(tmp_path, "not a regular file")


def test_text_file_renamed_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is a caption file, not a video\n" * 20)
    _assert_decoding_error(path, "not a readable media file")


def test_audio_only_file(tmp_path):
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for chunk in range(10):
            samples = np.sin(np.arange(1024) * 0.05 + chunk).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = chunk * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    _assert_decoding_error(path, "no video stream")


def _noisy_clip(path, num_frames=100):
    rng = np.random.default_rng(0)
    return write_video(path, rng.integers(0, 256, (num_frames, HEIGHT, WIDTH, 3), dtype=np.uint8), fps=25)


def test_mp4_cut_in_half(tmp_path):
    data = _noisy_clip(tmp_path / "whole.mp4").read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    _assert_decoding_error(path, "not a readable media file")


@pytest.mark.parametrize("extension", ["mkv", "webm", "avi"])
def test_streamable_container_cut_in_half(tmp_path, extension):
    data = _noisy_clip(tmp_path / f"whole.{extension}").read_bytes()
    path = tmp_path / f"half.{extension}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodingError) as caught:
        FrameSampler(num_frames=12)(path)
    assert str(path) in str(caught.value)


# AVI is left out: FFmpeg's AVI demuxer resynchronises past the garbage and hands over intact packets from elsewhere
# in the file under the requested timestamps, which no decoder-side check can see (a known limitation).
@pytest.mark.parametrize("extension", ["mp4", "mkv", "webm"])
def test_garbage_in_the_middle(tmp_path, extension):
    data = bytearray(_noisy_clip(tmp_path / f"whole.{extension}").read_bytes())
    middle, span = len(data) // 2, len(data) // 6
    data[middle - span : middle + span] = np.random.default_rng(1).integers(0, 256, 2 * span, dtype=np.uint8).tobytes()
    path = tmp_path / f"garbage.{extension}"
    path.write_bytes(bytes(data))
    with pytest.raises(VideoDecodingError) as caught:
        FrameSampler(num_frames=12)(path)
    assert str(path) in str(caught.value)


def test_start_time_past_the_end_names_the_file(clips):
    _assert_decoding_error(clips["mp4", 25], "past the end", start_time=60.0, end_time=70.0)


def test_error_is_picklable():
    import pickle

    error = pickle.loads(pickle.dumps(VideoDecodingError("/a/b.mp4", "file does not exist")))
    assert error.path == "/a/b.mp4" and error.reason == "file does not exist"


def test_fps_strategy_start_time_past_the_end_names_the_file_and_the_range(clips):
    path = clips["mp4", 25]  # 80 frames at 25 fps: 3.2 s
    with pytest.raises(VideoDecodingError) as caught:
        FrameSampler(12, "fps")(path, start_time=100, end_time=200)
    error = caught.value
    assert error.path == str(path) and "[100, 4] s" in error.reason and "3.20 s video" in error.reason


def test_default_end_time_bounds_a_call_without_times_and_round_trips(clips):
    path = clips["mp4", 25]  # 80 frames at 25 fps: seconds 0..3
    sampler = FrameSampler(12, "fps", default_end_time=1)
    sampled = sampler(path)
    assert sampled.frame_indices[sampled.mask == 1].tolist() == [0, 25]  # seconds 0 and 1 only
    assert FrameSampler(12, "fps")(path).frame_indices[:4].tolist() == [0, 25, 50, 75]
    assert sampler(path, end_time=2).frame_indices[sampled.mask == 1].tolist() == [0, 25]  # an explicit end wins
    assert sampler(path, end_time=2).mask.sum() == 3
    assert FrameSampler.from_dict(sampler.to_dict()).default_end_time == 1.0
    assert "default_end_time" not in FrameSampler(12, "fps").to_dict()
    with pytest.raises(ValueError, match="default_end_time"):
        FrameSampler(12, default_end_time=0)


def _explicit_clip4clip_times(first_second, last_second, frames_per_second, video_end):
    """Every CLIP4Clip candidate time before the end of the video, listed out (the reference, small inputs only)."""
    import math

    num_seconds = max(0, math.ceil(last_second + 1 - first_second))
    times = (first_second + np.arange(num_seconds)[:, None] + np.arange(frames_per_second)[None, :] / frames_per_second).ravel()
    return times[times < video_end - 1e-6]


@pytest.mark.parametrize("video_end, start_time, slice_position", [(7.3, None, "uniform"), (30.0, 2.5, "head"), (12.0, 3.0, "tail")])
def test_timed_fps_selection_equals_the_listed_candidates(video_end, start_time, slice_position):
    from unitrim_hf.media.frame_selection import FrameTimes, frames_shown_at, select_frames, slice_selection

    frame_times = np.sort(np.random.default_rng(0).uniform(0, video_end, 200))
    frame_times[0] = 0.0
    first = 0.0 if start_time is None else start_time
    expected_times = _explicit_clip4clip_times(first, np.ceil(video_end), 2, video_end)
    expected = frames_shown_at(frame_times, expected_times[slice_selection(len(expected_times), 12, slice_position)])
    chosen = select_frames(FrameTimes(frame_times, video_end), 12, "fps", 2, slice_position, start_time=start_time)
    np.testing.assert_array_equal(chosen, expected)


def test_timed_fps_selection_cost_does_not_grow_with_a_lying_end_time():
    from unitrim_hf.media.frame_selection import FrameTimes, select_frames

    frame_times = np.asarray([0.0, 0.5, 1.0, 4.0e11])  # one absurd timestamp: the stream claims to end 12,000 years later
    chosen = select_frames(FrameTimes(frame_times, 4.0e11 + 1.0), 12, "fps", 1, "uniform")
    assert len(chosen) == 12 and chosen[0] == 0 and chosen[-1] == 3


def test_variable_frame_rate_seek_targets_interpolate_between_neighbouring_frames():
    from unitrim_hf.media.video_decoding import StreamInfo, TimestampTimeline

    frame_pts = np.array([0, 512, 1536, 1600, 4096, 4100], dtype=np.int64)  # irregular, like a phone recording
    info = StreamInfo(num_frames=6, frame_count_is_declared=True, fps=12.0, start_pts=0, seconds_per_pts=1 / 12800,
                      variable_frame_rate=True, packets_counted=False)
    timeline = TimestampTimeline(info, frame_pts, last_duration_pts=512)
    for index in np.linspace(0, 5, 41):
        expected = int(np.floor(np.interp(index, np.arange(6), frame_pts)))
        assert timeline.seek_pts(float(index)) == expected, index
    assert timeline.seek_pts(5.0) == 4100
    assert timeline.seek_pts(-2) == 0 - 2 * 512 and timeline.seek_pts(6) == 4100 + 512  # median gap beyond the ends
