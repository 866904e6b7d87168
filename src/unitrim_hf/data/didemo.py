"""DiDeMo (paragraph-to-video retrieval) as a `datasets` builder.

Files in `data_dir`: `train_data.json`, `val_data.json`, `test_data.json` (LocalizingMoments
`data/`), optionally Collaborative Experts' `train_list.txt`/`val_list.txt`/`test_list.txt`.
Videos: every video file under `video_dir` if given, else `data_dir/videos` (or `data_dir`
when that folder is absent), walked recursively. Names are matched after removing all trailing
video extensions, so an annotation `x.mov` finds `x.mov`, `x.mov.mp4` (AWS mirror) or
`x.mp4`; the file named exactly as the annotation wins, then `.mp4`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import datasets

from .base import VideoBenchmarkBuilder, VideoBenchmarkConfig, video_columns
from .annotation_checks import (
    INT32_RANGE,
    MAX_CAPTIONS_PER_VIDEO,
    read_json_file,
    require_identifier,
    require_integer,
    require_text,
    short_repr,
)
from ..errors import BenchmarkFormatError
from .msvd import read_id_list
from .video_lookup import VideoIndex, existing_directories, strip_video_extensions

logger = logging.getLogger(__name__)

DIDEMO_SPLITS = {
    "train": ("train_data.json", "train_list.txt"),
    "validation": ("val_data.json", "val_list.txt"),
    "test": ("test_data.json", "test_list.txt"),
}
_REQUIRED_FIELDS = ("annotation_id", "description", "video")


def read_didemo_annotations(path: Path) -> dict[str, list[dict]]:
    """`{video name: [moment record, ...]}` with each video's records in file order, fields checked.

    Videos keep the order of their first record in the file. File order, not `annotation_id` order, is what
    CLIP4Clip joins into the paragraph, and it decides what survives the 64-token truncation. Each record needs a
    string `description`, an integer `annotation_id`, a `video` name and `times` as `[start, end]` integer
    chunk pairs; anything else raises BenchmarkFormatError naming the record and the field.
    """
    records = read_json_file(path)
    if not isinstance(records, list):
        raise BenchmarkFormatError(f"{path}: expected a list of moment records")
    by_video: dict[str, list[dict]] = {}
    for position, record in enumerate(records):
        absent = [field for field in _REQUIRED_FIELDS if not isinstance(record, dict) or field not in record]
        if absent:
            raise BenchmarkFormatError(f"{path}: record {position} lacks field(s) {', '.join(absent)}")
        place = f"record {position}"
        checked = dict(record)
        checked["description"] = require_text(record["description"], path, place, "description").strip()
        checked["annotation_id"] = require_integer(record["annotation_id"], path, place, "annotation_id")
        checked["times"] = _times(record.get("times", []), path, place)
        video = require_identifier(record["video"], path, place, "video")
        video_records = by_video.setdefault(video, [])
        if len(video_records) >= MAX_CAPTIONS_PER_VIDEO:
            raise BenchmarkFormatError(f"{path}: {place}: video {video!r} has more than {MAX_CAPTIONS_PER_VIDEO} records")
        video_records.append(checked)
    return by_video


def _times(times: object, path: Path, place: str) -> list[list[int]]:
    """`[[start_chunk, end_chunk], ...]` with integer chunks (0-5 in DiDeMo; 5 s each)."""
    if not isinstance(times, list) or not all(isinstance(pair, list) and len(pair) == 2 for pair in times):
        raise BenchmarkFormatError(
            f"{path}: {place}: field 'times' must be a list of [start_chunk, end_chunk] pairs, got {short_repr(times)}"
        )
    return [
        [require_integer(value, path, f"{place} times[{pair_position}]", "times", INT32_RANGE) for value in pair]
        for pair_position, pair in enumerate(times)
    ]


class DiDeMo(VideoBenchmarkBuilder):
    """DiDeMo: one row per video; `caption` = its descriptions joined by a space in JSON file order (as CLIP4Clip).

    `descriptions`, `annotation_ids` and `times` (per description, one `[start_chunk, end_chunk]`
    per annotator; chunks are 5 s) are kept in the same order.
    """

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIGS = [VideoBenchmarkConfig(name="default", version=VERSION)]

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=__doc__,
            features=datasets.Features(
                {
                    **video_columns(),
                    "caption_index": datasets.Value("int32"),
                    "caption": datasets.Value("string"),
                    "descriptions": datasets.List(datasets.Value("string")),
                    "annotation_ids": datasets.List(datasets.Value("int64")),
                    "times": datasets.List(datasets.List(datasets.List(datasets.Value("int32")))),
                }
            ),
        )

    def video_directories(self) -> list[Path]:
        if self.config.video_dir:
            return existing_directories([Path(self.config.video_dir).expanduser()])
        return existing_directories([self.data_root / "videos"]) or [self.data_root]

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        # Annotation files are read and checked here, so their errors reach the caller unwrapped.
        generators = []
        for split, (json_name, list_name) in DIDEMO_SPLITS.items():
            annotation_path = self.require_file(json_name)
            by_video = read_didemo_annotations(annotation_path)
            list_path = self.data_root / list_name
            video_names, extra_report = self._listed_videos(split, by_video, annotation_path, list_path)
            generators.append(
                datasets.SplitGenerator(
                    name=split,
                    gen_kwargs={
                        "records": {name: tuple(by_video[name]) for name in video_names},
                        "extra_report": extra_report,
                        "split": split,
                    },
                )
            )
        return generators

    def _listed_videos(
        self, split: str, by_video: dict[str, list[dict]], annotation_path: Path, list_path: Path
    ) -> tuple[list[str], dict]:
        """The split's video names (list order when a split list exists, else JSON order) and a report entry."""
        if not list_path.is_file():
            return list(by_video), {}
        names_by_key = {strip_video_extensions(name): name for name in by_video}
        listed = read_id_list(list_path)
        without_annotation = [entry for entry in listed if strip_video_extensions(entry) not in names_by_key]
        video_names = list(dict.fromkeys(
            names_by_key[strip_video_extensions(entry)] for entry in listed if strip_video_extensions(entry) in names_by_key
        ))
        if without_annotation:
            logger.warning(
                "%s/%s: %d ids of %s have no record in %s and are left out: %s",
                self.name, split, len(without_annotation), list_path.name, annotation_path.name,
                ", ".join(without_annotation[:20]),
            )
        return video_names, {"listed_without_annotation": {"count": len(without_annotation), "ids": without_annotation}}

    def _generate_examples(self, records: dict[str, tuple[dict, ...]], extra_report: dict, split: str) -> Iterator[tuple[int, dict]]:
        index = VideoIndex(self.video_directories(), recursive=True)
        resolved = self.resolve_videos(split, list(records), index, extra_report=extra_report)
        for video_index, (video_name, path) in enumerate(resolved.paths.items()):
            video_records = records[video_name]
            descriptions = [record["description"] for record in video_records]
            yield video_index, {
                "video_id": video_name,
                "video_path": str(path),
                "video_index": video_index,
                "caption_index": video_index,
                "caption": " ".join(descriptions),
                "descriptions": descriptions,
                "annotation_ids": [record["annotation_id"] for record in video_records],
                "times": [record["times"] for record in video_records],
            }
