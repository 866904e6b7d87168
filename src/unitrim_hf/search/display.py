"""File names as safe display text: undecodable bytes escaped, control and bidi-override characters neutralised.

A path read from disk may hold bytes that are not UTF-8 (Python keeps them as lone surrogates, PEP 383) and
characters that change how text is shown: U+202E RIGHT-TO-LEFT OVERRIDE turns `evil\u202egpj.exe` into what
reads as `evilexe.jpg`. Reports, tables and HTML pages show `display_text(path)` instead of the raw name;
the raw bytes stay in the index (`os.fsencode`) so the file can still be opened.
"""

from __future__ import annotations

import os
import unicodedata

# Unicode categories never shown as is: controls, format characters (bidi overrides and isolates, zero-width
# characters), surrogates, line and paragraph separators.
NEUTRALISED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def path_bytes(path: str | bytes | os.PathLike) -> bytes:
    """The file system bytes of `path` (undecodable bytes restored through surrogateescape)."""
    return os.fsencode(path)


def path_from_bytes(raw: bytes) -> str:
    """The `str` path of file system bytes, openable again (undecodable bytes kept as surrogates)."""
    return os.fsdecode(raw)


def _escape(character: str) -> str:
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def display_text(path: str | bytes | os.PathLike) -> str:
    """
    Printable, valid UTF-8 text for a path: bytes that are not UTF-8 become `\\xNN`, control and format
    characters (e.g. U+202E) become `\\uNNNN`; every other character is kept.
    """
    text = path_bytes(path).decode("utf-8", errors="backslashreplace")
    return "".join(_escape(c) if unicodedata.category(c) in NEUTRALISED_CATEGORIES else c for c in text)


__all__ = ["display_text", "path_bytes", "path_from_bytes"]
