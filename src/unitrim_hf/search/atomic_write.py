"""Write a file in one step: a temporary file in the same folder, flushed to disk, then renamed over the target.

A failure at any point (an encoding error, a full disk, a kill) leaves an earlier file at that path untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Replace `path` with `data` atomically (POSIX rename semantics); returns the path."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    return path


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """`write_bytes_atomically` of `text` encoded as UTF-8 (encoded first: an encoding error writes nothing)."""
    return write_bytes_atomically(path, text.encode("utf-8"))


__all__ = ["write_bytes_atomically", "write_text_atomically"]
