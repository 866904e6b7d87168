"""Opening media files only when they are regular files: a FIFO (or a device) opened for reading blocks until a
writer appears, so a named pipe given as an image, or swapped in after a folder was scanned, would hang the caller
forever. The check and the open are one step: the file is opened without blocking and checked on its descriptor."""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from ..errors import ImageDecodingError

_NON_BLOCKING = getattr(os, "O_NONBLOCK", 0)


def open_regular_file(path: str | os.PathLike, error_class: type[Exception] = ImageDecodingError) -> BinaryIO:
    """`path` opened for binary reading, after checking on the opened descriptor that it is a regular file.

    Raises:
        error_class: (`error_class(path, reason)`) missing, unreadable, or not a regular file (a FIFO, socket,
            device or folder).
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | _NON_BLOCKING)
    except OSError as error:
        raise error_class(path, f"cannot read file ({error.strerror or error})") from error
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise error_class(path, f"not a regular file ({_kind_of(mode)})")
        if _NON_BLOCKING:
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _kind_of(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"))
    return next((name for check, name in kinds if check(mode)), "a special file")
