import json
import logging
from pathlib import Path

import pytest

from unitrim_hf.data import MSRVTT, BenchmarkFormatError, caption_to_video, video_table
from unitrim_hf.data.msrvtt import read_msrvtt_json

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


# ---------------------------------------------------------------- malformed annotation files


def _annotations_only(msrvtt_root: Path, target: Path) -> Path:
    """The annotation files of the fixture without its videos (the errors below come before any video is read)."""
    target.mkdir()
    for name in ("MSRVTT_data.json", "MSRVTT_train.9k.csv", "MSRVTT_train.7k.csv", "MSRVTT_JSFUSION_test.csv"):
        (target / name).write_bytes((msrvtt_root / name).read_bytes())
    return target


def _edit_sentence(root: Path, position: int, **fields) -> Path:
    path = root / "MSRVTT_data.json"
    data = json.loads(path.read_text())
    data["sentences"][position].update(fields)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"caption": None}, r"sentences\[4\]: field 'caption' must be a string, got NoneType"),
        ({"caption": 12345}, r"sentences\[4\]: field 'caption' must be a string, got int"),
        ({"caption": ["a", "b"]}, r"sentences\[4\]: field 'caption' must be a string, got list"),
        ({"sen_id": 3.7}, r"sentences\[4\]: field 'sen_id' must be an integer, got float 3.7"),
        ({"sen_id": "4"}, r"sentences\[4\]: field 'sen_id' must be an integer"),
        ({"video_id": None}, r"sentences\[4\]: field 'video_id' must be a non-empty string"),
        ({"caption": "word " * 500}, r"sentences\[4\]: field 'caption' has 2500 characters, more than the limit"),
    ],
)
def test_bad_sentence_field_names_file_row_and_field(msrvtt_root, tmp_path, fields, message):
    root = _annotations_only(msrvtt_root, tmp_path / "data")
    path = _edit_sentence(root, 4, **fields)
    with pytest.raises(BenchmarkFormatError, match=message) as caught:
        build(root, tmp_path / "cache")
    assert str(path) in str(caught.value)


def test_int_caption_of_a_test_video_is_named(msrvtt_root, tmp_path):
    root = _annotations_only(msrvtt_root, tmp_path / "data")
    position = next(
        index for index, sentence in enumerate(json.loads((root / "MSRVTT_data.json").read_text())["sentences"])
        if sentence["video_id"] == "video10"
    )
    _edit_sentence(root, position, caption=7)
    with pytest.raises(BenchmarkFormatError, match=rf"MSRVTT_data.json: sentences\[{position}\]: field 'caption'"):
        build(root, tmp_path / "cache")


def test_integral_float_sen_id_is_accepted(msrvtt_root, tmp_path):
    path = _edit_sentence(_annotations_only(msrvtt_root, tmp_path / "data"), 4, sen_id=4.0)
    assert read_msrvtt_json(path)["video4"][0]["sen_id"] == 4


def test_non_utf8_csv_names_file_and_line(msrvtt_root, tmp_path):
    root = _annotations_only(msrvtt_root, tmp_path / "data")
    path = root / "MSRVTT_JSFUSION_test.csv"
    path.write_bytes(path.read_bytes().replace(b"shows thing", b"shows th\xefng", 2))
    with pytest.raises(BenchmarkFormatError, match=r"MSRVTT_JSFUSION_test.csv: not UTF-8 text \(line 2"):
        build(root, tmp_path / "cache")


def test_deeply_nested_json_names_the_file(tmp_path):
    path = tmp_path / "MSRVTT_data.json"
    path.write_text('{"sentences": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(BenchmarkFormatError, match="MSRVTT_data.json: JSON nested too deeply"):
        read_msrvtt_json(path)


def test_empty_video_id_in_the_test_csv_names_the_line(msrvtt_root, tmp_path):
    root = _annotations_only(msrvtt_root, tmp_path / "data")
    path = root / "MSRVTT_JSFUSION_test.csv"
    path.write_text(path.read_text() + "ret9,msr99\n")
    with pytest.raises(BenchmarkFormatError, match=r"MSRVTT_JSFUSION_test.csv: line 5: field 'sentence' must be a string"):
        build(root, tmp_path / "cache")
