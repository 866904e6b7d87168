"""Media files as users bring them: variable frame rate, rotation, EXIF, 16-bit, lying headers, huge images, GIFs.

Every file is made here with PyAV or Pillow.
"""

from __future__ import annotations

import base64
import io
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from unitrim_hf import FrameSampler, UniTriMConfig, UniTriMProcessor, VideoDecodingError
from unitrim_hf.errors import ImageDecodingError, UniTriMError
from unitrim_hf.media.frame_selection import FrameGrid, FrameTimes
from unitrim_hf.media.image_loading import load_image_file
from unitrim_hf.search.thumbnails import decode_frame_at, thumbnail_png_base64
from unitrim_hf.media.video_writer import write_video

from media_files import (
    HEIGHT,
    WIDTH,
    coded_frames,
    marker_image,
    patch_avi_frame_count,
    patch_matroska_duration,
    patch_png_size,
    read_index,
    save_exif_rotated_jpeg,
    slow_after_50_pts,
)

VFR_FRAMES = 80
VFR_TIME_BASE = Fraction(1, 75)


def painted(sampled) -> list[int]:
    return [read_index(frame) for frame in sampled.frames[sampled.mask == 1]]


@pytest.fixture(scope="module")
def processor() -> UniTriMProcessor:
    return UniTriMProcessor.for_model_config(UniTriMConfig.from_preset("unitrim-tiny"), frame_sampler_config={"num_frames": 4})


# ---------------------------------------------------------------- variable frame rate


# The last frame lasts what the container says: its own 0.12 s in MP4, the track's default 0.04 s in Matroska.
@pytest.mark.parametrize("extension, last_frame_seconds", [("mp4", 0.12), ("mkv", 0.04)])
def test_variable_frame_rate_video_is_sampled_by_presentation_time(tmp_path, extension, last_frame_seconds):
    pts = slow_after_50_pts(VFR_FRAMES)
    path = write_video(tmp_path / f"vfr.{extension}", coded_frames(VFR_FRAMES), pts=pts, time_base=VFR_TIME_BASE, gop_size=10)
    frame_times = np.asarray(pts) / 75

    # "fps" (the benchmarks' default): the frame on screen at 0, 1, 2, ... s; after 2 s a frame lasts 0.12 s.
    sampled = FrameSampler(12, "fps")(path)
    expected = [0, 25, 50, 58, 66, 75]
    assert sampled.frame_indices[sampled.mask == 1].tolist() == expected
    assert painted(sampled) == expected
    np.testing.assert_allclose(sampled.timestamps[: len(expected)], frame_times[expected], atol=1e-3)

    # "uniform": the frames on screen at the centres of 12 equal time segments, not 12 evenly spaced frame numbers.
    sampled = FrameSampler(12, "uniform")(path)
    indices = sampled.frame_indices.tolist()
    assert painted(sampled) == indices and sampled.mask.sum() == 12
    end = frame_times[-1] + last_frame_seconds
    centres = (np.arange(12) + 0.5) * end / 12
    shown = [int(np.searchsorted(frame_times, centre + 1e-6, side="right") - 1) for centre in centres]
    assert indices == shown
    assert sum(index >= 50 for index in indices) >= 7, "the slow second part lasts 2/3 of the clip"
    np.testing.assert_allclose(sampled.timestamps, frame_times[indices], atol=1e-3)


def test_variable_frame_rate_clip_bounds_are_times(tmp_path):
    pts = slow_after_50_pts(VFR_FRAMES)
    path = write_video(tmp_path / "vfr.mp4", coded_frames(VFR_FRAMES), pts=pts, time_base=VFR_TIME_BASE, gop_size=10)
    sampled = FrameSampler(4)(path, start_time=3.0, end_time=4.0)
    indices = sampled.frame_indices[sampled.mask == 1].tolist()
    times = np.asarray(pts)[indices] / 75
    assert painted(sampled) == indices
    assert ((times >= 3.0 - 1e-6) & (times < 4.0)).all()


def test_variable_frame_rate_random_sampling_decodes_the_frames_it_reports(tmp_path):
    pts = slow_after_50_pts(VFR_FRAMES)
    path = write_video(tmp_path / "vfr.mp4", coded_frames(VFR_FRAMES), pts=pts, time_base=VFR_TIME_BASE, gop_size=10)
    sampled = FrameSampler(6, "random", seed=0)(path)
    assert painted(sampled) == sampled.frame_indices.tolist() and sampled.mask.sum() == 6


