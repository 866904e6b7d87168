import json
import logging
from pathlib import Path

import pytest

from unitrim_hf.data import MSRVTT, BenchmarkFormatError, caption_to_video, video_table

try:
    from test_data_support import msrvtt_caption, write_msrvtt
except ImportError:  # tests collected as a package
    from tests.test_data_support import msrvtt_caption, write_msrvtt


def build(root: Path, cache: Path, config_name: str = "9k", **options) -> MSRVTT:
    builder = MSRVTT(data_dir=str(root), config_name=config_name, cache_dir=str(cache), **options)
    builder.download_and_prepare()
    return builder


@pytest.fixture(scope="module")
def msrvtt_root(tmp_path_factory) -> Path:
    return write_msrvtt(tmp_path_factory.mktemp("msrvtt"))


def test_9k_7k_and_test_counts(msrvtt_root, tmp_path):
    nine = build(msrvtt_root, tmp_path / "cache", "9k")
    train, test = nine.as_dataset("train"), nine.as_dataset("test")
    assert train.num_rows == 9 * 3
    assert sorted(set(train["video_id"])) == sorted(f"video{n}" for n in range(9))
    assert set(train["caption"]) == {msrvtt_caption(n, c) for n in range(9) for c in range(3)}
    assert train["caption_index"] == list(range(27))
    for video_id, video_index in zip(train["video_id"], train["video_index"]):
        assert video_id == f"video{video_index}"  # CSV order
    assert test.num_rows == 3
    assert test["video_id"] == ["video9", "video10", "video11"]
    assert test["caption"] == [msrvtt_caption(n, 1) for n in (9, 10, 11)]
    assert caption_to_video(test).tolist() == [0, 1, 2]
    # JSFUSION rows are matched back to their JSON sentence ids.
    assert all(sen_id >= 0 for sen_id in test["sen_id"])
    assert [entry["video_id"] for entry in video_table(test)] == ["video9", "video10", "video11"]

    seven = build(msrvtt_root, tmp_path / "cache", "7k")
    assert seven.as_dataset("train").num_rows == 7 * 3
    assert seven.as_dataset("test").num_rows == 3


def test_one_row_per_video(msrvtt_root, tmp_path):
    builder = build(msrvtt_root, tmp_path / "cache", one_row_per_video=True)
    train = builder.as_dataset("train")
    assert train.num_rows == 9
    assert train[4]["captions"] == [msrvtt_caption(4, c) for c in range(3)]
    assert train["video_index"] == list(range(9))


@pytest.mark.parametrize("folder", ["videos/all", "", "MSRVTT_Videos"])
def test_video_folders_and_webm_fallback(tmp_path, folder):
    root = write_msrvtt(tmp_path / "data", video_folder=folder, webm_numbers=(3, 10))
    # video4 exists as both containers: .mp4 must win.
    (root / folder / "video4.webm").write_bytes((root / folder / "video3.webm").read_bytes())
    builder = build(root, tmp_path / "cache")
    train = builder.as_dataset("train")
    paths = dict(zip(train["video_id"], train["video_path"]))
    assert paths["video3"].endswith("video3.webm")
    assert paths["video4"].endswith("video4.mp4")
    assert Path(paths["video0"]).parent == (root / folder).resolve()
    assert builder.as_dataset("test")["video_path"][1].endswith("video10.webm")


def test_explicit_video_dir(tmp_path):
    root = write_msrvtt(tmp_path / "data", video_folder="elsewhere")
    builder = build(root, tmp_path / "cache", video_dir=str(root / "elsewhere"))
    assert builder.as_dataset("train").num_rows == 27


def test_missing_videos_are_reported_and_left_out(tmp_path, caplog):
    root = write_msrvtt(tmp_path / "data", missing_numbers=(2, 10))
    (root / "videos/all/video5.mp4").write_bytes(b"")  # empty download
    with caplog.at_level(logging.WARNING):
        builder = build(root, tmp_path / "cache")
    train, test = builder.as_dataset("train"), builder.as_dataset("test")
    assert train.num_rows == 7 * 3
    assert not {"video2", "video5"} & set(train["video_id"])
    assert sorted(set(train["video_index"])) == list(range(7))
    assert test["video_id"] == ["video9", "video11"]
    assert test["video_index"] == [0, 1]

    report = json.loads((Path(builder.cache_dir) / "missing_videos.json").read_text())
    assert report["train"]["missing"] == {"count": 1, "ids": ["video2"]}
    assert report["train"]["unreadable"]["ids"] == ["video5"]
    assert report["train"]["num_usable"] == 7 and report["train"]["num_annotated"] == 9
    assert report["test"]["missing"] == {"count": 1, "ids": ["video10"]}
    assert report == builder.missing_videos_report()
    assert "video2" in caplog.text and "video10" in caplog.text and "video5" in caplog.text


def test_check_videos_leaves_out_corrupt_files(tmp_path):
    root = write_msrvtt(tmp_path / "data")
    (root / "videos/all/video1.mp4").write_bytes(b"this is not an mp4 file" * 50)
    plain = build(root, tmp_path / "cache_plain")
    assert "video1" in plain.as_dataset("train")["video_id"]
    checked = build(root, tmp_path / "cache_checked", check_videos=True)
    assert "video1" not in checked.as_dataset("train")["video_id"]
    assert checked.missing_videos_report()["train"]["unreadable"]["ids"] == ["video1"]


def test_absent_annotation_file_is_named(tmp_path):
    root = write_msrvtt(tmp_path / "data")
    (root / "MSRVTT_JSFUSION_test.csv").unlink()
    with pytest.raises(BenchmarkFormatError, match="MSRVTT_JSFUSION_test.csv"):
        build(root, tmp_path / "cache")
