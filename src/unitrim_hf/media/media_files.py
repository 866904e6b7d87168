"""Find the videos and images in a folder by their content (magic bytes, then Pillow / PyAV probing).

The file extension is never trusted on its own: a text file renamed `.mp4` is listed as skipped, a JPEG without
extension is found. Every file that is not indexable is reported with a reason; nothing here raises for a bad
file.
"""

from __future__ import annotations

import os
import stat as stat_module
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import ImageDecodingError
from .regular_files import open_regular_file

VIDEO = "video"
IMAGE = "image"
MEDIA_KINDS = (VIDEO, IMAGE)

# Bytes read from the start of each file to recognize its container.
HEADER_SIZE = 64

# PyAV container names that are not real video containers (FFmpeg would also "open" text and still images).
NON_VIDEO_FORMATS = {"tty", "image2", "image2pipe", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "gif"}


@dataclass(frozen=True)
class MediaFile:
    """A file recognized as a video or an image.

    Args:
        path: absolute path.
        kind: "video" or "image".
        size: size in bytes when scanned.
        mtime_ns: modification time (nanoseconds) when scanned; with `size`, tells whether it changed later.
    """

    path: Path
    kind: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class SkippedFile:
    """A file that is not indexed, and why (not media, unreadable, corrupt, ...)."""

    path: Path
    reason: str
    size: int = -1
    mtime_ns: int = -1


@dataclass
class MediaScan:
    """The result of scanning a folder: indexable files (sorted by path) and the others."""

    media: list[MediaFile]
    skipped: list[SkippedFile]


def _header_kind(header: bytes) -> str | None:
    """"video", "image" or None from the first bytes of a file (well-known container signatures)."""
    if header.startswith(b"\x89PNG\r\n\x1a\n") or header.startswith(b"\xff\xd8\xff"):
        return IMAGE
    if header[:6] in (b"GIF87a", b"GIF89a") or header.startswith(b"BM"):
        return IMAGE
    if header[:4] in (b"II*\x00", b"MM\x00*"):
        return IMAGE
    if header.startswith(b"RIFF") and header[8:12] == b"WEBP":
        return IMAGE
    if header[4:8] == b"ftyp":
        brand = header[8:12]
        # HEIF/AVIF stills share the ISO base media container with MP4.
        return IMAGE if brand in (b"heic", b"heix", b"mif1", b"avif") else VIDEO
    if header.startswith(b"RIFF") and header[8:12] == b"AVI ":
        return VIDEO
    if header.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska / WebM
        return VIDEO
    if header.startswith(b"\x00\x00\x01\xba") or header.startswith(b"FLV"):
        return VIDEO
    if header.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):  # ASF / WMV
        return VIDEO
    if header.startswith(b"OggS"):
        return VIDEO
    if len(header) > 0 and header[0] == 0x47:  # MPEG-TS sync byte (confirmed by probing below)
        return VIDEO
    return None


