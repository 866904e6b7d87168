"""PyAV decoding of chosen frames: stream probing, frame timelines, keyframe-seeking decoder, display rotation.

A *timeline* maps a frame index to a presentation timestamp (pts, in the stream's time base) and back:

- [`FrameRateTimeline`]: a constant frame rate, frame `i` at `start_pts + i / fps` (no file access);
- [`TimestampTimeline`]: the frames' real pts, read by one demux pass without decoding (variable frame rate).

Frames are returned as a player shows them: rotated by the stream's display matrix (phone videos).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import VideoDecodingError
from .frame_selection import TIME_EPSILON, FrameGrid, FrameTimes, frames_shown_at

# Guard against decoders that loop forever on damaged input: a call never demuxes more than this many packets
# beyond twice the stream's frame count.
PACKET_BUDGET_MARGIN = 2_000
# Seeking this many frames before the stream start lands before the first packet even when decode timestamps lag.
REWIND_FRAMES = 64
# Most packets one demux pass reads to list a stream's timestamps (about 4.6 days at 25 fps).
MAX_SCANNED_PACKETS = 10_000_000
# Largest width x height of a video frame that is decoded to RGB: 8K UHD (7680 x 4320 = 33.2 MP) passes; one
# such frame is about 100 MB as uint8 RGB, and a processor holds a few of them.
MAX_VIDEO_FRAME_PIXELS = 36_000_000
# Average and nominal frame rates further apart than this (relative) mark a variable-frame-rate stream.
VARIABLE_RATE_TOLERANCE = 0.01
# FFmpeg demuxers of still images (png_pipe, jpeg_pipe, ...); "image2" reads numbered image sequences.
STILL_IMAGE_FORMAT_SUFFIX = "_pipe"
STILL_IMAGE_FORMATS = ("image2",)


@dataclass(frozen=True)
class StreamInfo:
    """What the headers say about the first video stream.

    Attributes:
        num_frames: declared frame count, or the duration times the frame rate when no count is declared.
        frame_count_is_declared: the count comes from the stream (or a packet count), not from a duration.
        fps: average frame rate.
        start_pts: pts of the stream start.
        seconds_per_pts: the stream's time base.
        variable_frame_rate: the average rate differs from the nominal one (timestamps are irregular).
        packets_counted: the count comes from a demux pass (the container is at its end).
    """

    num_frames: int
    frame_count_is_declared: bool
    fps: float
    start_pts: int
    seconds_per_pts: float
    variable_frame_rate: bool = False
    packets_counted: bool = False


def check_video_file(path: str | os.PathLike) -> int:
    """The file's size in bytes; VideoDecodingError when it is missing, not a file or empty."""
    file = Path(path)
    if not file.exists():
        raise VideoDecodingError(path, "file does not exist")
    if not file.is_file():
        raise VideoDecodingError(path, "not a regular file")
    size = file.stat().st_size
    if size == 0:
        raise VideoDecodingError(path, "file is empty (0 bytes)")
    return size


