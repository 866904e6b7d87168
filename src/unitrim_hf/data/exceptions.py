"""Errors raised while reading benchmark annotation files."""

from __future__ import annotations

from ..errors import UniTriMError


class BenchmarkFormatError(UniTriMError, ValueError):
    """An annotation file of a benchmark is absent or does not have the documented layout.

    The message always names the file and, where it applies, the field that is wrong.
    """


class UnsafePickleError(BenchmarkFormatError):
    """A pickle asked to build an object other than a dict, list or string.

    Raised by :func:`unitrim_hf.data.safe_pickle.load_restricted_pickle` before any such
    object is created, so a crafted file can never run code.
    """
