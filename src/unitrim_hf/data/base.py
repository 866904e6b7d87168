"""Shared base of the benchmark builders: configuration, video resolution, missing-video report."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import datasets
import numpy as np

from ..errors import VideoDecodingError
from ..errors import BenchmarkFormatError
from .video_lookup import VideoIndex

logger = logging.getLogger(__name__)

MISSING_REPORT_FILE_NAME = "missing_videos.json"
# How many ids a log line shows; the JSON report always holds all of them.
_IDS_SHOWN_IN_LOG = 20


@dataclass
class VideoBenchmarkConfig(datasets.BuilderConfig):
    """Options shared by every benchmark builder (pass them as keyword arguments to the builder).

    Attributes:
        video_dir: folder holding the videos; when None each builder searches its documented
            default folders under `data_dir` (see docs/datasets.md).
        check_videos: decode two frames of every video with [`FrameSampler`]
            and leave out the ones that fail (slow: one decode per video). Without it only
            missing and empty (0-byte) files are left out.
        one_row_per_video: one row per video holding all its captions (`captions`) instead of
            one row per (video, caption) pair (`caption`).
    """

    video_dir: Optional[str] = None
    check_videos: bool = False
    one_row_per_video: bool = False


@dataclass
class ResolvedVideos:
    """Outcome of matching a split's annotation entries with the files on disk.

    Attributes:
        paths: video id -> file, for the usable videos, in the split's video order.
        missing: ids with no file.
        unreadable: id -> reason, for files that exist but are empty or fail to decode.
    """

    paths: dict[str, Path]
    missing: list[str]
    unreadable: dict[str, str]


def _decode_check(path: Path) -> Optional[str]:
    """None when two frames decode, otherwise the reason."""
    from ..media.frame_sampling import FrameSampler

    try:
        sampled = FrameSampler(num_frames=2)(path)
    except VideoDecodingError as error:
        return error.reason
    if int(np.asarray(sampled.mask).sum()) == 0:
        return "no frame could be decoded"
    return None


def video_columns() -> dict[str, datasets.Value]:
    """The columns every benchmark row starts with: the video's id, its file and its index in the split."""
    return {
        "video_id": datasets.Value("string"),
        "video_path": datasets.Value("string"),
        "video_index": datasets.Value("int32"),
    }


