"""Keyframe thumbnails for search reports: decode one frame of a video (or read an image) into a base64 PNG."""

from __future__ import annotations

import base64
import io
import os

import numpy as np
from PIL import Image

from ..media.image_loading import load_image_file
from ..media.video_decoding import decode_frame_at as decode_video_frame_at
from ..media.media_files import IMAGE

THUMBNAIL_SIZE = 160


def decode_frame_at(path: str | os.PathLike, timestamp: float) -> np.ndarray:
    """
    The RGB frame (H, W, 3) uint8, as a player shows it, of the first video stream on screen at `timestamp` seconds
    from the stream start (MPEG-TS and variable frame rate included).

    Raises:
        UniTriMError: the file cannot be opened or has no decodable frame at that time.
    """
    image, _ = decode_video_frame_at(path, timestamp)
    return image


def thumbnail_png_base64(path: str | os.PathLike, kind: str, timestamp: float, size: int = THUMBNAIL_SIZE) -> str:
    """Base64 PNG (longest side `size` px) of an image, or of a video's frame at `timestamp` seconds."""
    if kind == IMAGE:
        picture = Image.fromarray(load_image_file(path))
    else:
        picture = Image.fromarray(decode_frame_at(path, timestamp))
    picture.thumbnail((size, size))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


__all__ = ["decode_frame_at", "thumbnail_png_base64"]
