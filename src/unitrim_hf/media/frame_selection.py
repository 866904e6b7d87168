"""Which frames of a video to take: uniform, CLIP4Clip-fps and random selection as pure functions.

Two views of a video's frames:

- *frame-rate grid*: ``num_video_frames`` frames at a constant ``fps``; frame ``i`` is shown at ``i / fps`` seconds.
  Selections return frame indices and follow CLIP4Clip exactly (``int(fps)`` for the "fps" strategy).
- *timestamps*: the sorted presentation times of the frames (variable frame rate: phone and screen recordings,
  animated GIFs). Selections pick target times and return the index of the frame shown at each time, so a frame
  shown three times longer is three times as likely to be taken.

Nothing here decodes; the cost of every function is bounded by the number of frames returned (or, for the
timestamp view, by the length of ``frame_times``), never by the duration a file header claims.
"""

from __future__ import annotations

import math

import numpy as np

STRATEGIES = ("uniform", "fps", "random")
SLICE_POSITIONS = ("head", "tail", "uniform")
# Rounding slack for time -> frame conversions (1 microsecond-level float noise).
TIME_EPSILON = 1e-6


def check_clip_bounds(start_time: float | None, end_time: float | None) -> None:
    """Raise ValueError unless ``0 <= start_time < end_time`` (either may be None)."""
    if start_time is not None and start_time < 0:
        raise ValueError(f"start_time must be >= 0, got {start_time}")
    if start_time is not None and end_time is not None and end_time <= start_time:
        raise ValueError(f"end_time ({end_time}) must be greater than start_time ({start_time})")


def slice_selection(count: int, num_frames: int, slice_position: str) -> np.ndarray:
    """Positions (into ``count`` candidates) kept when there are more than ``num_frames``: CLIP4Clip's slicing."""
    if count <= num_frames:
        return np.arange(count, dtype=np.int64)
    if slice_position == "head":
        return np.arange(num_frames, dtype=np.int64)
    if slice_position == "tail":
        return np.arange(count - num_frames, count, dtype=np.int64)
    return np.linspace(0, count - 1, num_frames, dtype=int).astype(np.int64)


def segment_indices(
    first: int, stop: int, num_frames: int, strategy: str, rng: np.random.Generator | None = None
) -> np.ndarray:
    """At most ``num_frames`` indices of ``first..stop-1``: all of them, segment centres ("uniform") or one random
    index per equal segment ("random")."""
    count = stop - first
    if count <= num_frames:
        return np.arange(first, stop, dtype=np.int64)
    if strategy == "uniform":
        centres = (np.arange(num_frames) + 0.5) * count / num_frames
        return first + np.floor(centres).astype(np.int64)
    bounds = first + np.floor(np.arange(num_frames + 1) * count / num_frames).astype(np.int64)
    return rng.integers(bounds[:-1], bounds[1:]).astype(np.int64)


def grid_frame_range(num_video_frames: int, fps: float, start_time: float | None, end_time: float | None) -> tuple[int, int]:
    """``(first, stop)``: the frames of the grid shown in ``[start_time, end_time)``."""
    first = 0 if start_time is None else max(0, math.ceil(start_time * fps - TIME_EPSILON))
    stop = num_video_frames if end_time is None else min(num_video_frames, math.ceil(end_time * fps - TIME_EPSILON))
    if first >= num_video_frames:
        raise ValueError(
            f"start_time {start_time} s is past the end of the video ({num_video_frames} frames at {fps:g} fps)"
        )
    if stop <= first:
        raise ValueError(f"no frame is shown between start_time {start_time} s and end_time {end_time} s")
    return first, stop


