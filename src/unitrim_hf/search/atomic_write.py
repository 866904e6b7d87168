"""Write a file in one step: a temporary file in the same folder, flushed to disk, then renamed over the target.

A failure at any point (an encoding error, a full disk, a kill) leaves an earlier file at that path untouched. The
file gets the mode an ordinary `open(path, "w")` gives it (0o666 less the process's umask, e.g. 0o644), not the
0o600 of the temporary file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process's umask: from `/proc/self/status` where Linux shows it, else by setting it and setting it back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Replace `path` with `data` atomically (POSIX rename semantics), with mode 0o666 less the umask; returns the
    path."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0o600 whatever the umask: give it the mode a plain write would.
        os.chmod(temporary, 0o666 & ~current_umask())
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


__all__ = ["current_umask", "write_bytes_atomically", "write_text_atomically"]
