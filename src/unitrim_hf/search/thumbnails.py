"""Keyframe thumbnails for search reports: decode one frame of a video (or read an image) into a base64 PNG."""

from __future__ import annotations

import base64
import io
import os

import numpy as np
from PIL import Image

from ..errors import UniTriMError
from .media_files import IMAGE

THUMBNAIL_SIZE = 160
# A frame is "at" a timestamp when it starts within this many seconds before it (float rounding of pts).
TIMESTAMP_TOLERANCE = 1e-3


def decode_frame_at(path: str | os.PathLike, timestamp: float) -> np.ndarray:
    """
    The RGB frame (H, W, 3) uint8 of the first video stream shown at `timestamp` seconds from the stream start:
    one seek to the keyframe before it, then decoding up to it.

    Raises:
        UniTriMError: the file cannot be opened or has no frame at that time.
    """
    import av

    try:
        with av.open(os.fspath(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise UniTriMError(f"{os.fspath(path)!r} has no video stream")
            stream = container.streams.video[0]
            time_base = float(stream.time_base)
            start = stream.start_time or 0
            target = start + int(max(timestamp, 0.0) / time_base)
            container.seek(target, backward=True, any_frame=False, stream=stream)
            last = None
            for frame in container.decode(stream):
                if frame.pts is not None and (frame.pts - start) * time_base > timestamp + TIMESTAMP_TOLERANCE:
                    break
                last = frame
            if last is None:
                raise UniTriMError(f"no frame of {os.fspath(path)!r} at {timestamp:.3f} s")
            return last.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, OSError) as error:
        raise UniTriMError(f"cannot decode a thumbnail of {os.fspath(path)!r}: {error}") from error


def thumbnail_png_base64(path: str | os.PathLike, kind: str, timestamp: float, size: int = THUMBNAIL_SIZE) -> str:
    """Base64 PNG (longest side `size` px) of an image, or of a video's frame at `timestamp` seconds."""
    if kind == IMAGE:
        try:
            with Image.open(path) as opened:
                picture = opened.convert("RGB")
        except OSError as error:
            raise UniTriMError(f"cannot read image {os.fspath(path)!r}: {error}") from error
    else:
        picture = Image.fromarray(decode_frame_at(path, timestamp))
    picture.thumbnail((size, size))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


__all__ = ["decode_frame_at", "thumbnail_png_base64"]
