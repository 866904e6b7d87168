"""Which frames of a video to take: uniform, CLIP4Clip-fps and random selection, as pure functions.

A video's frames are seen along one of two *frame axes*:

- `FrameGrid`: `num_frames` frames at a constant `fps`; frame `i` is shown from `i / fps` seconds. Selections work
  on frame numbers and follow CLIP4Clip exactly (`int(fps)` for the "fps" strategy).
- `FrameTimes`: the sorted presentation times of the frames (variable frame rate: phone and screen recordings,
  animated GIFs). Selections pick target times and return the index of the frame shown at each time, so a frame
  shown three times longer is three times as likely to be taken.

`select_frames` is the one selection algorithm; an axis supplies only what differs between the two views: the
frames of a clip, where segment picks fall, and the increasing sequence of CLIP4Clip's candidates. Nothing here
decodes; the cost of every function is bounded by the number of frames returned (or, for `FrameTimes`, by the
length of `frame_times`), never by the duration a file header claims.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

STRATEGIES = ("uniform", "fps", "random")
SLICE_POSITIONS = ("head", "tail", "uniform")
# Rounding slack for time -> frame conversions (1 microsecond-level float noise).
TIME_EPSILON = 1e-6


def check_clip_bounds(start_time: float | None, end_time: float | None) -> None:
    """Raise `ValueError` unless `0 <= start_time < end_time` (either may be None)."""
    if start_time is not None and start_time < 0:
        raise ValueError(f"start_time must be >= 0, got {start_time}")
    if start_time is not None and end_time is not None and end_time <= start_time:
        raise ValueError(f"end_time ({end_time}) must be greater than start_time ({start_time})")


def slice_selection(count: int, num_frames: int, slice_position: str) -> np.ndarray:
    """Positions (into `count` candidates) kept when there are more than `num_frames`: CLIP4Clip's slicing."""
    if count <= num_frames:
        return np.arange(count, dtype=np.int64)
    if slice_position == "head":
        return np.arange(num_frames, dtype=np.int64)
    if slice_position == "tail":
        return np.arange(count - num_frames, count, dtype=np.int64)
    return np.linspace(0, count - 1, num_frames, dtype=int).astype(np.int64)