class VideoBenchmarkBuilder(datasets.GeneratorBasedBuilder):
    """Base of [`MSRVTT`], [`MSVD`], [`DiDeMo`] (and [`SyntheticTriM`]).

    Subclasses read their annotation files and call `resolve_videos` for each split,
    which leaves out entries whose video is missing or unreadable and writes the report.
    """

    BUILDER_CONFIG_CLASS = VideoBenchmarkConfig

    # ----------------------------------------------------------------- folders
    @property
    def data_root(self) -> Path:
        """`data_dir` as a Path; raises a clear error when it was not given or does not exist."""
        if not self.config.data_dir:
            raise BenchmarkFormatError(
                f"{type(self).__name__} needs data_dir=<folder with the benchmark files>"
            )
        root = Path(self.config.data_dir).expanduser()
        if not root.is_dir():
            raise BenchmarkFormatError(f"{type(self).__name__}: data_dir {root} is not a folder")
        return root

    def require_file(self, *names: str) -> Path:
        """The first of `names` present under `data_dir`; raises naming all of them if none is."""
        for name in names:
            candidate = self.data_root / name
            if candidate.is_file():
                return candidate
        raise BenchmarkFormatError(
            f"{type(self).__name__}: annotation file {' or '.join(names)} not found in {self.data_root}"
        )

    @property
    def missing_videos_report_path(self) -> Path:
        """`<dataset cache folder>/missing_videos.json` (written by `download_and_prepare`)."""
        return Path(self._output_dir) / MISSING_REPORT_FILE_NAME

    def missing_videos_report(self) -> dict:
        """The report of the prepared dataset: `{split: {"num_annotated", "num_usable", "missing": {...}, "unreadable": {...}}}`."""
        path = self.missing_videos_report_path
        if not path.is_file():
            return {}
        return json.loads(path.read_text())

    # ---------------------------------------------------------- resolution
    def resolve_videos(
        self,
        split: str,
        video_ids: Sequence[str],
        index: VideoIndex,
        lookup_names: Optional[Sequence[str]] = None,
        extra_report: Optional[dict] = None,
    ) -> ResolvedVideos:
        """Match a split's videos with files, report and leave out the missing/unreadable ones.

        Args:
            split: split name, used in the report.
            video_ids: the split's videos in their canonical order (duplicates ignored).
            index: the files found on disk.
            lookup_names: the name to look each id up by (defaults to the id itself).
            extra_report: more entries for this split's report (e.g. listed ids without annotation).
        """
        lookup_names = list(lookup_names) if lookup_names is not None else list(video_ids)
        paths: dict[str, Path] = {}
        missing: list[str] = []
        unreadable: dict[str, str] = {}
        for video_id, name in zip(video_ids, lookup_names):
            if video_id in paths or video_id in unreadable or video_id in missing:
                continue
            path = index.find(name)
            if path is None:
                missing.append(video_id)
                continue
            if path.stat().st_size == 0:
                unreadable[video_id] = "empty file (0 bytes)"
                continue
            if self.config.check_videos:
                reason = _decode_check(path)
                if reason is not None:
                    unreadable[video_id] = reason
                    continue
            paths[video_id] = path.resolve()
        self._write_report(
            split, len(paths) + len(missing) + len(unreadable), len(paths), missing, unreadable, index, extra_report or {}
        )
        return ResolvedVideos(paths=paths, missing=missing, unreadable=unreadable)

    def _write_report(
        self,
        split: str,
        num_annotated: int,
        num_usable: int,
        missing: list[str],
        unreadable: dict[str, str],
        index: VideoIndex,
        extra_report: dict,
    ) -> None:
        split = str(split)
        report_path = self.missing_videos_report_path
        report = self.missing_videos_report()
        report[split] = {
            "num_annotated": num_annotated,
            "num_usable": num_usable,
            "video_directories": [str(directory) for directory in index.directories],
            "missing": {"count": len(missing), "ids": missing},
            "unreadable": {"count": len(unreadable), "ids": sorted(unreadable), "reasons": unreadable},
            **extra_report,
        }
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report, indent=1))
        final_path = str(report_path).replace(".incomplete" + os.sep, os.sep)
        if missing:
            logger.warning(
                "%s/%s: %d of %d videos have no file in %s and are left out: %s%s (full list: %s)",
                self.name, split, len(missing), num_annotated,
                ", ".join(str(directory) for directory in index.directories) or "(no video folder found)",
                ", ".join(missing[:_IDS_SHOWN_IN_LOG]), " ..." if len(missing) > _IDS_SHOWN_IN_LOG else "",
                final_path,
            )
        if unreadable:
            ids = sorted(unreadable)
            logger.warning(
                "%s/%s: %d of %d video files are unreadable and left out: %s%s (full list: %s)",
                self.name, split, len(unreadable), num_annotated,
                ", ".join(ids[:_IDS_SHOWN_IN_LOG]), " ..." if len(ids) > _IDS_SHOWN_IN_LOG else "",
                final_path,
            )


def caption_to_video(dataset: datasets.Dataset) -> np.ndarray:
    """`caption_to_video[i]` = index of row i's video in the split's video order (for evaluation).

    Works on any per-caption split of these builders (column `video_index`).
    """
    return np.asarray(dataset["video_index"], dtype=np.int64)


def video_table(dataset: datasets.Dataset) -> list[dict]:
    """The split's videos in `video_index` order: `[{"video_id", "video_path"}, ...]`.

    Row `j` of the similarity matrix's video axis is `video_table(dataset)[j]`.
    """
    videos: dict[int, dict] = {}
    for video_index, video_id, video_path in zip(dataset["video_index"], dataset["video_id"], dataset["video_path"]):
        videos.setdefault(int(video_index), {"video_id": video_id, "video_path": video_path})
    if sorted(videos) != list(range(len(videos))):
        raise BenchmarkFormatError("video_index of the dataset is not 0..num_videos-1; was it filtered?")
    return [videos[position] for position in range(len(videos))]
