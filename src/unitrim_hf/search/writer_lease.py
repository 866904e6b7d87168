"""One writer at a time per index: an exclusive `fcntl.flock` on a lock file in the index folder, held for a
whole indexing run (plan, encoding, commits, vector index).

Lance's optimistic commits do not make two `merge_insert`s keyed by path exclusive: two writers that both read
an index without a path both insert it (two appends never conflict), so every file of a folder indexed by two
runs at once was stored twice. Under the lease the second writer waits until the first is done, then plans
against what the first committed. The kernel drops the lock when its holder exits, however it ends (`kill -9`
included), so a lease is never stale; the lock file itself stays (removing it would let a third writer lock a
new file while the second holds the old one).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlparse

logger = logging.getLogger(__name__)

LEASE_FILE = ".unitrim-writer.lock"


def lease_path(location: str | os.PathLike) -> Path | None:
    """The lock file of the index at `location` (a folder or a `file://` URI); None for other object stores,
    where no lease is taken (one writer at a time is then the caller's duty)."""
    location = os.fspath(location)
    if "://" not in location:
        return Path(location).absolute() / LEASE_FILE
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)) / LEASE_FILE
    return None


@contextmanager
def writer_lease(location: str | os.PathLike) -> Iterator[None]:
    """
    Hold the writer lease of the index at `location` for the `with` block (the index folder is created if
    needed); a second writer logs that it waits and blocks until the first releases it.
    """
    path = lease_path(location)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): no lease
        fcntl = None
    if path is None or fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.warning("another writer is updating the index at %s; waiting for it to finish", path.parent)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


__all__ = ["LEASE_FILE", "lease_path", "writer_lease"]
