"""Reading annotation files and checking their fields: every defect is a [`BenchmarkFormatError`] that names
the file and the place (record, line, field), at a cost bounded by the file's size.

Limits: a caption has at most `MAX_CAPTION_CHARACTERS` characters, a video at most
`MAX_CAPTIONS_PER_VIDEO` captions and a file at most `MAX_CAPTIONS_PER_FILE` captions of
`MAX_CAPTION_CHARACTERS_PER_FILE` characters in all (the real benchmarks stay
far below: MSR-VTT captions are under 200 characters, MSVD has at most ~80 captions per video and 80,000 in all);
a file that references one caption many times (a pickle can) cannot expand into gigabytes.
"""

from __future__ import annotations

import csv
import io
import json
import reprlib
from pathlib import Path
from typing import Any

from ..errors import BenchmarkFormatError

MAX_CAPTION_CHARACTERS = 2_000
MAX_CAPTIONS_PER_VIDEO = 1_000
MAX_CAPTIONS_PER_FILE = 2_000_000
# All captions of one file together (MSR-VTT's 200,000 captions hold about 10 million characters).
MAX_CAPTION_CHARACTERS_PER_FILE = 100_000_000
INT32_RANGE = (-(2**31), 2**31 - 1)
INT64_RANGE = (-(2**63), 2**63 - 1)


def read_utf8_text(path: Path) -> str:
    """The file's text; BenchmarkFormatError naming the line and byte of the first invalid UTF-8 sequence."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise BenchmarkFormatError(
            f"{path}: not UTF-8 text (line {line}, byte {error.start}: {error.reason}); save it as UTF-8"
        ) from error


def read_json_file(path: Path) -> Any:
    """Parsed JSON; BenchmarkFormatError for invalid UTF-8, invalid JSON or nesting too deep to parse."""
    text = read_utf8_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BenchmarkFormatError(f"{path}: not valid JSON ({error})") from error
    except RecursionError as error:
        raise BenchmarkFormatError(f"{path}: JSON nested too deeply to read") from error


def read_csv_rows(path: Path, required_columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """`(line number, row)` of a CSV with a header holding `required_columns`."""
    reader = csv.DictReader(io.StringIO(read_utf8_text(path), newline=""))
    try:
        missing = [column for column in required_columns if reader.fieldnames is None or column not in reader.fieldnames]
        if missing:
            raise BenchmarkFormatError(
                f"{path}: missing column {', '.join(repr(column) for column in missing)} (header: {reader.fieldnames})"
            )
        rows = []
        for row in reader:
            if len(rows) >= MAX_CAPTIONS_PER_FILE:
                raise BenchmarkFormatError(f"{path}: more than {MAX_CAPTIONS_PER_FILE} rows")
            rows.append((reader.line_num, row))
        return rows
    except csv.Error as error:
        raise BenchmarkFormatError(f"{path}: line {reader.line_num}: not valid CSV ({error})") from error


def require_text(value: Any, path: Path, place: str, field: str) -> str:
    """`value` when it is a string of at most `MAX_CAPTION_CHARACTERS` characters."""
    if not isinstance(value, str):
        raise BenchmarkFormatError(
            f"{path}: {place}: field {field!r} must be a string, got {type(value).__name__} {short_repr(value)}"
        )
    check_caption_length(len(value), path, place, field)
    return value


def check_caption_length(num_characters: int, path: Path, place: str, field: str) -> None:
    if num_characters > MAX_CAPTION_CHARACTERS:
        raise BenchmarkFormatError(
            f"{path}: {place}: field {field!r} has {num_characters} characters, more than the limit of "
            f"{MAX_CAPTION_CHARACTERS}"
        )


def require_integer(
    value: Any, path: Path, place: str, field: str, value_range: tuple[int, int] = INT64_RANGE
) -> int:
    """`value` as an int when it is an integer (or a float with no fractional part; never a bool) in
    `value_range` (inclusive: the column type it is stored in)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
        raise BenchmarkFormatError(
            f"{path}: {place}: field {field!r} must be an integer, got {type(value).__name__} {short_repr(value)}"
        )
    if not value_range[0] <= value <= value_range[1]:
        raise BenchmarkFormatError(f"{path}: {place}: field {field!r} = {value!r} is outside {value_range}")
    return int(value)


def require_identifier(value: Any, path: Path, place: str, field: str) -> str:
    """A video id: a non-empty string or an integer, as a string."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise BenchmarkFormatError(
            f"{path}: {place}: field {field!r} must be a non-empty string, got {type(value).__name__} {short_repr(value)}"
        )
    return str(value)


def short_repr(value: Any) -> str:
    """A repr of at most a few levels and ~80 characters, safe on arbitrarily deep nesting (a plain repr of a deeply
    nested list raises RecursionError)."""
    shortener = reprlib.Repr()
    shortener.maxlevel, shortener.maxlist, shortener.maxstring, shortener.maxother = 3, 5, 60, 60
    return shortener.repr(value)
