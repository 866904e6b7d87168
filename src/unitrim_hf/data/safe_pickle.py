"""A pickle reader that only builds dicts, lists and strings.

MSVD's captions ship as ``raw-captions.pkl`` (``{video_id: [[token, ...], ...]}``).
``pickle.load`` on a downloaded file can run arbitrary code, so we never call it: the
:class:`RestrictedUnpickler` refuses every global lookup except the plain container
and string types, which is all such a file needs.
"""

from __future__ import annotations

import io
import pickle
import reprlib
from pathlib import Path
from typing import Any

from .exceptions import BenchmarkFormatError, UnsafePickleError

# (module, name) pairs a caption pickle may legitimately reference. Pickles of plain
# dict/list/str normally reference nothing at all (they use dedicated opcodes); the
# builtins appear only in unusual protocol-0/1 encodings.
_ALLOWED_GLOBALS = frozenset(
    {
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "str"),
        ("__builtin__", "dict"),
        ("__builtin__", "list"),
        ("__builtin__", "str"),
        ("__builtin__", "unicode"),
    }
)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that rejects any global other than ``dict``, ``list`` and ``str``."""

    def __init__(self, file: io.BufferedIOBase, source_name: str = "<pickle>") -> None:
        super().__init__(file, encoding="utf-8")
        self.source_name = source_name

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return {"dict": dict, "list": list, "str": str, "unicode": str}[name]
        raise UnsafePickleError(
            f"{self.source_name}: refusing to load the pickle because it references "
            f"'{module}.{name}'; only dicts, lists and strings are allowed in a caption file"
        )

    def persistent_load(self, persistent_id: Any) -> Any:
        raise UnsafePickleError(
            f"{self.source_name}: refusing to load the pickle because it uses persistent ids"
        )


def load_restricted_pickle(path: str | Path) -> Any:
    """Read a pickle file that may only contain dicts, lists and strings (and numbers)."""
    path = Path(path)
    with open(path, "rb") as handle:
        try:
            return RestrictedUnpickler(handle, source_name=str(path)).load()
        except UnsafePickleError:
            raise
        except Exception as error:  # truncated or corrupt file
            raise BenchmarkFormatError(f"{path}: not a readable pickle ({error})") from error


def load_caption_pickle(path: str | Path) -> dict[str, list[str]]:
    """Read an MSVD-style caption pickle into ``{video_id: [caption, ...]}``.

    Each caption in the file is a list of tokens (joined with one space) or already a string.
    Raises :class:`UnsafePickleError` for a pickle that would build any other object and
    :class:`BenchmarkFormatError` when the structure is not ``dict[str, list[list[str] | str]]``.
    """
    raw = load_restricted_pickle(path)
    if not isinstance(raw, dict):
        raise BenchmarkFormatError(f"{path}: expected a dict of video id -> captions, got {type(raw).__name__}")
    captions: dict[str, list[str]] = {}
    for video_id, video_captions in raw.items():
        if not isinstance(video_id, str) or not isinstance(video_captions, list):
            raise BenchmarkFormatError(
                f"{path}: entry {video_id!r} must map a string id to a list of captions, "
                f"got {type(video_id).__name__} -> {type(video_captions).__name__}"
            )
        joined = []
        for caption in video_captions:
            if isinstance(caption, str):
                joined.append(caption)
            elif isinstance(caption, list) and all(isinstance(token, str) for token in caption):
                joined.append(" ".join(caption))
            else:
                # reprlib bounds the nesting depth and length: a plain repr of a deeply nested list would raise
                # RecursionError instead of this message.
                raise BenchmarkFormatError(
                    f"{path}: a caption of video {video_id!r} is neither a string nor a list of tokens: "
                    f"{type(caption).__name__} {_short_repr(caption)}"
                )
        captions[video_id] = joined
    return captions


def _short_repr(value: Any) -> str:
    """A repr of at most a few levels and ~80 characters, safe on arbitrarily deep nesting."""
    shortener = reprlib.Repr()
    shortener.maxlevel, shortener.maxlist, shortener.maxstring, shortener.maxother = 3, 5, 60, 60
    return shortener.repr(value)