def open_video(path: str | os.PathLike):
    """`(container, stream, file_size)` of the first video stream; VideoDecodingError for anything that is not a
    video (a still image included)."""
    import av

    file_size = check_video_file(path)
    try:
        container = av.open(os.fspath(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as error:
        raise VideoDecodingError(path, f"not a readable media file ({error})") from error
    format_name = container.format.name
    if format_name.endswith(STILL_IMAGE_FORMAT_SUFFIX) or format_name in STILL_IMAGE_FORMATS:
        container.close()
        raise VideoDecodingError(
            path,
            f"a still image ({format_name}), not a video: pass it as an image, or as a one-frame video array "
            "(frames[None])",
        )
    if not container.streams.video:
        kinds = sorted({stream.type for stream in container.streams}) or ["none"]
        container.close()
        raise VideoDecodingError(path, f"no video stream (streams found: {', '.join(kinds)})")
    stream = container.streams.video[0]
    try:
        if stream.codec_context is None:
            raise VideoDecodingError(path, "the video stream's codec is unknown (no decoder for it): a damaged header or an unsupported format")
        check_frame_size(stream.codec_context.width or 0, stream.codec_context.height or 0, path)
    except VideoDecodingError:
        container.close()
        raise
    return container, stream, file_size


def check_frame_size(width: int, height: int, path) -> None:
    """VideoDecodingError when frames of `width` x `height` are over `MAX_VIDEO_FRAME_PIXELS` (checked from the
    header before decoding, and on the first decoded frame, which a header may misstate)."""
    if width * height > MAX_VIDEO_FRAME_PIXELS:
        raise VideoDecodingError(
            path,
            f"frames of {width}x{height} = {width * height} pixels are over the limit of {MAX_VIDEO_FRAME_PIXELS} "
            "per frame (media.video_decoding.MAX_VIDEO_FRAME_PIXELS; about 3 bytes per pixel and frame)",
        )


def probe_stream(container, stream, path, file_size: int) -> StreamInfo:
    """Frame count, rate and time base of `stream`, checked against the file size.

    A header may claim any duration or frame count; every frame needs at least one byte of the file, so a claim
    of more frames than the file has bytes is refused at once instead of being planned for.
    """
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise VideoDecodingError(path, "the video stream has no frame rate")
    fps = float(rate)
    nominal = stream.base_rate or stream.guessed_rate
    variable = bool(nominal) and abs(float(nominal) - fps) > VARIABLE_RATE_TOLERANCE * fps
    if stream.time_base is None:
        raise VideoDecodingError(path, "the video stream has no time base")
    seconds_per_pts = float(stream.time_base)
    start_pts = stream.start_time if stream.start_time is not None else 0

    if stream.frames and stream.frames > 0:
        info = StreamInfo(int(stream.frames), True, fps, start_pts, seconds_per_pts, variable)
        _check_claim(info, path, file_size, f"{info.num_frames} frames")
        return info
    if stream.duration is not None and stream.duration > 0:
        duration_seconds = stream.duration * seconds_per_pts
    elif container.duration is not None and container.duration > 0:
        duration_seconds = container.duration / 1_000_000  # av.time_base
    else:
        duration_seconds = None
    if duration_seconds is not None:
        estimate = duration_seconds * fps
        rounded = min(round(estimate), file_size + 1)  # capped: a claim past the file size is refused just below
        if rounded > 0:
            info = StreamInfo(int(rounded), False, fps, start_pts, seconds_per_pts, variable)
            _check_claim(info, path, file_size, f"a duration of {duration_seconds:.6g} s ({estimate:.6g} frames at {fps:g} fps)")
            return info
    counted = count_packets(container, stream, path)
    if counted == 0:
        raise VideoDecodingError(path, "the video stream contains no packets")
    return StreamInfo(counted, True, fps, start_pts, seconds_per_pts, variable, packets_counted=True)


def _check_claim(info: StreamInfo, path, file_size: int, claim: str) -> None:
    if info.num_frames > file_size:
        raise VideoDecodingError(
            path, f"the header claims {claim} but the file holds only {file_size} bytes: the header is wrong"
        )


def count_packets(container, stream, path, limit: int = MAX_SCANNED_PACKETS) -> int:
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


class FrameRateTimeline:
    """Frame `i` is shown at `start_pts + i / fps`: a constant frame rate (nothing read from the file)."""

    def __init__(self, info: StreamInfo):
        self.info = info
        self.num_frames = info.num_frames
        self.frames_per_pts = info.seconds_per_pts * info.fps

    def frame_axis(self) -> FrameGrid:
        """The frames as frame selection sees them."""
        return FrameGrid(self.num_frames, self.info.fps)

    def frame_index(self, pts: int) -> int:
        return int(round((pts - self.info.start_pts) * self.frames_per_pts))

    def seek_pts(self, index: float) -> int:
        return int(math.floor(self.info.start_pts + index / self.frames_per_pts))


class TimestampTimeline:
    """The frames' own presentation timestamps, in order (variable frame rate).

    Attributes:
        frame_pts: (num_frames,) int64 sorted pts of every frame.
        frame_times: (num_frames,) float64 seconds from the stream start.
        video_end: seconds from the stream start to the end of the last frame.
    """

    def __init__(self, info: StreamInfo, frame_pts: np.ndarray, last_duration_pts: int):
        self.info = info
        self.frame_pts = frame_pts
        self.num_frames = len(frame_pts)
        self.frame_times = (frame_pts - info.start_pts) * info.seconds_per_pts
        gaps = np.diff(frame_pts)
        self.typical_step = float(np.median(gaps)) if len(gaps) else max(1.0, 1 / (info.fps * info.seconds_per_pts))
        last_duration = last_duration_pts if last_duration_pts > 0 else self.typical_step
        self.video_end = float(self.frame_times[-1] + last_duration * info.seconds_per_pts)

    def frame_axis(self) -> FrameTimes:
        """The frames as frame selection sees them."""
        return FrameTimes(self.frame_times, self.video_end)

    def frame_index(self, pts: int) -> int:
        position = int(np.searchsorted(self.frame_pts, pts))
        if position == self.num_frames or (position > 0 and pts - self.frame_pts[position - 1] < self.frame_pts[position] - pts):
            position -= 1
        return position

    def seek_pts(self, index: float) -> int:
        if index < 0:
            return int(math.floor(self.frame_pts[0] + index * self.typical_step))
        if index > self.num_frames - 1:
            return int(math.floor(self.frame_pts[-1] + (index - self.num_frames + 1) * self.typical_step))
        # Linear between the two neighbouring frames' pts (np.interp over an arange would allocate per seek).
        lower = min(int(math.floor(index)), self.num_frames - 1)
        if lower == self.num_frames - 1:
            return int(self.frame_pts[lower])
        start, end = int(self.frame_pts[lower]), int(self.frame_pts[lower + 1])
        return int(math.floor(start + (index - lower) * (end - start)))


def scan_timestamps(container, stream, info: StreamInfo, path, rewind: bool = False) -> TimestampTimeline:
    """One demux pass (no decoding) listing every frame's pts: the timeline of a variable-frame-rate stream.

    Args:
        rewind: seek back to the stream start first (when packets were already read from `container`).
    """
    import av

    timestamps: list[int] = []
    last_pts, last_duration = None, 0
    try:
        if rewind:
            container.seek(FrameRateTimeline(info).seek_pts(-REWIND_FRAMES), backward=True, any_frame=False, stream=stream)
        for packet in container.demux(stream):
            if not packet.size:
                continue
            timestamp = packet.pts if packet.pts is not None else packet.dts
            if timestamp is None:
                continue
            timestamps.append(int(timestamp))
            if last_pts is None or timestamp >= last_pts:
                last_pts, last_duration = timestamp, int(packet.duration or 0)
            if len(timestamps) > MAX_SCANNED_PACKETS:
                raise VideoDecodingError(path, f"more than {MAX_SCANNED_PACKETS} packets while reading timestamps")
    except av.error.FFmpegError as error:
        raise VideoDecodingError(path, f"corrupt data while reading timestamps ({error})") from error
    if not timestamps:
        raise VideoDecodingError(path, "the video stream contains no packets with timestamps")
    frame_pts = np.unique(np.asarray(timestamps, dtype=np.int64))
    return TimestampTimeline(info, frame_pts, last_duration)


def display_rotation(frame) -> int:
    """Clockwise quarter turns (0-3) a player applies to `frame`: its display matrix (phone videos)."""
    try:
        counterclockwise_degrees = frame.rotation
    except (AttributeError, ValueError):
        return 0
    return int(round(-(counterclockwise_degrees or 0) / 90)) % 4


def to_display(image: np.ndarray, clockwise_quarter_turns: int) -> np.ndarray:
    """`image` (height, width, 3) rotated clockwise by `clockwise_quarter_turns` x 90 degrees."""
    if clockwise_quarter_turns == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=-clockwise_quarter_turns))


