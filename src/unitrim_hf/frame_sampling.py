"""Decode a video file into a fixed number of RGB frames (uniform, CLIP4Clip-fps, or random segment sampling).

Frame indices count decoded frames in presentation order from the first frame of the video stream: frame ``i`` is
shown at ``i / fps`` seconds after the stream start. PyAV is the decoding backend; only the keyframe groups that
contain the requested frames are decoded.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .errors import VideoDecodingError

STRATEGIES = ("uniform", "fps", "random")
SLICE_POSITIONS = ("head", "tail", "uniform")
BACKENDS = ("pyav",)

# Guard against decoders that loop forever on damaged input: a call never demuxes more than this many packets
# beyond twice the stream's frame count.
PACKET_BUDGET_MARGIN = 2_000
# How far the decodable frame count may fall short of the container's declared count before the file is treated as
# truncated (declared counts derived from the duration are estimates, off by a frame or two).
MIN_FRAME_COUNT_TOLERANCE = 3
RELATIVE_FRAME_COUNT_TOLERANCE = 0.05
# Seeking this many frames before the stream start lands before the first packet even when decode timestamps lag.
REWIND_FRAMES = 64
# Rounding slack for time -> frame conversions (1 microsecond-level float noise).
TIME_EPSILON = 1e-6


class SampledFrames(NamedTuple):
    """Frames sampled from one video, padded to ``num_frames``.

    Attributes:
        frames: (num_frames, height, width, 3) uint8 RGB, zero after the last real frame.
        mask: (num_frames,) int64, 1 for real frames.
        frame_indices: (num_frames,) int64 decoded frame index per slot, -1 for padding.
        timestamps: (num_frames,) float64 presentation time in seconds from the stream start, -1 for padding.
    """

    frames: np.ndarray
    mask: np.ndarray
    frame_indices: np.ndarray
    timestamps: np.ndarray


@dataclass(frozen=True)
class _StreamInfo:
    num_frames: int
    frame_count_is_declared: bool
    fps: float
    start_pts: int
    seconds_per_pts: float


class FrameSampler:
    """Samples ``num_frames`` RGB frames from a video file.

    Args:
        num_frames: T, the number of frame slots returned (real frames first, then zero padding).
        strategy: "uniform" (centres of T equal segments of the clip), "fps" (CLIP4Clip: ``frames_per_second`` frames
            per second of video using ``int(video_fps)``, then sliced to T), or "random" (one random frame in each of
            T equal segments; for training).
        frames_per_second: frames taken per second by the "fps" strategy; a whole number >= 1, as in CLIP4Clip.
        slice_position: how the "fps" strategy keeps T of more frames: "head", "tail" or "uniform"
            (``np.linspace(0, n - 1, T, dtype=int)``).
        seed: seed of the generator used by the "random" strategy when no ``rng`` is given per call.
        backend: decoding library; "pyav".
        default_end_time: ``end_time`` (seconds) used when a call gives none; None: the end of the video.
            CLIP4Clip reads DiDeMo videos from 0 to 31 s (at most 32 frames at 1 fps): ``default_end_time=31``.
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

    # ------------------------------------------------------------------ index selection (pure)
    def sample_indices(
        self,
        num_video_frames: int,
        fps: float,
        start_time: float | None = None,
        end_time: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Frame indices to decode, sorted, at most ``num_frames`` of them.

        Args:
            num_video_frames: number of frames in the video stream.
            fps: the stream's frame rate (frames per second).
            start_time, end_time: optional clip bounds in seconds from the stream start. "uniform"/"random" use the
                frames shown in [start_time, end_time); "fps" follows CLIP4Clip (seconds start..end inclusive).
            rng: generator for the "random" strategy (default: the sampler's own, seeded by ``seed``).

        Returns:
            (num_selected,) int64 array, num_selected <= num_frames.
        """
        if num_video_frames < 1:
            raise ValueError(f"num_video_frames must be >= 1, got {num_video_frames}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if start_time is not None and start_time < 0:
            raise ValueError(f"start_time must be >= 0, got {start_time}")
        if start_time is not None and end_time is not None and end_time <= start_time:
            raise ValueError(f"end_time ({end_time}) must be greater than start_time ({start_time})")
        if self.strategy == "fps":
            return self._clip4clip_indices(num_video_frames, fps, start_time, end_time)
        first, stop = self._frame_range(num_video_frames, fps, start_time, end_time)
        count = stop - first
        if count <= self.num_frames:
            return np.arange(first, stop, dtype=np.int64)
        if self.strategy == "uniform":
            centres = (np.arange(self.num_frames) + 0.5) * count / self.num_frames
            return first + np.floor(centres).astype(np.int64)
        bounds = first + np.floor(np.arange(self.num_frames + 1) * count / self.num_frames).astype(np.int64)
        generator = rng if rng is not None else self._rng
        return generator.integers(bounds[:-1], bounds[1:]).astype(np.int64)

    @staticmethod
    def _frame_range(num_video_frames: int, fps: float, start_time, end_time) -> tuple[int, int]:
        first = 0 if start_time is None else max(0, math.ceil(start_time * fps - TIME_EPSILON))
        stop = num_video_frames if end_time is None else min(num_video_frames, math.ceil(end_time * fps - TIME_EPSILON))
        if first >= num_video_frames:
            raise ValueError(
                f"start_time {start_time} s is past the end of the video ({num_video_frames} frames at {fps:g} fps)"
            )
        if stop <= first:
            raise ValueError(f"no frame is shown between start_time {start_time} s and end_time {end_time} s")
        return first, stop

    def _clip4clip_indices(self, num_video_frames: int, fps: float, start_time, end_time) -> np.ndarray:
        whole_fps = int(fps)  # CLIP4Clip truncates (29.97 -> 29)
        if whole_fps < 1:
            raise ValueError(f"the 'fps' strategy needs a video frame rate >= 1, got {fps}")
        per_second = int(self.frames_per_second)
        if per_second > whole_fps:
            raise ValueError(f"frames_per_second={per_second} exceeds the video's whole frame rate {whole_fps}")
        offsets = np.arange(0, whole_fps, max(whole_fps // per_second, 1))[:per_second]
        total_seconds = (num_video_frames + whole_fps - 1) // whole_fps
        first_second = 0 if start_time is None else start_time
        last_second = total_seconds if end_time is None else min(end_time, total_seconds)
        indices: list[int] = []
        for second in np.arange(first_second, last_second + 1):
            base = int(second * whole_fps)
            overflow = False
            for offset in offsets:
                index = base + int(offset)
                if index >= num_video_frames:  # CLIP4Clip stops at the first failed read
                    overflow = True
                    break
                indices.append(index)
            if overflow:
                break
        if not indices:
            duration = num_video_frames / fps
            raise ValueError(
                f"no frame lies in the time range [{first_second}, {last_second}] s of a {duration:.2f} s video "
                "(start_time is past the end of the video)"
            )
        selected = np.asarray(indices, dtype=np.int64)
        if len(selected) > self.num_frames:
            if self.slice_position == "head":
                selected = selected[: self.num_frames]
            elif self.slice_position == "tail":
                selected = selected[-self.num_frames :]
            else:
                selected = selected[np.linspace(0, len(selected) - 1, self.num_frames, dtype=int)]
        return selected

    # ------------------------------------------------------------------ decoding
    def __call__(
        self,
        path: str | os.PathLike,
        start_time: float | None = None,
        end_time: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> SampledFrames:
        """Decode the sampled frames of ``path``.

        Raises:
            VideoDecodingError: the file is missing, empty, not a video, truncated or corrupt, or ``start_time`` /
                ``end_time`` select no frame.
        """
        import av

        if end_time is None and self.default_end_time is not None and (start_time is None or start_time < self.default_end_time):
            end_time = self.default_end_time
        _check_file(path)
        try:
            container = av.open(os.fspath(path), metadata_errors="ignore")
        except (av.error.FFmpegError, UnicodeDecodeError, OSError) as error:
            raise VideoDecodingError(path, f"not a readable media file ({error})") from error
        try:
            return self._sample_from_container(container, path, start_time, end_time, rng)
        finally:
            container.close()

    def _sample_from_container(self, container, path, start_time, end_time, rng) -> SampledFrames:
        import av

        if not container.streams.video:
            kinds = sorted({stream.type for stream in container.streams}) or ["none"]
            raise VideoDecodingError(path, f"no video stream (streams found: {', '.join(kinds)})")
        stream = container.streams.video[0]
        info = _stream_info(container, stream, path)
        try:
            indices = self.sample_indices(info.num_frames, info.fps, start_time, end_time, rng)
        except ValueError as error:
            raise VideoDecodingError(path, str(error)) from error

        decoder = _KeyframeDecoder(container, stream, info, path)
        try:
            decoded = decoder.decode(indices)
            missing = [index for index in indices.tolist() if index not in decoded]
            if missing:
                decodable = decoder.decodable_frame_count
                if decodable is None or decodable == 0:
                    raise VideoDecodingError(path, f"frames {missing[:5]} could not be decoded")
                shortfall = info.num_frames - decodable
                tolerance = max(MIN_FRAME_COUNT_TOLERANCE, int(RELATIVE_FRAME_COUNT_TOLERANCE * info.num_frames))
                if shortfall > tolerance:
                    raise VideoDecodingError(
                        path,
                        f"truncated or corrupt: the container declares about {info.num_frames} frames "
                        f"but only {decodable} could be decoded",
                    )
                # The declared count was a slight overestimate: sample again from the frames that exist.
                try:
                    indices = self.sample_indices(decodable, info.fps, start_time, end_time, rng)
                except ValueError as error:
                    raise VideoDecodingError(path, str(error)) from error
                decoded.update(decoder.decode(np.asarray([i for i in indices.tolist() if i not in decoded])))
                missing = [index for index in indices.tolist() if index not in decoded]
                if missing:
                    raise VideoDecodingError(path, f"frames {missing[:5]} could not be decoded")
        except av.error.FFmpegError as error:
            raise VideoDecodingError(path, f"corrupt data: decoder error ({error})") from error
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


def _check_file(path: str | os.PathLike) -> None:
    file = Path(path)
    if not file.exists():
        raise VideoDecodingError(path, "file does not exist")
    if not file.is_file():
        raise VideoDecodingError(path, "not a regular file")
    if file.stat().st_size == 0:
        raise VideoDecodingError(path, "file is empty (0 bytes)")


def _stream_info(container, stream, path) -> _StreamInfo:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise VideoDecodingError(path, "the video stream has no frame rate")
    fps = float(rate)
    if stream.time_base is None:
        raise VideoDecodingError(path, "the video stream has no time base")
    seconds_per_pts = float(stream.time_base)
    start_pts = stream.start_time if stream.start_time is not None else 0

    if stream.frames and stream.frames > 0:
        return _StreamInfo(int(stream.frames), True, fps, start_pts, seconds_per_pts)
    if stream.duration is not None and stream.duration > 0:
        duration_seconds = stream.duration * seconds_per_pts
    elif container.duration is not None and container.duration > 0:
        duration_seconds = container.duration / 1_000_000  # av.time_base
    else:
        duration_seconds = None
    if duration_seconds is not None:
        estimate = int(round(duration_seconds * fps))
        if estimate > 0:
            return _StreamInfo(estimate, False, fps, start_pts, seconds_per_pts)
    counted = _count_packets(container, stream, path)
    if counted == 0:
        raise VideoDecodingError(path, "the video stream contains no packets")
    return _StreamInfo(counted, True, fps, start_pts, seconds_per_pts)


def _count_packets(container, stream, path, limit: int = 10_000_000) -> int:
    """Last resort frame count: one demux pass without decoding."""
    import av

    count = 0
    try:
        for packet in container.demux(stream):
            if packet.size:
                count += 1
            if count > limit:
                raise VideoDecodingError(path, f"more than {limit} packets while counting frames")
    except av.error.FFmpegError as error:
        raise VideoDecodingError(path, f"corrupt data while counting frames ({error})") from error
    return count


class _KeyframeDecoder:
    """Decodes chosen frame indices, seeking to the keyframe before each group of targets."""

    def __init__(self, container, stream, info: _StreamInfo, path):
        self.container = container
        self.stream = stream
        self.info = info
        self.path = path
        self.frames_per_pts = info.seconds_per_pts * info.fps
        self.packet_budget = 2 * info.num_frames + PACKET_BUDGET_MARGIN
        self.decodable_frame_count: int | None = None  # set when a pass reaches the end of the stream
        self._output_size: tuple[int, int] | None = None

    @property
    def rewind_pts(self) -> int:
        """A seek target before every packet: decoding timestamps can precede the first presentation timestamp."""
        return self.index_to_seek_pts(-REWIND_FRAMES)

    def frame_index(self, pts: int) -> int:
        return int(round((pts - self.info.start_pts) * self.frames_per_pts))

    def index_to_seek_pts(self, index: float) -> int:
        return int(math.floor(self.info.start_pts + index / self.frames_per_pts))

    def _keyframe_before(self, target: int) -> tuple[int, int]:
        """Seek position (pts) whose keyframe is at or before ``target``, and that keyframe's index."""
        seek_frame = target + 0.4  # inside the target's display interval, robust to millisecond-rounded pts
        for _ in range(8):
            seek_pts = self.index_to_seek_pts(seek_frame)
            keyframe = self._probe(seek_pts)
            if keyframe is None:
                break
            if keyframe <= target:
                return seek_pts, keyframe
            # Seeking by decode timestamps (B-frames) can land on the next keyframe: back off and retry.
            seek_frame -= max(keyframe - target, 1) + 1
            if seek_frame < 0:
                break
        return self.rewind_pts, 0

    def _probe(self, seek_pts: int) -> int | None:
        """Index of the first keyframe packet demuxed after seeking to ``seek_pts`` (None: none found)."""
        self.container.seek(seek_pts, backward=True, any_frame=False, stream=self.stream)
        for packets_read, packet in enumerate(self.container.demux(self.stream)):
            timestamp = packet.pts if packet.pts is not None else packet.dts
            if packet.is_keyframe and timestamp is not None:
                return self.frame_index(timestamp)
            if packets_read > self.packet_budget:
                break
        return None

    def _plan(self, targets: list[int]) -> list[tuple[int, list[int]]]:
        runs: list[tuple[int, list[int]]] = []
        for target in targets:
            seek_pts, keyframe = self._keyframe_before(target)
            if runs and keyframe <= runs[-1][1][-1]:
                runs[-1][1].append(target)  # decoding on from the previous target passes this keyframe anyway
            else:
                runs.append((seek_pts, [target]))
        return runs

    def decode(self, indices: np.ndarray) -> dict[int, tuple[np.ndarray, float]]:
        """Map each requested frame index to (RGB uint8 (height, width, 3), timestamp in seconds)."""
        targets = sorted(set(int(index) for index in indices))
        decoded: dict[int, tuple[np.ndarray, float]] = {}
        for seek_pts, run_targets in self._plan(targets):
            self._decode_run(seek_pts, run_targets, decoded)
        return decoded

    def _decode_run(self, seek_pts: int, run_targets: list[int], decoded: dict) -> None:
        if not self._decode_from(seek_pts, run_targets, decoded, wait_for_keyframe=True):
            # No keyframe flags after the seek point: decode linearly from the stream start instead.
            self._decode_from(self.rewind_pts, run_targets, decoded, wait_for_keyframe=False)

    def _decode_from(self, seek_pts: int, run_targets: list[int], decoded: dict, wait_for_keyframe: bool) -> bool:
        """Decode from the keyframe before ``seek_pts`` up to the last target; False if no keyframe was met."""
        wanted = set(run_targets)
        last_target = run_targets[-1]
        self.container.seek(seek_pts, backward=True, any_frame=False, stream=self.stream)
        self.stream.codec_context.flush_buffers()
        previous_index = None
        keyframe_seen = not wait_for_keyframe
        for packet in self.container.demux(self.stream):
            self.packet_budget -= 1
            if self.packet_budget < 0:
                raise VideoDecodingError(self.path, "gave up: too many packets demuxed (damaged index or stream)")
            if not keyframe_seen:
                # Demuxers without an exact index (MPEG-TS) may seek to a non-keyframe; skip to the next keyframe so
                # the decoder never sees packets whose references are missing.
                if not packet.is_keyframe:
                    continue
                keyframe_seen = True
            for frame in packet.decode():
                if frame.pts is not None:
                    index = self.frame_index(frame.pts)
                else:
                    index = 0 if previous_index is None else previous_index + 1
                previous_index = index
                if index in wanted and index not in decoded:
                    if frame.pts is not None:
                        timestamp = (frame.pts - self.info.start_pts) * self.info.seconds_per_pts
                    else:
                        timestamp = index / self.info.fps
                    decoded[index] = (self._to_rgb(frame), timestamp)
                if index >= last_target:
                    return True
        if not keyframe_seen:
            return False
        # The stream ended before the last target: the file holds fewer frames than declared.
        self.decodable_frame_count = 0 if previous_index is None else previous_index + 1
        return True

    def _to_rgb(self, frame) -> np.ndarray:
        if self._output_size is None:
            self._output_size = (frame.width, frame.height)
        width, height = self._output_size
        if (frame.width, frame.height) != (width, height):
            frame = frame.reformat(width=width, height=height)
        return frame.to_ndarray(format="rgb24")
