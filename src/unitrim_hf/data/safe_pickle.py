"""A pickle reader that only builds dicts, lists and strings.

MSVD's captions ship as `raw-captions.pkl` (`{video_id: [[token, ...], ...]}`).
`pickle.load` on a downloaded file can run arbitrary code, so we never call it: the
[`RestrictedUnpickler`] refuses every global lookup except the plain container
and string types, which is all such a file needs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from .annotation_checks import (
    MAX_CAPTION_CHARACTERS_PER_FILE,
    MAX_CAPTIONS_PER_FILE,
    MAX_CAPTIONS_PER_VIDEO,
    check_caption_length,
    require_text,
    short_repr,
)
from ..errors import BenchmarkFormatError, UnsafePickleError

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


def _string_of_text(source_name: str):
    """`str` as a caption pickle may apply it: to text (or UTF-8 bytes) only. `str` of a list or dict would expand
    a structure that shares one list many times (a few bytes of pickle) into gigabytes of text."""

    def text(value: Any = "", *rest: Any) -> str:
        if rest:
            raise UnsafePickleError(f"{source_name}: refusing to load the pickle because it calls str with {1 + len(rest)} arguments")
        if isinstance(value, str):
            return value
        if isinstance(value, (bytes, bytearray)):
            return bytes(value).decode("utf-8", errors="replace")
        raise UnsafePickleError(
            f"{source_name}: refusing to load the pickle because it applies str to a {type(value).__name__}; "
            "a caption file only converts text"
        )

    return text


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that rejects any global other than `dict`, `list` and `str` (the last applied to text only)."""

    def __init__(self, file: io.BufferedIOBase, source_name: str = "<pickle>") -> None:
        super().__init__(file, encoding="utf-8")
        self.source_name = source_name

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            if name in ("str", "unicode"):
                return _string_of_text(self.source_name)
            return {"dict": dict, "list": list}[name]
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
    """Read an MSVD-style caption pickle into `{video_id: [caption, ...]}`.

    Each caption in the file is a list of tokens (joined with one space) or already a string.
    Raises [`UnsafePickleError`] for a pickle that would build any other object and
    [`BenchmarkFormatError`] when the structure is not `dict[str, list[list[str] | str]]` or a limit of
    `annotation_checks` is passed (caption length, captions per video, captions per file):
    the limits are checked before any caption is joined, so a small pickle that references one list many times
    cannot expand into gigabytes.
    """
    path = Path(path)
    raw = load_restricted_pickle(path)
    if not isinstance(raw, dict):
        raise BenchmarkFormatError(f"{path}: expected a dict of video id -> captions, got {type(raw).__name__}")
    captions: dict[str, list[str]] = {}
    total, total_characters = 0, 0
    for video_id, video_captions in raw.items():
        if not isinstance(video_id, str) or not isinstance(video_captions, list):
            raise BenchmarkFormatError(
                f"{path}: entry {short_repr(video_id)} must map a string id to a list of captions, "
                f"got {type(video_id).__name__} -> {type(video_captions).__name__}"
            )
        place = f"video {video_id!r}"
        if len(video_captions) > MAX_CAPTIONS_PER_VIDEO:
            raise BenchmarkFormatError(
                f"{path}: {place} has {len(video_captions)} captions, more than the limit of {MAX_CAPTIONS_PER_VIDEO}"
            )
        total += len(video_captions)
        if total > MAX_CAPTIONS_PER_FILE:
            raise BenchmarkFormatError(f"{path}: more than {MAX_CAPTIONS_PER_FILE} captions in all")
        joined = []
        for position, caption in enumerate(video_captions):
            if isinstance(caption, str):
                joined.append(require_text(caption, path, f"{place} caption {position}", "caption"))
            elif isinstance(caption, list) and all(isinstance(token, str) for token in caption):
                length = sum(len(token) for token in caption) + max(len(caption) - 1, 0)
                check_caption_length(length, path, f"{place} caption {position}", "caption")
                joined.append(" ".join(caption))
            else:
                raise BenchmarkFormatError(
                    f"{path}: a caption of video {video_id!r} is neither a string nor a list of tokens: "
                    f"{type(caption).__name__} {short_repr(caption)}"
                )
        total_characters += sum(len(caption) for caption in joined)
        if total_characters > MAX_CAPTION_CHARACTERS_PER_FILE:
            raise BenchmarkFormatError(f"{path}: more than {MAX_CAPTION_CHARACTERS_PER_FILE} caption characters in all")
        captions[video_id] = joined
    return captions
