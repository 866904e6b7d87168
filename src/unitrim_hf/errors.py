"""Exception types raised by unitrim_hf."""

from __future__ import annotations

import os


class UniTriMError(Exception):
    """Base class of every error raised on purpose by unitrim_hf."""


class VideoDecodingError(UniTriMError, ValueError):
    """A video file could not be opened or decoded into the requested frames.

    Args:
        path: the file that failed.
        reason: a short human-readable explanation (missing file, no video stream, corrupt data, ...).
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path) if path is not None else None
        self.reason = reason
        super().__init__(f"cannot decode video {self.path!r}: {reason}")

    def __reduce__(self):
        # Keep the exception picklable (DataLoader workers send it across processes).
        return (type(self), (self.path, self.reason))


class ImageDecodingError(UniTriMError, ValueError):
    """An image file could not be opened or decoded (or is larger than the configured pixel limit).

    Args:
        path: the file that failed.
        reason: a short human-readable explanation.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path) if path is not None else None
        self.reason = reason
        super().__init__(f"cannot read image {self.path!r}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))
