"""Decoding that skips the frames no other frame references gives the frames of decoding every frame.

Clips are libx264 with B-frames (some of them references, in a B-pyramid), one with a single keyframe (long GOP)
and one with a keyframe every 8 frames (short GOP); the truth is PyAV decoding every frame of the file.
"""

from __future__ import annotations

from dataclasses import replace

import av
import numpy as np
import pytest
from av.video.frame import PictureType

from unitrim_hf.errors import VideoDecodingError
from unitrim_hf.media.frame_sampling import FrameSampler
from unitrim_hf.media.video_decoding import FrameRateTimeline, KeyframeDecoder, probe_stream
from unitrim_hf.media.video_writer import write_video

NUM_FRAMES = 120
HEIGHT, WIDTH = 48, 64


def moving_frames(num_frames: int) -> np.ndarray:
    """Gradients drifting by under a level per frame over fixed noise, without wrap-around (which x264 would take
    for scene cuts): the encoder makes P-frames, B-frames and B-pyramid references."""
    rows, columns = np.mgrid[:HEIGHT, :WIDTH]
    noise = np.random.default_rng(0).integers(0, 24, (HEIGHT, WIDTH))
    frames = np.empty((num_frames, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for index in range(num_frames):
        frames[index, ..., 0] = 40 + columns + index
        frames[index, ..., 1] = 30 + rows * 2 + index // 2
        frames[index, ..., 2] = 20 + rows + columns // 2 + noise + index // 3
    return frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gop_clips")
    frames = moving_frames(NUM_FRAMES)
    return {
        "long_gop": write_video(folder / "long_gop.mp4", frames, fps=25, gop_size=250),
        "short_gop": write_video(folder / "short_gop.mp4", frames, fps=25, gop_size=8),
    }


def every_frame(path) -> tuple[np.ndarray, np.ndarray]:
    """(num_frames, H, W, 3) RGB of every frame in presentation order, and their timestamps in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = sorted(((frame.pts, frame.to_ndarray(format="rgb24")) for frame in container.decode(stream)),
                         key=lambda item: item[0])
        seconds_per_pts = float(stream.time_base)
    return np.stack([image for _, image in decoded]), np.array([pts * seconds_per_pts for pts, _ in decoded])


def open_decoder(path, skip: bool, num_frames: int | None = None):
    container = av.open(str(path))
    stream = container.streams.video[0]
    info = probe_stream(container, stream, path, path.stat().st_size)
    if num_frames is not None:
        info = replace(info, num_frames=num_frames)
    return container, KeyframeDecoder(container, stream, FrameRateTimeline(info), path, skip_unused_frames=skip)


def test_clips_have_referenced_and_unreferenced_b_frames(clips):
    for path in clips.values():
        with av.open(str(path)) as container:
            kinds = [PictureType(frame.pict_type).name for frame in container.decode(video=0)]
        with av.open(str(path)) as container:
            container.streams.video[0].codec_context.skip_frame = "NONREF"
            referenced = [PictureType(frame.pict_type).name for frame in container.decode(video=0)]
        if path.stem == "long_gop":
            assert kinds.count("I") == 1
        else:
            assert kinds.count("I") >= NUM_FRAMES // 8
        assert "B" in referenced and len(referenced) < 0.8 * len(kinds)


@pytest.mark.parametrize("gop", ["long_gop", "short_gop"])
@pytest.mark.parametrize("strategy", ["uniform", "fps", "random"])
def test_sampled_frames_equal_those_of_decoding_every_frame(clips, gop, strategy):
    path = clips[gop]
    images, seconds = every_frame(path)
    sampled = FrameSampler(12, strategy=strategy, frames_per_second=3, seed=3)(path)
    indices = sampled.frame_indices[sampled.mask == 1]
    assert len(indices) == 12
    np.testing.assert_array_equal(sampled.frames, images[indices])
    np.testing.assert_allclose(sampled.timestamps, seconds[indices])


@pytest.mark.parametrize("gop", ["long_gop", "short_gop"])
def test_skipping_decodes_fewer_frames_and_the_same_pixels(clips, gop):
    path = clips[gop]
    targets = np.array([3, 20, 41, 77, 78, 119])
    results = {}
    for skip in (True, False):
        container, decoder = open_decoder(path, skip)
        with container:
            results[skip] = decoder.decode(targets), decoder.frames_decoded
    (skipped, skipped_count), (full, full_count) = results[True], results[False]
    assert sorted(skipped) == sorted(full) == targets.tolist()
    for index in targets.tolist():
        np.testing.assert_array_equal(skipped[index][0], full[index][0])
        assert skipped[index][1] == full[index][1]
    assert skipped_count < 0.8 * full_count, (skipped_count, full_count)


def test_a_stream_shorter_than_declared_counts_the_same_frames_with_skipping(clips):
    """Targets past the end: the frames that exist are counted as when every frame is decoded (the skipped frames
    at the end of the stream are decoded again to count them)."""
    path = clips["long_gop"]
    counts, frames_decoded = {}, {}
    for skip in (True, False):
        container, decoder = open_decoder(path, skip, num_frames=NUM_FRAMES + 3)
        with container:
            decoded = decoder.decode(np.array([50, NUM_FRAMES + 1]))
            counts[skip], frames_decoded[skip] = decoder.decodable_frame_count, decoder.frames_decoded
        assert sorted(decoded) == [50]
    assert counts[True] == counts[False] == NUM_FRAMES
    # x264 ends a stream on a referenced frame, so the count would agree without the second pass; a stream that
    # ends on unreferenced frames (other encoders) would not: the second pass must run.
    assert frames_decoded[True] > frames_decoded[False] == NUM_FRAMES


def test_clip_shorter_than_num_frames_keeps_every_frame(tmp_path):
    path = write_video(tmp_path / "short.mp4", moving_frames(7), fps=25)
    images, seconds = every_frame(path)
    sampled = FrameSampler(12)(path)
    assert sampled.mask.tolist() == [1] * 7 + [0] * 5
    assert sampled.frame_indices.tolist() == list(range(7)) + [-1] * 5
    np.testing.assert_array_equal(sampled.frames[:7], images)
    np.testing.assert_allclose(sampled.timestamps[:7], seconds)


def test_corrupt_long_gop_file_names_the_file(clips, tmp_path):
    data = bytearray(clips["long_gop"].read_bytes())
    middle, span = len(data) // 2, len(data) // 5
    data[middle - span : middle + span] = np.random.default_rng(1).integers(0, 256, 2 * span, dtype=np.uint8).tobytes()
    path = tmp_path / "garbage.mp4"
    path.write_bytes(bytes(data))
    with pytest.raises(VideoDecodingError) as caught:
        FrameSampler(12)(path)
    assert str(path) in str(caught.value)
