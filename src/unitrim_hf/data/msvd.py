"""MSVD as a `datasets` builder (Collaborative Experts split, all ~41 captions per video).

Files (CLIP4Clip's `msvd_data.zip`) in `data_dir`: `raw-captions.pkl`, `train_list.txt`,
`val_list.txt`, `test_list.txt` (one video id per line). Videos: every video file under
`video_dir` if given, else under `data_dir/YouTubeClips` (or `data_dir` itself when that
folder is absent), walked recursively; a file's id is its name minus the last extension.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import datasets

from .base import VideoBenchmarkBuilder, VideoBenchmarkConfig, video_columns
from .annotation_checks import read_utf8_text
from ..errors import BenchmarkFormatError
from .safe_pickle import load_caption_pickle
from .video_lookup import VideoIndex, existing_directories, strip_last_extension

MSVD_SPLIT_LISTS = {"train": "train_list.txt", "validation": "val_list.txt", "test": "test_list.txt"}


def read_id_list(path: Path) -> list[str]:
    """One id per line (UTF-8); blank lines ignored."""
    return [line.strip() for line in read_utf8_text(path).splitlines() if line.strip()]


class MSVD(VideoBenchmarkBuilder):
    """MSVD: `train` (1,200 videos), `validation` (100), `test` (670).

    One row per (video, caption); `video_index` is the video's position in the split's list
    file after missing videos are left out, so `caption_to_video = dataset["video_index"]`.
    """

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIGS = [VideoBenchmarkConfig(name="default", version=VERSION)]
    CAPTIONS_FILE = "raw-captions.pkl"

    def _info(self) -> datasets.DatasetInfo:
        common = video_columns()
        if self.config.one_row_per_video:
            text = {"captions": datasets.List(datasets.Value("string"))}
        else:
            text = {"caption": datasets.Value("string"), "caption_index": datasets.Value("int32")}
        return datasets.DatasetInfo(description=__doc__, features=datasets.Features({**common, **text}))

    def video_directories(self) -> list[Path]:
        if self.config.video_dir:
            return existing_directories([Path(self.config.video_dir).expanduser()])
        clips = existing_directories([self.data_root / "YouTubeClips"])
        return clips or [self.data_root]

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        # Annotation files are read and checked here, so their errors reach the caller unwrapped.
        captions_path = self.require_file(self.CAPTIONS_FILE)
        captions = load_caption_pickle(captions_path)
        generators = []
        for split, list_name in MSVD_SPLIT_LISTS.items():
            list_path = self.require_file(list_name)
            video_ids = read_id_list(list_path)
            without_captions = [video_id for video_id in video_ids if video_id not in captions]
            if without_captions:
                raise BenchmarkFormatError(
                    f"{list_path}: {len(without_captions)} listed videos have no entry in {captions_path.name}: "
                    f"{', '.join(without_captions[:10])}"
                )
            split_captions = {video_id: tuple(captions[video_id]) for video_id in video_ids}
            generators.append(datasets.SplitGenerator(name=split, gen_kwargs={"captions": split_captions, "split": split}))
        return generators

    def _generate_examples(self, captions: dict[str, tuple[str, ...]], split: str) -> Iterator[tuple[int, dict]]:
        index = VideoIndex(self.video_directories(), recursive=True, key_function=strip_last_extension)
        resolved = self.resolve_videos(split, list(captions), index)
        caption_index = 0
        for video_index, (video_id, path) in enumerate(resolved.paths.items()):
            if self.config.one_row_per_video:
                yield video_index, {
                    "video_id": video_id, "video_path": str(path), "video_index": video_index, "captions": list(captions[video_id]),
                }
                continue
            for caption in captions[video_id]:
                yield caption_index, {
                    "video_id": video_id,
                    "video_path": str(path),
                    "video_index": video_index,
                    "caption": caption,
                    "caption_index": caption_index,
                }
                caption_index += 1
