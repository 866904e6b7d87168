"""Decode a video file into a fixed number of RGB frames (uniform, CLIP4Clip-fps, or random segment sampling).

[`FrameSampler`] joins the choice of frames (`unitrim_hf.media.frame_selection`, pure functions) with PyAV
decoding (`unitrim_hf.media.video_decoding`). Constant-frame-rate streams are sampled on their frame-rate grid:
frame `i` is shown at `i / fps` seconds after the stream start, and only the keyframe groups that contain the
requested frames are decoded, without the frames of those groups that no other frame references (unless requested):
the frames are those of decoding every frame. Variable-frame-rate streams (average and nominal rates differ, or decoded timestamps
skip grid positions) are sampled by time on the frames' own timestamps, listed by one demux pass.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from ..errors import VideoDecodingError
from .frame_selection import SLICE_POSITIONS, STRATEGIES, FrameAxis, select_frames
from .video_decoding import (
    FrameRateTimeline,
    KeyframeDecoder,
    StreamInfo,
    TimestampTimeline,
    open_video,
    probe_stream,
    scan_timestamps,
)

BACKENDS = ("pyav",)
# How far the decodable frame count may fall short of the container's declared count before the file is treated as
# truncated (declared counts derived from the duration are estimates, off by a frame or two).
MIN_FRAME_COUNT_TOLERANCE = 3
RELATIVE_FRAME_COUNT_TOLERANCE = 0.05
# Longest pause between the timestamps of a stream whose header declares a constant frame rate that is taken as a
# variable frame rate rather than as missing data.
MAX_UNDECLARED_GAP_SECONDS = 1.0


class SampledFrames(NamedTuple):
    """Frames sampled from one video, padded to `num_frames`.

    Attributes:
        frames: (num_frames, height, width, 3) uint8 RGB as a player shows them (display rotation applied), zero
            after the last real frame.
        mask: (num_frames,) int64, 1 for real frames.
        frame_indices: (num_frames,) int64 index of each frame in presentation order, -1 for padding. A frame shown
            long enough to cover several sampling times of a variable-frame-rate video appears once per time.
        timestamps: (num_frames,) float64 presentation time in seconds from the stream start, -1 for padding.
    """

    frames: np.ndarray
    mask: np.ndarray
    frame_indices: np.ndarray
    timestamps: np.ndarray


class FrameSampler:
    """Samples `num_frames` RGB frames from a video file, as a player shows them.

    Constant-frame-rate video is sampled on its frame grid (frame numbers, exactly as CLIP4Clip); variable-frame-rate
    video (and animated GIFs) by presentation time. Frames are rotated by the stream's display matrix. A still
    image, a file with no video stream, a truncated or corrupt file and a header that claims more frames than the
    file can hold raise [`VideoDecodingError`] (docs/datasets.md, "Bad input").

    Args:
        num_frames: T, the number of frame slots returned (real frames first, then zero padding).
        strategy: "uniform" (centres of T equal segments of the clip), "fps" (CLIP4Clip: `frames_per_second` frames
            per second of video using `int(video_fps)`, then sliced to T), or "random" (one random frame in each of
            T equal segments; for training).
        frames_per_second: frames taken per second by the "fps" strategy; a whole number >= 1, as in CLIP4Clip.
        slice_position: how the "fps" strategy keeps T of more frames: "head", "tail" or "uniform"
            (`np.linspace(0, n - 1, T, dtype=int)`).
        seed: seed of the generator used by the "random" strategy when no `rng` is given per call.
        backend: decoding library; "pyav".
        default_end_time: `end_time` (seconds) used when a call gives none; None: the end of the video.
            CLIP4Clip reads DiDeMo videos from 0 to 31 s (at most 32 frames at 1 fps): `default_end_time=31`.
    """

    def __init__(
        self,
        num_frames: int = 12,
        strategy: str = "uniform",
        frames_per_second: float = 1.0,
        slice_position: str = "uniform",
        seed: int | None = None,
        backend: str = "pyav",
        default_end_time: float | None = None,
    ):
        if not isinstance(num_frames, (int, np.integer)) or isinstance(num_frames, bool) or num_frames < 1:
            raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        if slice_position not in SLICE_POSITIONS:
            raise ValueError(f"slice_position must be one of {SLICE_POSITIONS}, got {slice_position!r}")
        if not (float(frames_per_second) >= 1 and float(frames_per_second).is_integer()):
            raise ValueError(
                f"frames_per_second must be a whole number >= 1 (CLIP4Clip's feature_framerate), got {frames_per_second!r}"
            )
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.num_frames = int(num_frames)
        self.strategy = strategy
        self.frames_per_second = float(frames_per_second)
        self.slice_position = slice_position
        self.seed = seed
        self.backend = backend
        if default_end_time is not None and not float(default_end_time) > 0:
            raise ValueError(f"default_end_time must be a positive number of seconds, got {default_end_time!r}")
        self.default_end_time = None if default_end_time is None else float(default_end_time)
        self._rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------ settings
    def to_dict(self) -> dict:
        return {
            "num_frames": self.num_frames,
            "strategy": self.strategy,
            "frames_per_second": self.frames_per_second,
            "slice_position": self.slice_position,
            "seed": self.seed,
            "backend": self.backend,
            # Only when set, so that the settings (and frame caches) of samplers without it are unchanged.
            **({"default_end_time": self.default_end_time} if self.default_end_time is not None else {}),
        }

    @classmethod
    def from_dict(cls, settings: dict) -> "FrameSampler":
        unknown = set(settings) - set(cls().to_dict()) - {"default_end_time"}
        if unknown:
            raise ValueError(f"unknown FrameSampler settings: {sorted(unknown)}")
        return cls(**settings)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.to_dict().items())
        return f"{type(self).__name__}({arguments})"

    # ------------------------------------------------------------------ frame selection (pure)
    def sample_indices(
        self,
        frames: FrameAxis,
        start_time: float | None = None,
        end_time: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Indices of the frames to decode, sorted, at most `num_frames` of them.

        Args:
            frames: the video's frames: a `FrameGrid` (constant frame rate: frame numbers, exactly as CLIP4Clip) or
                a `FrameTimes` (variable frame rate: chosen by presentation time, so a frame shown for longer is
                proportionally more likely to be taken).
            start_time, end_time: optional clip bounds in seconds from the stream start. "uniform"/"random" use the
                frames shown in [start_time, end_time); "fps" follows CLIP4Clip (seconds start..end inclusive).
            rng: generator for the "random" strategy (default: the sampler's own, seeded by `seed`).

        Returns:
            (num_selected,) int64 array, num_selected <= num_frames. The cost is bounded by `num_frames`, whatever
            the number of frames of the video (or, for `FrameTimes`, by the length of its `frame_times`).
        """
        return select_frames(
            frames, self.num_frames, self.strategy, int(self.frames_per_second), self.slice_position, start_time,
            end_time, rng if rng is not None else self._rng,
        )

    def _select(self, timeline, start_time, end_time, rng, path) -> np.ndarray:
        try:
            return self.sample_indices(timeline.frame_axis(), start_time, end_time, rng)
        except ValueError as error:
            raise VideoDecodingError(path, str(error)) from error

    # ------------------------------------------------------------------ decoding
    def __call__(
        self,
        path: str | os.PathLike,
        start_time: float | None = None,
        end_time: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> SampledFrames:
        """Decode the sampled frames of `path`, as a player shows them.

        Raises:
            VideoDecodingError: the file is missing, empty, a still image, not a video, truncated or corrupt, its
                header claims more frames than the file can hold, or `start_time` / `end_time` select no frame.
        """
        import av

        if end_time is None and self.default_end_time is not None and (start_time is None or start_time < self.default_end_time):
            end_time = self.default_end_time
        container, stream, file_size = open_video(path)
        try:
            info = probe_stream(container, stream, path, file_size)
            if info.variable_frame_rate:
                timeline = scan_timestamps(container, stream, info, path, rewind=info.packets_counted)
            else:
                timeline = FrameRateTimeline(info)
            return self._sample_timeline(container, stream, timeline, path, start_time, end_time, rng)
        except av.error.FFmpegError as error:
            raise VideoDecodingError(path, f"corrupt data: decoder error ({error})") from error
        finally:
            container.close()

    def _sample_timeline(self, container, stream, timeline, path, start_time, end_time, rng) -> SampledFrames:
        indices = self._select(timeline, start_time, end_time, rng, path)
        decoder = KeyframeDecoder(container, stream, timeline, path)
        decoded = decoder.decode(indices)
        missing = [index for index in indices.tolist() if index not in decoded]
        if not missing:
            return self._pack(indices, decoded)
        if isinstance(timeline, TimestampTimeline):
            raise VideoDecodingError(path, f"frames {missing[:5]} could not be decoded")
        if decoder.skipped_targets:
            # Decoded timestamps jump over frame-rate grid positions: a variable frame rate the header did not
            # reveal. Sample again by time on the frames' own timestamps.
            timeline = scan_timestamps(container, stream, timeline.info, path, rewind=True)
            _check_no_hole(timeline, path)
            return self._sample_timeline(container, stream, timeline, path, start_time, end_time, rng)
        decodable = decoder.decodable_frame_count
        if decodable is None or decodable == 0:
            raise VideoDecodingError(path, f"frames {missing[:5]} could not be decoded")
        shortfall = timeline.num_frames - decodable
        tolerance = max(MIN_FRAME_COUNT_TOLERANCE, int(RELATIVE_FRAME_COUNT_TOLERANCE * timeline.num_frames))
        if shortfall > tolerance:
            raise VideoDecodingError(
                path,
                f"truncated or corrupt, or a wrong header: the header declares about {timeline.num_frames} frames "
                f"({timeline.num_frames / timeline.info.fps:.6g} s) but the stream ends after {decodable}",
            )
        # The declared count was a slight overestimate: sample again from the frames that exist.
        indices = self._select(FrameRateTimeline(_with_frame_count(timeline.info, decodable)), start_time, end_time, rng, path)
        decoded.update(decoder.decode(np.asarray([i for i in indices.tolist() if i not in decoded])))
        missing = [index for index in indices.tolist() if index not in decoded]
        if missing:
            raise VideoDecodingError(path, f"frames {missing[:5]} could not be decoded")
        return self._pack(indices, decoded)

    def _pack(self, indices: np.ndarray, decoded: dict[int, tuple[np.ndarray, float]]) -> SampledFrames:
        height, width, _ = decoded[int(indices[0])][0].shape
        frames = np.zeros((self.num_frames, height, width, 3), dtype=np.uint8)
        mask = np.zeros(self.num_frames, dtype=np.int64)
        frame_indices = np.full(self.num_frames, -1, dtype=np.int64)
        timestamps = np.full(self.num_frames, -1.0, dtype=np.float64)
        for slot, index in enumerate(indices.tolist()):
            image, timestamp = decoded[index]
            frames[slot] = image
            mask[slot] = 1
            frame_indices[slot] = index
            timestamps[slot] = timestamp
        return SampledFrames(frames, mask, frame_indices, timestamps)


def _check_no_hole(timeline: TimestampTimeline, path) -> None:
    """A header that declares a constant frame rate and timestamps that then pause for more than
    `MAX_UNDECLARED_GAP_SECONDS`: data is missing (a damaged file), not a variable frame rate."""
    gaps = np.diff(timeline.frame_times)
    if len(gaps) and gaps.max() > MAX_UNDECLARED_GAP_SECONDS:
        position = int(gaps.argmax())
        raise VideoDecodingError(
            path,
            f"truncated or corrupt: no frame between {timeline.frame_times[position]:.3f} s and "
            f"{timeline.frame_times[position + 1]:.3f} s of a stream whose header declares {timeline.info.fps:g} fps",
        )


def _with_frame_count(info: StreamInfo, num_frames: int) -> StreamInfo:
    return replace(info, num_frames=num_frames)