class KeyframeDecoder:
    """Decodes chosen frame indices of a timeline, seeking to the keyframe before each group of targets.

    Between the keyframe and a target, packets of frames that no other frame references (B-frames outside a
    B-pyramid: `skip_frame="NONREF"`) are not decoded unless they are targets: no decoded frame depends on them, so
    the targets' pixels are exactly those of decoding every frame, at a fraction of the cost.

    Args:
        skip_unused_frames: False decodes every frame from the keyframe on (the decoder of earlier versions).

    Attributes:
        decodable_frame_count: set when a pass reaches the end of the stream: the frames that exist.
        skipped_targets: a decoded frame's index jumped over a wanted index: the timestamps do not follow the
            timeline (a variable frame rate the headers did not reveal).
        frames_decoded: frames the decoder returned so far (skipped frames are not decoded, so not counted).
    """

    def __init__(self, container, stream, timeline, path, skip_unused_frames: bool = True):
        self.container = container
        self.stream = stream
        self.timeline = timeline
        self.info = timeline.info
        self.path = path
        self.skip_unused_frames = skip_unused_frames
        self.packet_budget = 2 * timeline.num_frames + PACKET_BUDGET_MARGIN
        self.decodable_frame_count: int | None = None
        self.skipped_targets = False
        self.frames_decoded = 0
        self._output_size: tuple[int, int] | None = None
        self._quarter_turns = 0
        self._skip_setting = None

    @property
    def rewind_pts(self) -> int:
        """A seek target before every packet: decoding timestamps can precede the first presentation timestamp."""
        return self.timeline.seek_pts(-REWIND_FRAMES)

    def _keyframe_before(self, target: int) -> tuple[int, int]:
        """Seek position (pts) whose keyframe is at or before `target`, and that keyframe's index."""
        seek_frame = target + 0.4  # inside the target's display interval, robust to millisecond-rounded pts
        for _ in range(8):
            seek_pts = self.timeline.seek_pts(seek_frame)
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
        """Index of the first keyframe packet demuxed after seeking to `seek_pts` (None: none found)."""
        self.container.seek(seek_pts, backward=True, any_frame=False, stream=self.stream)
        for packets_read, packet in enumerate(self.container.demux(self.stream)):
            timestamp = packet.pts if packet.pts is not None else packet.dts
            if packet.is_keyframe and timestamp is not None:
                return self.timeline.frame_index(timestamp)
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
        """Map each requested frame index to (RGB uint8 (height, width, 3) as displayed, timestamp in seconds)."""
        targets = sorted(set(int(index) for index in indices))
        decoded: dict[int, tuple[np.ndarray, float]] = {}
        for seek_pts, run_targets in self._plan(targets):
            if self.decodable_frame_count is not None and run_targets[0] >= self.decodable_frame_count:
                break  # the stream already ended before these targets
            self._decode_run(seek_pts, run_targets, decoded)
        return decoded

    def _decode_run(self, seek_pts: int, run_targets: list[int], decoded: dict) -> None:
        skip = self.skip_unused_frames
        reached = self._decode_from(seek_pts, run_targets, decoded, wait_for_keyframe=True, skip=skip)
        if reached is None:
            # No keyframe flags after the seek point: decode linearly from the stream start instead.
            reached = self._decode_from(self.rewind_pts, run_targets, decoded, wait_for_keyframe=False, skip=skip)
        if reached is False and skip:
            # The stream ended before the last target. Frames at its end may have been skipped: decode the run
            # again in full so that the count of frames that exist is the one every decoded frame gives.
            self.decodable_frame_count = None
            if self._decode_from(seek_pts, run_targets, decoded, wait_for_keyframe=True, skip=False) is None:
                self._decode_from(self.rewind_pts, run_targets, decoded, wait_for_keyframe=False, skip=False)
        self._set_skip(False)

    def _set_skip(self, skip: bool) -> None:
        if skip != self._skip_setting:
            self.stream.codec_context.skip_frame = "NONREF" if skip else "DEFAULT"
            self._skip_setting = skip

    def _decode_from(
        self, seek_pts: int, run_targets: list[int], decoded: dict, wait_for_keyframe: bool, skip: bool
    ) -> bool | None:
        """Decode from the keyframe before `seek_pts` up to the last target.

        Args:
            skip: do not decode frames that no other frame references, unless their packet's timestamp is a target.

        Returns:
            True: the last target was reached; False: the stream ended before it (`decodable_frame_count` is set);
            None: no keyframe was met.
        """
        wanted = set(run_targets)
        last_target = run_targets[-1]
        self.container.seek(seek_pts, backward=True, any_frame=False, stream=self.stream)
        self.stream.codec_context.flush_buffers()
        self._set_skip(False)
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
            if skip:
                # A packet without a timestamp may hold any frame: decode it.
                self._set_skip(packet.pts is not None and self.timeline.frame_index(packet.pts) not in wanted)
            for frame in packet.decode():
                self.frames_decoded += 1
                if frame.pts is not None:
                    index = self.timeline.frame_index(frame.pts)
                else:
                    index = 0 if previous_index is None else previous_index + 1
                if previous_index is not None and index > previous_index + 1 and any(
                    previous_index < target < index and target not in decoded for target in wanted
                ):
                    self.skipped_targets = True
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
            return None
        # The stream ended before the last target: the file holds fewer frames than declared.
        self.decodable_frame_count = 0 if previous_index is None else previous_index + 1
        return False

    def _to_rgb(self, frame) -> np.ndarray:
        if self._output_size is None:
            check_frame_size(frame.width, frame.height, self.path)
            self._output_size = (frame.width, frame.height)
            self._quarter_turns = display_rotation(frame)
        width, height = self._output_size
        if (frame.width, frame.height) != (width, height):
            frame = frame.reformat(width=width, height=height)
        return to_display(frame.to_ndarray(format="rgb24"), self._quarter_turns)


