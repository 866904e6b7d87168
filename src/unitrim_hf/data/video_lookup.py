"""Finding the video file of an annotation entry on disk.

Benchmarks name their files inconsistently (`video7.mp4` or `video7.webm`; MSVD clips in
any container; DiDeMo's `x.mov`, `x.mov.mp4` or `x.mp4`). Every builder therefore
indexes its video folder once and looks entries up by a *key*: the file name with its
video extensions removed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

# Order = preference when one key has several files (the first listed wins).
VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4",
    ".webm",
    ".avi",
    ".mkv",
    ".mov",
    ".m2ts",
    ".mts",
    ".wmv",
    ".3gp",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".flv",
    ".ogv",
    ".ts",
)
_EXTENSION_RANK = {extension: rank for rank, extension in enumerate(VIDEO_EXTENSIONS)}


def strip_video_extensions(name: str) -> str:
    """`"x.mov.mp4" -> "x"`, `"x.mp4" -> "x"`, `"x" -> "x"`: removes trailing video extensions."""
    stem = name
    while True:
        base, extension = os.path.splitext(stem)
        if base and extension.lower() in _EXTENSION_RANK:
            stem = base
        else:
            return stem


def strip_last_extension(name: str) -> str:
    """`"a.b.avi" -> "a.b"`, `"a.b" -> "a.b"`: the MSVD rule (file name minus its last extension).

    Only a video extension is removed, so an id that itself contains a dot stays intact.
    """
    base, extension = os.path.splitext(name)
    return base if base and extension.lower() in _EXTENSION_RANK else name


def _is_video_file(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in _EXTENSION_RANK


def list_video_files(directory: Path, recursive: bool) -> list[Path]:
    """Video files (by extension) in a folder, sorted by path for a deterministic result."""
    if not directory.is_dir():
        return []
    if not recursive:
        return sorted(entry for entry in directory.iterdir() if entry.is_file() and _is_video_file(entry.name))
    found = []
    for root, _, file_names in os.walk(directory, followlinks=True):
        found.extend(Path(root) / name for name in file_names if _is_video_file(name))
    return sorted(found)


def _list_other_files(directory: Path, recursive: bool) -> list[Path]:
    """Files of a folder that `list_video_files` leaves out (no known video extension), sorted by path."""
    if not directory.is_dir():
        return []
    if not recursive:
        return sorted(entry for entry in directory.iterdir() if entry.is_file() and not _is_video_file(entry.name))
    found = []
    for root, _, file_names in os.walk(directory, followlinks=True):
        found.extend(Path(root) / name for name in file_names if not _is_video_file(name))
    return sorted(found)


def _preference(path: Path, exact_name: str | None) -> tuple[int, int, str]:
    exact = 0 if exact_name is not None and path.name == exact_name else 1
    return (exact, _EXTENSION_RANK.get(path.suffix.lower(), len(_EXTENSION_RANK)), str(path))


class VideoIndex:
    """Maps a key (file name without video extensions) to the video files found for it.

    Args:
        directories: folders searched, in priority order (a file in an earlier folder wins).
        recursive: walk sub-folders too (MSVD, DiDeMo) or only the folder itself (MSR-VTT).
        key_function: how a file name becomes a key; `strip_video_extensions` by default.
    """

    def __init__(
        self,
        directories: Sequence[Path],
        recursive: bool = False,
        key_function=strip_video_extensions,
    ) -> None:
        self.directories = [Path(directory) for directory in directories]
        self.key_function = key_function
        self._files: dict[str, list[tuple[int, Path]]] = {}
        # Files whose extension is not a known video extension (e.g. "x.3g2"), by exact name: an annotation that
        # names such a file exactly still finds it.
        self._other_files: dict[str, list[tuple[int, Path]]] = {}
        for directory_rank, directory in enumerate(self.directories):
            for path in list_video_files(directory, recursive):
                self._files.setdefault(key_function(path.name), []).append((directory_rank, path))
            for path in _list_other_files(directory, recursive):
                self._other_files.setdefault(path.name, []).append((directory_rank, path))

    def __len__(self) -> int:
        return len(self._files)

    def keys(self) -> Iterable[str]:
        return self._files.keys()

    def find(self, name: str) -> Path | None:
        """The best file for an annotation name (`video7`, `x.mov`...) or None when absent.

        Preference: earlier folder, then the file whose name equals `name` exactly (even with an extension
        outside `VIDEO_EXTENSIONS`), then the extension order of `VIDEO_EXTENSIONS` (so `.mp4`
        beats the `.webm` fallback).
        """
        candidates = list(self._files.get(self.key_function(name), [])) + list(self._other_files.get(name, []))
        if not candidates:
            return None
        best_rank = min(rank for rank, _ in candidates)
        return min(
            (path for rank, path in candidates if rank == best_rank),
            key=lambda path: _preference(path, name),
        )


def existing_directories(candidates: Iterable[Path]) -> list[Path]:
    """The candidate folders that exist, in order, without duplicates."""
    seen, result = set(), []
    for candidate in candidates:
        resolved = Path(candidate)
        if resolved.is_dir() and resolved.resolve() not in seen:
            seen.add(resolved.resolve())
            result.append(resolved)
    return result
