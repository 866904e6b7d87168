"""Errors of the search index: unreadable or corrupt data, and an index built by another model."""

from __future__ import annotations

import os

from ..errors import UniTriMError
from .model_fingerprint import ModelFingerprint


class IndexFormatError(UniTriMError):
    """An index is missing, unreadable, corrupt (a row whose checksum fails) or has an unexpected layout."""


class IndexModelMismatchError(UniTriMError):
    """The index was built by another model (different configuration or weights) than the one given."""

    def __init__(self, index_uri: str | os.PathLike, built_by: ModelFingerprint, given: ModelFingerprint):
        self.index_uri = os.fspath(index_uri)
        self.built_by = built_by
        self.given = given
        what = []
        if built_by.config_sha256 != given.config_sha256:
            what.append("configuration")
        if built_by.weights_sha256 != given.weights_sha256:
            what.append("weights")
        super().__init__(
            f"the index at {self.index_uri!r} was built by {built_by.describe()}, but the model given is "
            f"{given.describe()}: their {' and '.join(what)} differ. Search it with the model that built it, or "
            f"rebuild the index with this model (`unitrim index FOLDER --model PATH --index NEW_DIR`)."
        )

    def __reduce__(self):
        return (type(self), (self.index_uri, self.built_by, self.given))


__all__ = ["IndexFormatError", "IndexModelMismatchError"]
