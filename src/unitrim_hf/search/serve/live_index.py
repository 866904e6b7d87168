"""One long-lived `Searcher` for a server: whole committed versions only, the latest one per query, and the
index's files (only those) addressable by a token.

Every query first asks the index for its latest committed version (one cheap listing of the items table's
versions, through a second handle that reads no rows) and moves the searcher there when it changed, so queries
go on being answered while `unitrim index` commits an update, each from one whole version (Lance commits are
atomic; a searcher never sees a partial write). Searches run one at a time under a lock (the model is not
thread-safe and the machine's cores are better spent on one query at a time).

Media files are served by token, never by a path taken from a request: a token is the first 32 hex digits of
SHA-256 of the file's path bytes, and only tokens of items of the version searched resolve to a file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass

from ..display import path_bytes
from ..index_table import IndexStore
from ..searcher import SearchResult, Searcher

logger = logging.getLogger(__name__)

TOKEN_HEX_DIGITS = 32


def media_token(path: str | os.PathLike) -> str:
    """The token of an indexed file: the first 32 hex digits of SHA-256 of its path bytes."""
    return hashlib.sha256(path_bytes(path)).hexdigest()[:TOKEN_HEX_DIGITS]


@dataclass
class IndexedFile:
    """A file of the index, as the media routes serve it: its path, kind ("video" / "image") and display name."""

    path: str
    kind: str
    display_path: str


class LiveIndex:
    """
    A `Searcher` kept on the latest committed version of its index.

    Args:
        searcher: the searcher (model loaded, index opened once).
        storage_options: LanceDB storage options of the index (object stores).
    """

    def __init__(self, searcher: Searcher, storage_options: dict | None = None) -> None:
        self.searcher = searcher
        self._watcher = IndexStore.open(searcher.store.location, storage_options=storage_options)
        self._lock = threading.Lock()
        self._files: dict[str, IndexedFile] | None = None
        self._files_version = -1

    @property
    def version(self) -> int:
        """The version searched now."""
        return self.searcher.version

    def _follow_latest(self) -> None:
        """Move the searcher to the latest committed version if a writer committed one (call under the lock)."""
        self._watcher.refresh()
        if self._watcher.version != self.searcher.version:
            logger.info("index version %d -> %d", self.searcher.version, self._watcher.version)
            self.searcher.refresh()

    def search(self, query: str, top_k: int, kind: str, num_candidates: int) -> tuple[list[SearchResult], list, int, int]:
        """
        Search the latest committed version.

        Returns:
            The results, the query's parsed triplets, the version searched and the number of items in it.

        Raises:
            ValueError: a bad query or setting (see `Searcher.search`).
            IndexFormatError: the index cannot be read.
        """
        with self._lock:
            self._follow_latest()
            encoded = self.searcher.encode(query)
            results = self.searcher.search(encoded, top_k, kind, num_candidates)
            return results, encoded.triplets, self.searcher.version, len(self.searcher)

    def file(self, token: str) -> IndexedFile | None:
        """The indexed file of `token` in the version searched now, or None (an unknown token, or a file that is
        no longer in the index)."""
        with self._lock:
            if self._files is None or self._files_version != self.searcher.version:
                self._files = {
                    media_token(item.path): IndexedFile(item.path, item.kind, item.display_path)
                    for item in self.searcher.store.items
                }
                self._files_version = self.searcher.version
            return self._files.get(token)


__all__ = ["IndexedFile", "LiveIndex", "TOKEN_HEX_DIGITS", "media_token"]