def test_time_based_choice_weights_frames_by_how_long_they_are_shown():
    frame_times = np.asarray([0.0, 0.1, 0.2, 5.0])  # the third frame is shown from 0.2 s to 5 s
    sampler = FrameSampler(4)
    assert sampler.sample_indices(FrameTimes(frame_times, 5.1)).tolist() == [0, 1, 2, 3]
    assert FrameSampler(3).sample_indices(FrameTimes(frame_times, 5.1)).tolist() == [2, 2, 2]
    assert sampler.sample_indices(FrameTimes(frame_times, 5.1), start_time=1.0, end_time=2.0).tolist() == [2]
    assert FrameSampler(12, "fps").sample_indices(FrameTimes(frame_times, 5.1)).tolist() == [0, 2, 2, 2, 2, 3]
    with pytest.raises(ValueError, match="past the end"):
        sampler.sample_indices(FrameTimes(frame_times, 5.1), start_time=6.0)


def test_constant_rate_header_with_a_long_hole_in_the_timestamps_is_an_error(tmp_path):
    # 25 fps declared (Matroska's default duration), but no frame between 1 s and 3 s: data is missing.
    pts = [index * 40 if index < 25 else 3000 + (index - 25) * 40 for index in range(50)]
    path = write_video(tmp_path / "hole.mkv", coded_frames(50), pts=pts, time_base=Fraction(1, 1000), gop_size=10)
    with pytest.raises(VideoDecodingError, match=r"no frame between 0.960 s and 3.000 s") as caught:
        FrameSampler(12)(path)
    assert caught.value.path == str(path)


# ---------------------------------------------------------------- rotation


def test_display_matrix_rotation_is_applied_to_frames_and_thumbnails(tmp_path):
    path = write_video(tmp_path / "phone.mp4", coded_frames(20), fps=25, gop_size=10, display_rotation=-90)
    sampled = FrameSampler(4)(path)
    assert sampled.frames.shape == (4, WIDTH, HEIGHT, 3), "portrait, as a player shows it"
    upright = [read_index(np.rot90(frame, k=1)) for frame in sampled.frames]  # undo the clockwise turn
    assert upright == sampled.frame_indices.tolist()
    thumbnail = decode_frame_at(path, 0.2)
    assert thumbnail.shape == (WIDTH, HEIGHT, 3) and read_index(np.rot90(thumbnail, k=1)) == 5


def test_exif_orientation_6_jpeg_is_rotated_as_shown(tmp_path, processor):
    path = save_exif_rotated_jpeg(tmp_path / "photo.jpg", marker_image())
    image = load_image_file(path)
    assert image.shape == (WIDTH, HEIGHT, 3)
    assert image[:6, -6:].mean() > 200 and image[:6, :6].mean() < 50, "the top-left marker turns to the top right"
    expected = processor(images=[np.ascontiguousarray(np.rot90(marker_image(), k=-1))])["pixel_values"]
    assert (processor(images=str(path))["pixel_values"] - expected).abs().max() < 0.2  # JPEG loss only


def test_16_bit_grayscale_png_keeps_its_grey_levels(tmp_path):
    levels = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (48, 1))
    path = tmp_path / "scan.png"
    Image.fromarray(levels).save(path)
    assert Image.open(path).mode.startswith("I")
    image = load_image_file(path)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[..., 0], np.round(levels / 257).astype(np.uint8))
    assert (image == 255).mean() < 0.05


# ---------------------------------------------------------------- headers that lie


