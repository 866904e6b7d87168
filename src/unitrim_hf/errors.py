"""Every exception type unitrim_hf raises on purpose, in one place.

All derive from `UniTriMError`; most also from the built-in type a caller would catch for that kind of failure
(`ValueError` for bad input, `LookupError` for missing data). Each message names the file, field or argument at
fault. Imports nothing heavy: the command-line tools raise these before torch loads.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .search.model_fingerprint import ModelFingerprint


class UniTriMError(Exception):
    """Base class of every error raised on purpose by unitrim_hf."""


# ---------------------------------------------------------------------------------------------- media


class VideoDecodingError(UniTriMError, ValueError):
    """
    A video file could not be opened or decoded into the requested frames.

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
    """
    An image file could not be opened or decoded (or is larger than the configured pixel limit).

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


# ---------------------------------------------------------------------------------------------- processor


class TaggerDataMissingError(UniTriMError, LookupError):
    """NLTK's tagger data is needed by the triplet parser's `backend="nltk"` and is not installed."""


# ---------------------------------------------------------------------------------------------- models


class MissingModelFolderError(UniTriMError, FileNotFoundError):
    """
    A model argument looks like a local folder (see `unitrim_hf.model_folders.looks_like_local_path`) and no such
    folder exists: reported as what it is, not as a Hub problem.

    Args:
        path: the folder as given.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        super().__init__(f"no such model folder: {self.path}")

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):
        return (type(self), (self.path,))


class CheckpointMismatchError(UniTriMError, ValueError):
    """
    A saved model does not hold what its configuration describes: its `config.json` contradicts its weights, or
    tensors are missing, of another shape or unexpected. The library's tools (`unitrim-eval`, `unitrim index`,
    `unitrim search`) refuse such a checkpoint instead of running with freshly initialized weights.

    Args:
        path: the model folder or Hub id.
        reason: what is wrong, naming the configuration field or the tensors.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"cannot load the model at {self.path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


# ---------------------------------------------------------------------------------------------- benchmarks


class BenchmarkFormatError(UniTriMError, ValueError):
    """
    An annotation file of a benchmark is absent or does not have the documented layout.

    The message always names the file and, where it applies, the field that is wrong.
    """


class UnsafePickleError(BenchmarkFormatError):
    """
    A pickle asked to build an object other than a dict, list or string.

    Raised by `unitrim_hf.data.safe_pickle.load_restricted_pickle` before any such object is created, so a crafted
    file can never run code.
    """


class FrameCacheMismatchError(UniTriMError, ValueError):
    """The output folder already holds a frame cache made with other settings or other videos."""


# ---------------------------------------------------------------------------------------------- training


class TrainingArgumentError(UniTriMError, ValueError):
    """
    A command-line argument (or `--config` entry) is invalid; the message names it. `train.py` prints it as one
    line and exits with status 2, as argparse does.
    """


class CheckpointError(UniTriMError):
    """A checkpoint to resume from is missing, incomplete or damaged."""


class NonFiniteLossError(UniTriMError, FloatingPointError):
    """The training loss became NaN or infinite; the message names the step, batch and video ids."""


class UnsupportedDistributionError(UniTriMError, RuntimeError):
    """The accelerate configuration shards the model in a way the trainer does not support yet."""


class RecipeError(UniTriMError, ValueError):
    """A comparison recipe is malformed; the message names the file and the field."""


# ---------------------------------------------------------------------------------------------- search


class IndexFormatError(UniTriMError):
    """An index is missing, unreadable, corrupt (a row whose checksum fails) or has an unexpected layout."""


class IndexWriteError(UniTriMError, OSError):
    """An index could not be written (a full disk, a read-only folder); it keeps its last committed version."""


class IndexModelMismatchError(UniTriMError):
    """
    The index was built by another model (different configuration or weights) than the one given.

    Args:
        index_uri: the index.
        built_by, given: the `ModelFingerprint` of the model that built the index and of the one given.
    """

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


__all__ = [
    "BenchmarkFormatError",
    "CheckpointError",
    "CheckpointMismatchError",
    "FrameCacheMismatchError",
    "ImageDecodingError",
    "IndexFormatError",
    "IndexModelMismatchError",
    "MissingModelFolderError",
    "NonFiniteLossError",
    "RecipeError",
    "TaggerDataMissingError",
    "TrainingArgumentError",
    "UniTriMError",
    "UnsafePickleError",
    "UnsupportedDistributionError",
    "VideoDecodingError",
]