def clip4clip_grid_indices(
    num_video_frames: int,
    fps: float,
    frames_per_second: int,
    num_frames: int,
    slice_position: str,
    start_time: float | None = None,
    end_time: float | None = None,
) -> np.ndarray:
    """CLIP4Clip's frame choice: ``frames_per_second`` frames of every second ``start..end`` (inclusive) at offsets of
    ``int(fps)`` frames, stopping at the first index past the video, then sliced to ``num_frames``.

    Computed in closed form: the cost does not grow with the number of seconds.
    """
    whole_fps = int(fps)  # CLIP4Clip truncates (29.97 -> 29)
    if whole_fps < 1:
        raise ValueError(f"the 'fps' strategy needs a video frame rate >= 1, got {fps}")
    if frames_per_second > whole_fps:
        raise ValueError(f"frames_per_second={frames_per_second} exceeds the video's whole frame rate {whole_fps}")
    offsets = np.arange(0, whole_fps, max(whole_fps // frames_per_second, 1))[:frames_per_second]
    total_seconds = (num_video_frames + whole_fps - 1) // whole_fps
    first_second = 0 if start_time is None else start_time
    last_second = total_seconds if end_time is None else min(end_time, total_seconds)
    num_seconds = max(0, math.ceil(last_second + 1 - first_second))  # len(np.arange(first_second, last_second + 1))

    def index_at(position: np.ndarray) -> np.ndarray:
        second = first_second + position // len(offsets)
        return (second * whole_fps).astype(np.int64) + offsets[position % len(offsets)]

    # The candidate sequence increases, and CLIP4Clip stops at its first index past the video: binary-search it.
    low, high = 0, num_seconds * len(offsets)
    while low < high:
        middle = (low + high) // 2
        if index_at(np.asarray([middle]))[0] < num_video_frames:
            low = middle + 1
        else:
            high = middle
    count = low
    if count == 0:
        duration = num_video_frames / fps
        raise ValueError(
            f"no frame lies in the time range [{first_second}, {last_second}] s of a {duration:.2f} s video "
            "(start_time is past the end of the video)"
        )
    return index_at(slice_selection(count, num_frames, slice_position))


def frames_shown_at(frame_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the frame on screen at each time: the last frame whose presentation time is <= the time."""
    shown = np.searchsorted(frame_times, np.asarray(times) + TIME_EPSILON, side="right") - 1
    return np.clip(shown, 0, len(frame_times) - 1).astype(np.int64)


def timed_frame_range(
    frame_times: np.ndarray, video_end: float, start_time: float | None, end_time: float | None
) -> tuple[int, int, float, float]:
    """``(first, stop, range_start, range_end)``: frames starting in ``[start_time, end_time)`` and the clip's bounds."""
    range_start = 0.0 if start_time is None else float(start_time)
    range_end = video_end if end_time is None else min(float(end_time), video_end)
    if range_start >= video_end:
        raise ValueError(f"start_time {start_time} s is past the end of the video ({video_end:.3f} s)")
    first = int(np.searchsorted(frame_times, range_start - TIME_EPSILON, side="left"))
    stop = int(np.searchsorted(frame_times, range_end - TIME_EPSILON, side="left"))
    if stop <= first:
        # The range lies inside one long frame: that frame is what is shown.
        first = int(frames_shown_at(frame_times, np.asarray([range_start]))[0])
        stop = first + 1
    return first, stop, range_start, range_end


def timed_segment_indices(
    frame_times: np.ndarray,
    video_end: float,
    num_frames: int,
    strategy: str,
    start_time: float | None = None,
    end_time: float | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """"uniform"/"random" on timestamps: every frame of the range when it has at most ``num_frames``, else the frames
    shown at the centres of (or at a random time in) ``num_frames`` equal time segments. Sorted; a long frame can
    be taken more than once."""
    first, stop, range_start, range_end = timed_frame_range(frame_times, video_end, start_time, end_time)
    if stop - first <= num_frames:
        return np.arange(first, stop, dtype=np.int64)
    edges = range_start + np.arange(num_frames + 1) * (range_end - range_start) / num_frames
    if strategy == "uniform":
        times = (edges[:-1] + edges[1:]) / 2
    else:
        times = rng.uniform(edges[:-1], edges[1:])
    return np.clip(frames_shown_at(frame_times, times), first, stop - 1)


def clip4clip_timed_indices(
    frame_times: np.ndarray,
    video_end: float,
    frames_per_second: int,
    num_frames: int,
    slice_position: str,
    start_time: float | None = None,
    end_time: float | None = None,
) -> np.ndarray:
    """"fps" on timestamps: the frames shown at ``second + k / frames_per_second`` for every second ``start..end``
    (inclusive, as CLIP4Clip) before the end of the video, sliced to ``num_frames``."""
    first_second = 0.0 if start_time is None else float(start_time)
    last_second = math.ceil(video_end) if end_time is None else min(float(end_time), math.ceil(video_end))
    num_seconds = max(0, math.ceil(last_second + 1 - first_second))

    def time_at(position: np.ndarray) -> np.ndarray:
        return first_second + position // frames_per_second + (position % frames_per_second) / frames_per_second

    # The candidate times increase; keep those before the end of the video, found by binary search so that the cost
    # does not grow with the video's (possibly absurd) claimed end.
    low, high = 0, num_seconds * frames_per_second
    while low < high:
        middle = (low + high) // 2
        if time_at(np.asarray([middle]))[0] < video_end - TIME_EPSILON:
            low = middle + 1
        else:
            high = middle
    if low == 0:
        raise ValueError(
            f"no frame lies in the time range [{first_second:g}, {last_second:g}] s of a {video_end:.2f} s video "
            "(start_time is past the end of the video)"
        )
    return frames_shown_at(frame_times, time_at(slice_selection(low, num_frames, slice_position)))