def test_matroska_claiming_a_huge_duration_fails_fast_naming_the_file(tmp_path):
    path = patch_matroska_duration(write_video(tmp_path / "lying.mkv", coded_frames(50), fps=25), 4e11)
    tracemalloc.start()
    try:
        with pytest.raises(VideoDecodingError) as caught:
            FrameSampler(12, "fps")(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.path == str(path) and "header" in caught.value.reason
    assert peak < 50 * 2**20


def test_matroska_claiming_a_plausible_but_wrong_duration_fails_naming_the_stream_end(tmp_path):
    path = patch_matroska_duration(write_video(tmp_path / "lying.mkv", coded_frames(50), fps=25), 60_000)
    for strategy in ("fps", "uniform"):
        with pytest.raises(VideoDecodingError) as caught:
            FrameSampler(12, strategy)(path)
        assert caught.value.path == str(path) and "ends after" in caught.value.reason


def test_avi_claiming_a_billion_frames_fails_fast_naming_the_file(tmp_path):
    path = patch_avi_frame_count(write_video(tmp_path / "lying.avi", coded_frames(50), fps=25), 10**9)
    with pytest.raises(VideoDecodingError) as caught:
        FrameSampler(12, "fps")(path)
    assert caught.value.path == str(path) and "1000000000 frames" in caught.value.reason


def test_frame_choice_cost_does_not_grow_with_the_claimed_length():
    tracemalloc.start()
    try:
        indices = FrameSampler(12, "fps").sample_indices(FrameGrid(10**12, 25.0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(indices) == 12 and indices[0] == 0 and indices[-1] == 10**12 - 25
    assert peak < 2**20


# ---------------------------------------------------------------- huge images


def _small_png(path):
    Image.fromarray(marker_image()).save(path)
    return path


def test_png_over_the_pixel_limit_is_refused_before_decoding(tmp_path, processor):
    path = patch_png_size(_small_png(tmp_path / "poster.png"), 12500, 12500)
    with pytest.raises(ImageDecodingError) as caught:
        processor(images=str(path))
    assert caught.value.path == str(path) and "over the limit of 50000000" in caught.value.reason
    with pytest.raises(ImageDecodingError, match="over the limit of 1000"):
        load_image_file(_small_png(tmp_path / "small.png"), max_pixels=1000)
    assert load_image_file(tmp_path / "small.png", max_pixels=None).shape == (48, 64, 3)


def test_large_jpeg_is_decoded_at_reduced_size_to_fit_the_limit(tmp_path):
    path = tmp_path / "large.jpg"
    Image.fromarray(np.full((300, 400, 3), 90, dtype=np.uint8)).save(path)
    assert load_image_file(path).shape == (300, 400, 3)
    assert load_image_file(path, max_pixels=40_000).shape == (150, 200, 3)
    assert load_image_file(path, max_pixels=2_000).shape == (38, 50, 3)
    with pytest.raises(ImageDecodingError, match="over the limit"):
        load_image_file(path, max_pixels=100)


def test_decompression_bomb_is_the_library_error_naming_the_file(tmp_path, processor):
    path = patch_png_size(_small_png(tmp_path / "bomb.png"), 30000, 30000)
    for max_pixels in (None, 10**10):
        with pytest.raises(ImageDecodingError) as caught:
            load_image_file(path, max_pixels=max_pixels)
        assert caught.value.path == str(path) and "decompression bomb" in caught.value.reason
    with pytest.raises(UniTriMError, match="bomb.png"):
        processor(images=[str(path)])


# ---------------------------------------------------------------- GIFs and stills given as videos


def _animated_gif(path, durations_ms):
    frames = [Image.fromarray(frame) for frame in coded_frames(len(durations_ms))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations_ms, loop=0)
    return path


def test_animated_gif_is_a_video_with_its_frame_durations(tmp_path, processor):
    path = _animated_gif(tmp_path / "reaction.gif", [200, 200, 400, 200])
    sampled = FrameSampler(8)(path)
    assert sampled.mask.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert painted(sampled) == [0, 1, 2, 3]
    np.testing.assert_allclose(sampled.timestamps[:4], [0.0, 0.2, 0.4, 0.8])
    # Two frames: the ones on screen at 0.25 s and 0.75 s (the third frame is shown from 0.4 to 0.8 s).
    assert painted(FrameSampler(2)(path)) == [1, 2]
    assert processor(videos=str(path))["video_mask"].tolist() == [[1, 1, 1, 1]]


@pytest.mark.parametrize("extension", ["png", "jpg"])
def test_still_image_given_as_a_video_is_a_clear_error(tmp_path, processor, extension):
    path = tmp_path / f"photo.{extension}"
    Image.fromarray(marker_image()).save(path)
    with pytest.raises(VideoDecodingError) as caught:
        processor(videos=str(path))
    assert caught.value.path == str(path) and "still image" in caught.value.reason
    # The documented way to use a still as a one-frame video.
    one_frame = processor(videos=load_image_file(path)[None])
    assert one_frame["video_mask"].tolist() == [[1, 0, 0, 0]]


# ---------------------------------------------------------------- thumbnails of MPEG-TS search results


@pytest.mark.parametrize("gop_size", [None, 10])
def test_mpeg_ts_thumbnail_shows_the_frame_at_the_timestamp(tmp_path, gop_size):
    path = write_video(tmp_path / "camcorder.m2ts", coded_frames(50), fps=25, gop_size=gop_size)
    assert read_index(decode_frame_at(path, 0.360)) == 9
    assert read_index(decode_frame_at(path, 0.0)) == 0
    encoded = thumbnail_png_base64(path, "video", 0.360)
    assert Image.open(io.BytesIO(base64.b64decode(encoded))).size == (WIDTH, HEIGHT)


def test_video_frames_over_the_pixel_limit_are_refused_before_decoding(tmp_path, monkeypatch) -> None:
    """Videos have a per-frame pixel limit as images do (an 8192 x 8192 MKV took 8.1 GB in the processor)."""
    from unitrim_hf.media import video_decoding
    from unitrim_hf.media.video_writer import write_video

    path = tmp_path / "wide.mp4"
    write_video(path, np.zeros((4, 48, 64, 3), dtype=np.uint8))
    assert FrameSampler(num_frames=2)(path).frames.shape[1:3] == (48, 64)  # under the default limit
    monkeypatch.setattr(video_decoding, "MAX_VIDEO_FRAME_PIXELS", 64 * 48 - 1)
    decoded = []
    monkeypatch.setattr(video_decoding.KeyframeDecoder, "decode", lambda self, indices: decoded.append(indices))
    with pytest.raises(VideoDecodingError, match=r"64x48 = 3072 pixels are over the limit of 3071"):
        FrameSampler(num_frames=2)(path)
    assert decoded == []  # refused from the header, before any frame is decoded
    processor = UniTriMProcessor.for_model_config(UniTriMConfig.from_preset("unitrim-tiny"))
    with pytest.raises(VideoDecodingError, match="wide.mp4"):
        processor(videos=[str(path)])


def test_a_fifo_given_as_an_image_is_refused_without_blocking(tmp_path) -> None:
    """Opening a named pipe for reading blocks until a writer appears: the loader checks the opened descriptor."""
    import os
    import threading

    from unitrim_hf.media.image_loading import load_image_file

    pipe = tmp_path / "photo.jpg"
    os.mkfifo(pipe)
    outcome = []

    def load() -> None:
        try:
            load_image_file(pipe)
        except ImageDecodingError as error:
            outcome.append(str(error))

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock the thread of the old code, then fail
        with open(pipe, "wb"):
            pass
        pytest.fail("load_image_file blocked on a FIFO")
    assert outcome and "photo.jpg" in outcome[0] and "not a regular file (a FIFO)" in outcome[0]
    processor = UniTriMProcessor.for_model_config(UniTriMConfig.from_preset("unitrim-tiny"))
    with pytest.raises(ImageDecodingError, match="FIFO"):
        processor(images=[str(pipe)])


def test_a_video_whose_codec_id_is_damaged_is_a_decoding_error(tmp_path) -> None:
    """One changed byte of an MKV's CodecID leaves the stream without a decoder (PyAV's codec context is None)."""
    from unitrim_hf.media.video_writer import write_video

    path = tmp_path / "clip.mkv"
    write_video(path, np.zeros((6, 48, 64, 3), dtype=np.uint8))
    data = path.read_bytes()
    codec = data.find(b"V_MPEG4")
    assert codec > 0
    path.write_bytes(data[: codec + 2] + b"X" + data[codec + 3 :])
    with pytest.raises(VideoDecodingError, match=r"clip.mkv.*codec is unknown"):
        FrameSampler(num_frames=2)(path)


@pytest.mark.parametrize("extension", ["mp4", "mkv", "avi", "webm", "mov"])
def test_one_byte_changes_give_frames_or_a_decoding_error(tmp_path, extension) -> None:
    """A bounded media fuzz: 60 single-byte changes of a small file of each container; each decodes or raises
    the library's VideoDecodingError, never another exception (1,000 such changes, measured: none)."""
    from unitrim_hf.media.video_writer import write_video

    rng = np.random.default_rng(7)
    original = tmp_path / f"clip.{extension}"
    write_video(original, rng.integers(0, 255, (10, 32, 48, 3), dtype=np.uint8))
    data = original.read_bytes()
    sampler = FrameSampler(num_frames=4)
    unexpected = []
    for position, value in zip(rng.integers(len(data), size=60), rng.integers(256, size=60)):
        mutated = tmp_path / f"mutated.{extension}"
        mutated.write_bytes(data[:position] + bytes([int(value)]) + data[position + 1 :])
        try:
            sampled = sampler(mutated)
            assert sampled.frames.shape[-1] == 3
        except VideoDecodingError:
            pass
        except Exception as error:  # noqa: BLE001 - what the test looks for
            unexpected.append(f"byte {position} -> {value}: {type(error).__name__}: {error}")
    assert not unexpected, unexpected[:5]
