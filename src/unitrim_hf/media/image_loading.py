"""Image files and PIL images into (height, width, 3) uint8 RGB arrays, as an image viewer shows them.

- EXIF orientation is applied (a phone photo stored sideways comes back upright);
- 16-bit and 32-bit integer grayscale (`I;16`, `I`) is scaled to 8 bits (65535 -> 255) instead of clipped;
- the pixel count is checked from the header before decoding: a JPEG over `max_pixels` is decoded at 1/2, 1/4
  or 1/8 size by the JPEG decoder itself (draft mode), any other image over it is refused with
  [`ImageDecodingError`], so one file never costs more than `max_pixels` of memory.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
from PIL import Image, ImageOps

from ..errors import ImageDecodingError
from .regular_files import open_regular_file

# 50 megapixels: 8000 x 6000 (48 MP phone cameras) passes; about 150 MB as uint8 RGB.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
# libjpeg decodes directly at these reductions (draft mode).
JPEG_DRAFT_REDUCTIONS = (2, 4, 8)
EXIF_ORIENTATION = 0x0112
_WIDE_INTEGER_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def pil_image_to_rgb(image: Image.Image) -> np.ndarray:
    """(height, width, 3) uint8 RGB of a PIL image, EXIF orientation applied and wide grayscale scaled to 8 bits."""
    if image.getexif().get(EXIF_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    if image.mode in _WIDE_INTEGER_MODES:
        levels = np.asarray(image).astype(np.float64)
        gray = np.clip(np.round(levels / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == "F":
        gray = np.clip(np.round(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"))


def load_image_file(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """(height, width, 3) uint8 RGB of an image file, as a viewer shows it.

    Args:
        path: the image file.
        max_pixels: largest width x height decoded; None: no limit of ours (Pillow's decompression-bomb limit,
            `PIL.Image.MAX_IMAGE_PIXELS`, still applies).

    Raises:
        ImageDecodingError: missing or unreadable file, a decompression bomb, or more pixels than `max_pixels`
            (JPEGs are decoded at reduced size first).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides below
            with open_regular_file(path) as file, Image.open(file) as opened:
                _fit_pixel_limit(opened, path, max_pixels)
                return pil_image_to_rgb(opened)
    except ImageDecodingError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageDecodingError(path, f"too many pixels, refused as a decompression bomb ({error})") from error
    except (OSError, ValueError, SyntaxError) as error:  # Pillow reports broken files with all three
        raise ImageDecodingError(path, f"not a readable image ({type(error).__name__}: {error})") from error


def _fit_pixel_limit(opened: Image.Image, path, max_pixels: int | None) -> None:
    width, height = opened.size
    if max_pixels is None or width * height <= max_pixels:
        return
    if opened.format == "JPEG":
        for reduction in JPEG_DRAFT_REDUCTIONS:
            if math.ceil(width / reduction) * math.ceil(height / reduction) <= max_pixels:
                opened.draft(opened.mode, (width // reduction, height // reduction))
                if opened.size[0] * opened.size[1] <= max_pixels:
                    return
    raise ImageDecodingError(
        path,
        f"{width}x{height} = {width * height} pixels is over the limit of {max_pixels} "
        "(raise max_image_pixels to read it, at about 3 bytes per pixel)",
    )
