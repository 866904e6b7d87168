"""write_video: containers, codecs, exact fractional frame rates, input validation."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from unitrim_hf.media.video_writer import default_codec, write_video


def gradient_frames(num_frames: int, height: int = 48, width: int = 64) -> np.ndarray:
    levels = np.linspace(16, 235, num_frames).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3)).copy()


@pytest.mark.parametrize(
    "extension, codec_name",
    [("mp4", "h264"), ("mov", "h264"), ("mkv", "h264"), ("m2ts", "h264"), ("avi", "mpeg4"), ("webm", "vp8"),
     ("3gp", "mpeg4")],
)
@pytest.mark.parametrize("fps", [25, Fraction(30000, 1001), 30000 / 1001], ids=["25", "ntsc-fraction", "ntsc-float"])
def test_written_clip_reads_back(tmp_path, extension, codec_name, fps):
    frames = gradient_frames(20)
    path = write_video(tmp_path / f"clip.{extension}", frames, fps=fps)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == codec_name
        assert stream.average_rate == Fraction(fps).limit_denominator(10000)
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(decoded) == 20
    assert decoded[0].shape == (48, 64, 3)
    means = [frame.mean() for frame in decoded]
    np.testing.assert_allclose(means, frames.reshape(20, -1).mean(axis=1), atol=4)


def test_3gp_uses_h263_at_a_legal_size(tmp_path):
    path = write_video(tmp_path / "clip.3gp", gradient_frames(5, 96, 128), fps=25)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h263"
    assert default_codec("x.3gp", 64, 48) == "mpeg4"


def test_explicit_codec_and_gop_size(tmp_path):
    path = write_video(tmp_path / "clip.mkv", gradient_frames(30), fps=25, codec="mpeg4", gop_size=5)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "mpeg4"
        keyframes = [packet.is_keyframe for packet in container.demux(stream) if packet.size]
    assert sum(keyframes) >= 6


@pytest.mark.parametrize(
    "frames, message",
    [
        (np.zeros((3, 48, 64), np.uint8), "shape"),
        (np.zeros((3, 48, 64, 4), np.uint8), "shape"),
        (np.zeros((3, 48, 64, 3), np.float32), "uint8"),
        (np.zeros((0, 48, 64, 3), np.uint8), "empty"),
        (np.zeros((3, 47, 64, 3), np.uint8), "even"),
    ],
)
def test_bad_frames_raise(tmp_path, frames, message):
    with pytest.raises(ValueError, match=message):
        write_video(tmp_path / "bad.mp4", frames)


def test_unknown_extension_and_bad_fps(tmp_path):
    with pytest.raises(ValueError, match="extension"):
        write_video(tmp_path / "clip.xyz", gradient_frames(2))
    with pytest.raises(ValueError, match="fps"):
        write_video(tmp_path / "clip.mp4", gradient_frames(2), fps=0)
