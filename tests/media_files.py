"""Media files of the kinds users bring, made with PyAV and Pillow (no ffmpeg command line needed).

Frames carry their index painted as binary bars (`coded_frames`, read back by `read_index`), so a test can tell
which frame a decoder returned even after lossy compression.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

HEIGHT, WIDTH = 48, 64
BITS_PER_ROW = 8
BIT_WIDTH = WIDTH // BITS_PER_ROW


def coded_frames(num_frames: int) -> np.ndarray:
    """(num_frames, 48, 64, 3) uint8: frame i shows i in binary, 8-pixel-wide black/white bars (low byte on top)."""
    frames = np.zeros((num_frames, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for index in range(num_frames):
        for bit in range(2 * BITS_PER_ROW):
            if (index >> bit) & 1:
                row = slice(0, HEIGHT // 2) if bit < BITS_PER_ROW else slice(HEIGHT // 2, HEIGHT)
                column = (bit % BITS_PER_ROW) * BIT_WIDTH
                frames[index, row, column : column + BIT_WIDTH] = 255
    return frames


def read_index(frame: np.ndarray) -> int:
    """Inverse of coded_frames, reading the centre of each bar (robust to lossy compression)."""
    value = 0
    for bit in range(2 * BITS_PER_ROW):
        rows = slice(4, HEIGHT // 2 - 4) if bit < BITS_PER_ROW else slice(HEIGHT // 2 + 4, HEIGHT - 4)
        column = (bit % BITS_PER_ROW) * BIT_WIDTH
        if frame[rows, column + 2 : column + BIT_WIDTH - 2].mean() > 127:
            value |= 1 << bit
    return value


def slow_after_50_pts(num_frames: int) -> list[int]:
    """Timestamps (time base 1/75) of 25 fps for 50 frames, then every frame shown three times longer: ffmpeg's
    ``setpts='if(lt(N,50),PTS,PTS*3)'``."""
    return [3 * index if index < 50 else 150 + 9 * (index - 50) for index in range(num_frames)]


def patch_avi_frame_count(path: Path, claimed_frames: int) -> Path:
    """Overwrite the frame counts of an AVI header (main header dwTotalFrames, stream header dwLength)."""
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.find(b"strh") + 8 + 32, claimed_frames)
    struct.pack_into("<I", data, data.find(b"avih") + 8 + 16, claimed_frames)
    path.write_bytes(bytes(data))
    return path


def patch_matroska_duration(path: Path, claimed_milliseconds: float) -> Path:
    """Overwrite the segment Duration (EBML element 0x4489, a float in milliseconds) of a Matroska file."""
    data = bytearray(path.read_bytes())
    position = data.find(b"\x44\x89")
    size = data[position + 2] & 0x7F
    struct.pack_into(">d" if size == 8 else ">f", data, position + 3, claimed_milliseconds)
    path.write_bytes(bytes(data))
    return path


def patch_png_size(path: Path, width: int, height: int) -> Path:
    """Make a PNG's header claim ``width`` x ``height`` pixels (its CRC kept valid; the pixel data is not)."""
    data = bytearray(path.read_bytes())
    start = data.find(b"IHDR")
    struct.pack_into(">II", data, start + 4, width, height)
    struct.pack_into(">I", data, start + 17, zlib.crc32(bytes(data[start : start + 17])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def marker_image(height: int = 48, width: int = 64) -> np.ndarray:
    """(height, width, 3) uint8 black with a white 8x8 square in the top-left corner (shows any rotation)."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:8, :8] = 255
    return image


def save_exif_rotated_jpeg(path: Path, image: np.ndarray, orientation: int = 6) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(image).save(path, format="JPEG", quality=95, exif=exif)
    return path