def decode_frame_at(path: str | os.PathLike, seconds: float) -> tuple[np.ndarray, float]:
    """The frame (RGB uint8 (height, width, 3), as displayed) on screen `seconds` after the stream start, and its
    timestamp; the last frame for a time past the end.

    Raises:
        VideoDecodingError: the file is not a decodable video.
    """
    import av

    seconds = max(float(seconds), 0.0)
    container, stream, file_size = open_video(path)
    try:
        info = probe_stream(container, stream, path, file_size)
        if not info.variable_frame_rate:
            index = min(int(math.floor(seconds * info.fps + TIME_EPSILON)), info.num_frames - 1)
            decoder = KeyframeDecoder(container, stream, FrameRateTimeline(info), path)
            decoded = decoder.decode(np.asarray([index]))
            if index in decoded:
                return decoded[index]
        timeline = scan_timestamps(container, stream, info, path, rewind=True)
        index = int(frames_shown_at(timeline.frame_times, np.asarray([seconds]))[0])
        decoded = KeyframeDecoder(container, stream, timeline, path).decode(np.asarray([index]))
    except av.error.FFmpegError as error:
        raise VideoDecodingError(path, f"corrupt data: decoder error ({error})") from error
    finally:
        container.close()
    if index not in decoded:
        raise VideoDecodingError(path, f"the frame shown at {seconds:.3f} s could not be decoded")
    return decoded[index]