def _probe_image(path: Path) -> tuple[str | None, bool]:
    """(None when Pillow reads the image's header and data, otherwise the reason; whether it has several frames,
    like an animated GIF, which the library reads as a video)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            animated = bool(getattr(image, "is_animated", False))
            image.verify()
        return None, animated
    except Exception as error:  # Pillow raises many unrelated types for broken files
        return f"not a readable image ({type(error).__name__}: {error})", False


def _probe_video(path: Path) -> str | None:
    """None when PyAV opens the file as a container with a video stream, otherwise the reason."""
    import av

    try:
        with av.open(os.fspath(path), metadata_errors="ignore") as container:
            if container.format.name in NON_VIDEO_FORMATS:
                return f"not a video container (FFmpeg sees {container.format.name!r})"
            if not container.streams.video:
                kinds = sorted({stream.type for stream in container.streams}) or ["none"]
                return f"no video stream (streams: {', '.join(kinds)})"
        return None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as error:
        return f"not a readable video ({error})"


def classify_file(path: str | os.PathLike) -> MediaFile | SkippedFile:
    """
    Decide whether `path` is an indexable video or image by its content.

    The header's signature picks the probe (Pillow for images, PyAV for videos); an unrecognized header is tried
    with Pillow, then PyAV. An animated image (GIF) is a video. The probe only checks the file opens: a video that fails later while decoding is
    reported by the indexer.
    """
    file = Path(path).absolute()
    try:
        with open_regular_file(file) as handle:  # a FIFO swapped in after the scan would block open() forever
            stat = os.fstat(handle.fileno())
            header = handle.read(HEADER_SIZE)
    except ImageDecodingError as error:
        return SkippedFile(file, error.reason)
    except OSError as error:
        return SkippedFile(file, f"cannot read file ({error.strerror or error})")
    size, mtime_ns = stat.st_size, stat.st_mtime_ns
    if size == 0:
        return SkippedFile(file, "empty file (0 bytes)", size, mtime_ns)

    kind = _header_kind(header)
    if kind == IMAGE:
        reason, animated = _probe_image(file)
        if reason is not None:
            return SkippedFile(file, reason, size, mtime_ns)
        # An animated GIF is a video (all its frames, with their durations), as for the processor.
        return MediaFile(file, VIDEO if animated else IMAGE, size, mtime_ns)
    if kind == VIDEO:
        reason = _probe_video(file)
        return MediaFile(file, VIDEO, size, mtime_ns) if reason is None else SkippedFile(file, reason, size, mtime_ns)
    reason, animated = _probe_image(file)
    if reason is None:
        return MediaFile(file, VIDEO if animated else IMAGE, size, mtime_ns)
    if _probe_video(file) is None:
        return MediaFile(file, VIDEO, size, mtime_ns)
    return SkippedFile(file, "not a video or image (unrecognized content)", size, mtime_ns)


def _walk(folder: str | os.PathLike, exclude: Iterable[str | os.PathLike]) -> tuple[list[Path], list[Path]]:
    """(regular files, other entries: FIFOs, sockets, devices, dangling links) under `folder`, recursively, each
    sorted; hidden entries and `exclude` folders left out."""
    root = Path(folder)
    if not root.is_dir():
        from ..errors import UniTriMError

        raise UniTriMError(f"{str(root)!r} is not a folder")
    excluded = {Path(entry).resolve() for entry in exclude}
    files: list[Path] = []
    special: list[Path] = []
    for directory, subdirectories, names in os.walk(root):
        current = Path(directory)
        subdirectories[:] = sorted(
            name for name in subdirectories
            if not name.startswith(".") and (current / name).resolve() not in excluded
        )
        for name in names:
            if not name.startswith("."):
                (files if (current / name).is_file() else special).append(current / name)
    return sorted(path.absolute() for path in files), sorted(path.absolute() for path in special)


def iter_files(folder: str | os.PathLike, exclude: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Every regular file under `folder`, recursively, sorted; hidden entries and `exclude` folders left out."""
    return _walk(folder, exclude)[0]


def special_entry_reason(path: Path) -> str:
    """Why a folder entry that is not a regular file is not indexed (a FIFO would block its reader forever)."""
    try:
        mode = path.stat().st_mode  # what a link points to
    except FileNotFoundError:
        return "a symbolic link to a missing file" if path.is_symlink() else "the file was removed during the scan"
    except OSError as error:
        return f"cannot read file ({error.strerror or error})"
    kinds = ((stat_module.S_ISFIFO, "a FIFO"), (stat_module.S_ISSOCK, "a socket"),
             (stat_module.S_ISCHR, "a character device"), (stat_module.S_ISBLK, "a block device"))
    return "not a regular file (" + next((name for check, name in kinds if check(mode)), "a special file") + ")"


def scan_folder(folder: str | os.PathLike, exclude: Iterable[str | os.PathLike] = ()) -> MediaScan:
    """Classify every file under `folder` (recursively) into indexable media and skipped files; FIFOs, sockets,
    devices and dangling links are skipped files with their reason."""
    media: list[MediaFile] = []
    skipped: list[SkippedFile] = []
    files, special = _walk(folder, exclude)
    for path in files:
        entry = classify_file(path)
        (media if isinstance(entry, MediaFile) else skipped).append(entry)
    skipped += [SkippedFile(path, special_entry_reason(path)) for path in special]
    return MediaScan(media, sorted(skipped, key=lambda entry: entry.path))


__all__ = ["IMAGE", "MEDIA_KINDS", "VIDEO", "MediaFile", "MediaScan", "SkippedFile", "classify_file", "iter_files", "scan_folder"]
