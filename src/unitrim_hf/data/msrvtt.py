"""MSR-VTT (1k-A protocol) as a `datasets` builder.

Files (CLIP4Clip's `msrvtt_data.zip`) directly in `data_dir`: `MSRVTT_data.json`,
`MSRVTT_train.9k.csv`, `MSRVTT_train.7k.csv`, `MSRVTT_JSFUSION_test.csv`.
Videos `{video_id}.mp4` (`.webm` and other containers as fallback) in one flat folder:
`video_dir` if given, else the first of `videos/all`, `videos`, `MSRVTT_Videos`,
`MSRVTT/videos/all` or `data_dir` itself that has the file.
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
    read_csv_rows,
    read_json_file,
    require_identifier,
    require_integer,
    require_text,
)
from ..errors import BenchmarkFormatError
from .video_lookup import VideoIndex, existing_directories

logger = logging.getLogger(__name__)

MSRVTT_VIDEO_SUBFOLDERS = ("videos/all", "videos", "MSRVTT_Videos", "MSRVTT/videos/all")


def read_msrvtt_json(path: Path, string_fields: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    """`MSRVTT_data.json` -> `{video_id: [sentence dict, ...]}` in file order.

    Every sentence needs a string `caption` and a `video_id`; `sen_id`, when present, must be an integer;
    `string_fields` must be strings when present. Anything else raises BenchmarkFormatError naming the sentence
    and the field.
    """
    data = read_json_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("sentences"), list):
        raise BenchmarkFormatError(f"{path}: expected an object with a 'sentences' list")
    sentences: dict[str, list[dict]] = {}
    for position, sentence in enumerate(data["sentences"]):
        place = f"sentences[{position}]"
        if not isinstance(sentence, dict) or "caption" not in sentence or "video_id" not in sentence:
            raise BenchmarkFormatError(f"{path}: {place} lacks 'caption' or 'video_id'")
        checked = dict(sentence)
        checked["caption"] = require_text(sentence["caption"], path, place, "caption")
        video_id = require_identifier(sentence["video_id"], path, place, "video_id")
        if "sen_id" in sentence:
            checked["sen_id"] = require_integer(sentence["sen_id"], path, place, "sen_id", INT32_RANGE)
        for field in string_fields:
            if field in sentence:
                require_text(sentence[field], path, place, field)
        video_sentences = sentences.setdefault(video_id, [])
        if len(video_sentences) >= MAX_CAPTIONS_PER_VIDEO:
            raise BenchmarkFormatError(f"{path}: {place}: video {video_id!r} has more than {MAX_CAPTIONS_PER_VIDEO} captions")
        video_sentences.append(checked)
    return sentences


def read_csv_column(path: Path, column: str) -> list[dict[str, str]]:
    """Rows of a CSV with a header that must contain `column`; every value of `column` must be non-empty."""
    rows = []
    for line, row in read_csv_rows(path, (column,)):
        if not (row[column] or "").strip():
            raise BenchmarkFormatError(f"{path}: line {line}: field {column!r} is empty")
        rows.append(row)
    return rows


class MSRVTT(VideoBenchmarkBuilder):
    """MSR-VTT: `train` from the 9k or 7k list with every caption, `test` = 1k-A (1,000 pairs).

    Example::

        builder = MSRVTT(data_dir="/data/msrvtt", config_name="9k", cache_dir="/cache")
        builder.download_and_prepare()
        test = builder.as_dataset("test")
    """

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIGS = [
        VideoBenchmarkConfig(name="9k", version=VERSION, description="train = MSRVTT_train.9k.csv (9,000 videos)"),
        VideoBenchmarkConfig(name="7k", version=VERSION, description="train = MSRVTT_train.7k.csv (7,010 videos)"),
    ]
    DEFAULT_CONFIG_NAME = "9k"
    TEST_CSV = "MSRVTT_JSFUSION_test.csv"
    ANNOTATION_JSON = "MSRVTT_data.json"
    # Extra string fields of a JSON sentence copied into each row (SyntheticTriM adds "kind").
    SENTENCE_STRING_FIELDS: tuple[str, ...] = ()

    def _train_csv_name(self) -> str:
        return f"MSRVTT_train.{self.config.name}.csv"

    def _info(self) -> datasets.DatasetInfo:
        common = video_columns()
        if self.config.one_row_per_video:
            text = {"captions": datasets.List(datasets.Value("string")), "sen_ids": datasets.List(datasets.Value("int32"))}
            extra = {field + "s": datasets.List(datasets.Value("string")) for field in self.SENTENCE_STRING_FIELDS}
        else:
            text = {
                "caption": datasets.Value("string"),
                "caption_index": datasets.Value("int32"),
                "sen_id": datasets.Value("int32"),
            }
            extra = {field: datasets.Value("string") for field in self.SENTENCE_STRING_FIELDS}
        return datasets.DatasetInfo(
            description=__doc__,
            features=datasets.Features({**common, **text, **extra}),
        )

    def video_directories(self) -> list[Path]:
        if self.config.video_dir:
            return existing_directories([Path(self.config.video_dir).expanduser()])
        return existing_directories([self.data_root / sub for sub in MSRVTT_VIDEO_SUBFOLDERS] + [self.data_root])

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        # Annotation files are read and checked here, so their errors reach the caller unwrapped.
        annotation = self.require_file(self.ANNOTATION_JSON)
        sentences = read_msrvtt_json(annotation, self.SENTENCE_STRING_FIELDS)
        train_csv = self.require_file(self._train_csv_name())
        test_csv = self.require_file(self.TEST_CSV)
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"pairs": tuple(self._split_pairs(sentences, annotation, csv_path, split)), "split": split})
            for split, csv_path in (("train", train_csv), ("test", test_csv))
        ]

    def _split_pairs(self, sentences: dict[str, list[dict]], annotation: Path, csv_path: Path, split: str) -> list[tuple[str, dict]]:
        """(video_id, sentence dict) pairs of a split in order: train = CSV videos x JSON captions."""
        if split == "train":
            pairs = []
            for row in read_csv_column(csv_path, "video_id"):
                video_id = row["video_id"].strip()
                if video_id not in sentences:
                    logger.warning("%s: video %s of %s has no caption in %s; left out", self.name, video_id, csv_path.name, annotation.name)
                pairs.extend((video_id, sentence) for sentence in sentences.get(video_id, []))
            return pairs
        pairs = []
        for line, row in read_csv_rows(csv_path, ("video_id", "sentence")):
            video_id = (row["video_id"] or "").strip()
            caption = require_text(row["sentence"], csv_path, f"line {line}", "sentence")
            if not video_id:
                raise BenchmarkFormatError(f"{csv_path}: line {line}: field 'video_id' is empty")
            sentence = {"caption": caption, "sen_id": -1}
            # Recover the JSON sentence (its sen_id and extra fields) when the caption matches one.
            for candidate in sentences.get(video_id, []):
                if candidate["caption"].strip() == caption.strip():
                    sentence = candidate
                    break
            pairs.append((video_id, sentence))
        return pairs

    def _generate_examples(self, pairs: tuple[tuple[str, dict], ...], split: str) -> Iterator[tuple[int, dict]]:
        index = VideoIndex(self.video_directories(), recursive=False)
        resolved = self.resolve_videos(split, [video_id for video_id, _ in pairs], index)
        video_order = {video_id: position for position, video_id in enumerate(resolved.paths)}
        usable = [(video_id, sentence) for video_id, sentence in pairs if video_id in video_order]
        if self.config.one_row_per_video:
            grouped: dict[str, list[dict]] = {}
            for video_id, sentence in usable:
                grouped.setdefault(video_id, []).append(sentence)
            for video_id, video_sentences in grouped.items():
                row = {
                    "video_id": video_id,
                    "video_path": str(resolved.paths[video_id]),
                    "video_index": video_order[video_id],
                    "captions": [sentence["caption"] for sentence in video_sentences],
                    "sen_ids": [int(sentence.get("sen_id", -1)) for sentence in video_sentences],
                }
                for field in self.SENTENCE_STRING_FIELDS:
                    row[field + "s"] = [str(sentence.get(field, "")) for sentence in video_sentences]
                yield video_order[video_id], row
            return
        for caption_index, (video_id, sentence) in enumerate(usable):
            row = {
                "video_id": video_id,
                "video_path": str(resolved.paths[video_id]),
                "video_index": video_order[video_id],
                "caption": sentence["caption"],
                "caption_index": caption_index,
                "sen_id": int(sentence.get("sen_id", -1)),
            }
            for field in self.SENTENCE_STRING_FIELDS:
                row[field] = str(sentence.get(field, ""))
            yield caption_index, row