def frames_shown_at(frame_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the frame on screen at each time: the last frame whose presentation time is <= the time."""
    shown = np.searchsorted(frame_times, np.asarray(times) + TIME_EPSILON, side="right") - 1
    return np.clip(shown, 0, len(frame_times) - 1).astype(np.int64)


def count_below(key_at: Callable[[np.ndarray], np.ndarray], limit: float, num_candidates: int) -> int:
    """How many of the increasing keys `key_at(0) < key_at(1) < ... < key_at(num_candidates - 1)` lie below
    `limit`, found by binary search: the cost does not grow with `num_candidates`."""
    low, high = 0, num_candidates
    while low < high:
        middle = (low + high) // 2
        if key_at(np.asarray([middle]))[0] < limit:
            low = middle + 1
        else:
            high = middle
    return low


@dataclass(frozen=True)
class Clip4ClipCandidates:
    """
    CLIP4Clip's candidate frames of a clip as an increasing sequence of keys, valid while below `limit`.

    Args:
        first_second, last_second: the seconds CLIP4Clip walks, both included.
        num_candidates: how many candidates those seconds hold before the end of the video is checked.
        key_at: candidate positions (n,) -> their keys (n,), increasing (frame numbers or times).
        limit: the first key past the end of the video.
        frames_of: keys (n,) -> the frame indices (n,) they select.
    """

    first_second: float
    last_second: float
    num_candidates: int
    key_at: Callable[[np.ndarray], np.ndarray]
    limit: float
    frames_of: Callable[[np.ndarray], np.ndarray]


def _seconds_walked(start_time: float | None, end_time: float | None, video_seconds: float) -> tuple[float, float, int]:
    """CLIP4Clip's `np.arange(start, end + 1)` of seconds: the first and last one and how many there are."""
    first_second = 0 if start_time is None else start_time
    last_second = video_seconds if end_time is None else min(end_time, video_seconds)
    return first_second, last_second, max(0, math.ceil(last_second + 1 - first_second))


@dataclass(frozen=True)
class FrameGrid:
    """
    The frames of a constant-frame-rate video: frame `i` is shown from `i / fps` seconds.

    Args:
        num_frames: frames in the video stream (>= 1).
        fps: the stream's frame rate (> 0).
    """

    num_frames: int
    fps: float

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_video_frames must be >= 1, got {self.num_frames}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def frame_range(self, start_time: float | None, end_time: float | None) -> tuple[int, int]:
        """`(first, stop)`: the frames shown in `[start_time, end_time)`."""
        first = 0 if start_time is None else max(0, math.ceil(start_time * self.fps - TIME_EPSILON))
        stop = self.num_frames if end_time is None else min(self.num_frames, math.ceil(end_time * self.fps - TIME_EPSILON))
        if first >= self.num_frames:
            raise ValueError(
                f"start_time {start_time} s is past the end of the video ({self.num_frames} frames at {self.fps:g} fps)"
            )
        if stop <= first:
            raise ValueError(f"no frame is shown between start_time {start_time} s and end_time {end_time} s")
        return first, stop

    def segment_picks(
        self, first: int, stop: int, num_frames: int, strategy: str, rng: np.random.Generator | None,
        start_time: float | None, end_time: float | None,
    ) -> np.ndarray:
        """One frame number per equal segment of `first..stop-1`: its centre ("uniform") or a random one."""
        count = stop - first
        if strategy == "uniform":
            centres = (np.arange(num_frames) + 0.5) * count / num_frames
            return first + np.floor(centres).astype(np.int64)
        bounds = first + np.floor(np.arange(num_frames + 1) * count / num_frames).astype(np.int64)
        return rng.integers(bounds[:-1], bounds[1:]).astype(np.int64)

    def clip4clip_candidates(
        self, frames_per_second: int, start_time: float | None, end_time: float | None
    ) -> Clip4ClipCandidates:
        """`frames_per_second` frames of every second at offsets of `int(fps)` frames (CLIP4Clip truncates 29.97
        to 29), in closed form."""
        whole_fps = int(self.fps)
        if whole_fps < 1:
            raise ValueError(f"the 'fps' strategy needs a video frame rate >= 1, got {self.fps}")
        if frames_per_second > whole_fps:
            raise ValueError(f"frames_per_second={frames_per_second} exceeds the video's whole frame rate {whole_fps}")
        offsets = np.arange(0, whole_fps, max(whole_fps // frames_per_second, 1))[:frames_per_second]
        total_seconds = (self.num_frames + whole_fps - 1) // whole_fps
        first_second, last_second, num_seconds = _seconds_walked(start_time, end_time, total_seconds)

        def frame_at(position: np.ndarray) -> np.ndarray:
            second = first_second + position // len(offsets)
            return (second * whole_fps).astype(np.int64) + offsets[position % len(offsets)]

        return Clip4ClipCandidates(
            first_second, last_second, num_seconds * len(offsets), frame_at, self.num_frames, lambda frames: frames
        )


@dataclass(frozen=True)
class FrameTimes:
    """
    The frames of a variable-frame-rate video, by presentation time.

    Args:
        frame_times: (num_frames,) sorted presentation times in seconds from the stream start.
        video_end: end of the last frame, in seconds.
    """

    frame_times: np.ndarray
    video_end: float

    @property
    def duration(self) -> float:
        return self.video_end

    def time_range(self, start_time: float | None, end_time: float | None) -> tuple[float, float]:
        """The clip's bounds in seconds, `end_time` capped at the end of the video."""
        range_start = 0.0 if start_time is None else float(start_time)
        range_end = self.video_end if end_time is None else min(float(end_time), self.video_end)
        return range_start, range_end

    def frame_range(self, start_time: float | None, end_time: float | None) -> tuple[int, int]:
        """`(first, stop)`: the frames starting in `[start_time, end_time)` (the frame on screen when the clip
        lies inside one long frame)."""
        range_start, range_end = self.time_range(start_time, end_time)
        if range_start >= self.video_end:
            raise ValueError(f"start_time {start_time} s is past the end of the video ({self.video_end:.3f} s)")
        first = int(np.searchsorted(self.frame_times, range_start - TIME_EPSILON, side="left"))
        stop = int(np.searchsorted(self.frame_times, range_end - TIME_EPSILON, side="left"))
        if stop <= first:
            first = int(frames_shown_at(self.frame_times, np.asarray([range_start]))[0])
            stop = first + 1
        return first, stop

    def segment_picks(
        self, first: int, stop: int, num_frames: int, strategy: str, rng: np.random.Generator | None,
        start_time: float | None, end_time: float | None,
    ) -> np.ndarray:
        """The frames shown at the centres of (or at a random time in) `num_frames` equal time segments; sorted, a
        long frame can be taken more than once."""
        range_start, range_end = self.time_range(start_time, end_time)
        edges = range_start + np.arange(num_frames + 1) * (range_end - range_start) / num_frames
        if strategy == "uniform":
            times = (edges[:-1] + edges[1:]) / 2
        else:
            times = rng.uniform(edges[:-1], edges[1:])
        return np.clip(frames_shown_at(self.frame_times, times), first, stop - 1)

    def clip4clip_candidates(
        self, frames_per_second: int, start_time: float | None, end_time: float | None
    ) -> Clip4ClipCandidates:
        """The times `second + k / frames_per_second` of every second CLIP4Clip walks, before the end of the video."""
        first_second, last_second, num_seconds = _seconds_walked(
            None if start_time is None else float(start_time), None if end_time is None else float(end_time),
            math.ceil(self.video_end),
        )

        def time_at(position: np.ndarray) -> np.ndarray:
            return first_second + position // frames_per_second + (position % frames_per_second) / frames_per_second

        return Clip4ClipCandidates(
            first_second, last_second, num_seconds * frames_per_second, time_at, self.video_end - TIME_EPSILON,
            lambda times: frames_shown_at(self.frame_times, times),
        )


FrameAxis = FrameGrid | FrameTimes


def select_frames(
    axis: FrameAxis,
    num_frames: int,
    strategy: str,
    frames_per_second: int = 1,
    slice_position: str = "uniform",
    start_time: float | None = None,
    end_time: float | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """
    Indices of at most `num_frames` frames of the clip `[start_time, end_time)`, sorted.

    Args:
        axis: the video's frames (`FrameGrid` or `FrameTimes`).
        num_frames: T, the most frames taken.
        strategy: "uniform" and "random": every frame of the clip when it has at most T, else one per equal segment
            (its centre, or a random point; `rng` draws it); "fps": CLIP4Clip's `frames_per_second` frames of every
            second from `start_time` to `end_time` (both included) before the end of the video, sliced to T by
            `slice_position`.

    Raises:
        ValueError: bad clip bounds, or a clip that selects no frame.
    """
    check_clip_bounds(start_time, end_time)
    if strategy == "fps":
        candidates = axis.clip4clip_candidates(frames_per_second, start_time, end_time)
        count = count_below(candidates.key_at, candidates.limit, candidates.num_candidates)
        if count == 0:
            raise ValueError(
                f"no frame lies in the time range [{candidates.first_second:g}, {candidates.last_second:g}] s of a "
                f"{axis.duration:.2f} s video (start_time is past the end of the video)"
            )
        return candidates.frames_of(candidates.key_at(slice_selection(count, num_frames, slice_position)))
    first, stop = axis.frame_range(start_time, end_time)
    if stop - first <= num_frames:
        return np.arange(first, stop, dtype=np.int64)
    return axis.segment_picks(first, stop, num_frames, strategy, rng, start_time, end_time)
