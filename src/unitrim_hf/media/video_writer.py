"""Write RGB uint8 frames to a video file with PyAV (used by tests and benchmarks)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

# Picture sizes the H.263 baseline encoder accepts (sub-QCIF, QCIF, CIF, 4CIF, 16CIF).
H263_LEGAL_SIZES = {(128, 96), (176, 144), (352, 288), (704, 576), (1408, 1152)}


def _as_fraction(fps: float | Fraction) -> Fraction:
    """Exact rational frame rate: 30000/1001 given as a float comes back as Fraction(30000, 1001)."""
    if isinstance(fps, Fraction):
        rate = fps
    else:
        rate = Fraction(fps).limit_denominator(10000)
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return rate


def default_codec(path: str | os.PathLike, width: int, height: int) -> str:
    """Pick an encoder available in this PyAV build for the container named by the file extension."""
    import av

    available = av.codecs_available
    extension = Path(path).suffix.lower()
    if extension in (".mp4", ".mov", ".mkv", ".m2ts", ".ts"):
        return "libx264" if "libx264" in available else "mpeg4"
    if extension == ".avi":
        return "mpeg4"
    if extension == ".webm":
        for codec in ("libvpx", "libvpx-vp9"):
            if codec in available:
                return codec
        raise ValueError(f"no VP8/VP9 encoder in this PyAV build, cannot write {path}")
    if extension == ".3gp":
        if (width, height) in H263_LEGAL_SIZES and "h263" in available:
            return "h263"
        return "mpeg4"
    raise ValueError(f"no default codec for extension {extension!r} of {path}; pass codec=")


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float | Fraction = 25.0,
    codec: str | None = None,
    *,
    gop_size: int | None = None,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    display_rotation: int | None = None,
) -> Path:
    """Encode frames into a video file.

    Args:
        path: output file; its extension selects the container (.mp4 .mov .mkv .m2ts .avi .webm .3gp).
        frames: (num_frames, height, width, 3) uint8 RGB; height and width must be even (yuv420p).
        fps: frame rate; fractional rates such as 30000/1001 are kept exact.
        codec: encoder name; chosen from the extension when None.
        gop_size: maximum distance between keyframes (encoder default when None); small values give seekable test
            clips with many keyframes.
        pts: presentation timestamp of each frame in `time_base` units (default `0, 1, 2, ...` at `1 / fps`);
            irregular steps make a variable-frame-rate file.
        time_base: unit of `pts` (default `1 / fps`).
        display_rotation: counter-clockwise rotation in degrees stored in the display matrix, as phones do (a
            phone held upright records -90: players turn the picture 90 degrees clockwise).

    Returns:
        The path written.
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape (num_frames, height, width, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    num_frames, height, width, _ = frames.shape
    if num_frames == 0:
        raise ValueError("frames is empty: nothing to write")
    if height % 2 or width % 2:
        raise ValueError(f"height and width must be even for yuv420p encoding, got {height}x{width}")

    if pts is not None and len(pts) != num_frames:
        raise ValueError(f"pts needs one timestamp per frame: {len(pts)} for {num_frames} frames")
    path = Path(path)
    rate = _as_fraction(fps)
    codec = codec or default_codec(path, width, height)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        if gop_size is not None:
            stream.codec_context.gop_size = int(gop_size)
        if display_rotation is not None:
            stream.set_display_rotation(display_rotation)
        time_base = time_base or 1 / rate
        stream.codec_context.time_base = time_base
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[index]), format="rgb24")
            frame.pts = index if pts is None else int(pts[index])
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
