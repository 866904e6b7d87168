import json
from pathlib import Path

import pytest

from unitrim_hf.data import BenchmarkFormatError, DiDeMo
from unitrim_hf.data.didemo import read_didemo_annotations

try:
    from test_data_support import didemo_record, write_tiny_video
except ImportError:  # tests collected as a package
    from tests.test_data_support import didemo_record, write_tiny_video

# annotation name -> file written on disk (None: no file)
NAME_VARIANTS = {
    "10000001@N01_111_aaa.mov": "10000001@N01_111_aaa.mov.mp4",  # AWS mirror: <video>.mp4
    "10000002@N02_222_bbb.m2ts": "10000002@N02_222_bbb.m2ts",  # Flickr script: as-is
    "10000003@N03_333_ccc.mp4": "10000003@N03_333_ccc.mp4",
    "10000004@N04_444_ddd.mov": "10000004@N04_444_ddd.mp4",  # extension replaced
}


def write_didemo(root: Path, files: dict[str, str | None], with_lists: bool = False) -> Path:
    names = list(files)
    train_records = []
    # Records of a video out of annotation_id order in the file, interleaved with other videos.
    for position, name in enumerate(names):
        base = 100 * (position + 1)
        train_records.append(didemo_record(base + 2, f"third thing in {position}.", name, [[2, 3], [2, 2]]))
        train_records.append(didemo_record(base + 0, f"first thing in {position}.", name, [[0, 0]]))
    for position, name in enumerate(names):
        train_records.append(didemo_record(100 * (position + 1) + 1, f"second thing in {position}.", name, [[1, 1], [1, 2], [0, 1]]))
    root.mkdir(parents=True, exist_ok=True)
    (root / "train_data.json").write_text(json.dumps(train_records))
    (root / "val_data.json").write_text(json.dumps([didemo_record(7, "only one.", names[0], [[4, 5]])]))
    (root / "test_data.json").write_text(json.dumps([didemo_record(9, "test moment.", names[1], [[0, 5]])]))
    if with_lists:
        (root / "train_list.txt").write_text(f"{names[2]}\n{names[0]}\nnot_in_json_video.mp4\n")
        (root / "val_list.txt").write_text(f"{names[0]}\n")
        (root / "test_list.txt").write_text(f"{names[1]}\n")
    for shade, file_name in enumerate(files.values()):
        if file_name is not None:
            write_tiny_video(root / "videos" / file_name, shade=shade)
    return root


def build(root: Path, cache: Path) -> DiDeMo:
    builder = DiDeMo(data_dir=str(root), cache_dir=str(cache))
    builder.download_and_prepare()
    return builder


def test_name_variants_resolve_and_paragraph_order(tmp_path):
    root = write_didemo(tmp_path / "didemo", NAME_VARIANTS)
    # A decoy with the bare name next to the exact match: the exact annotation name must win.
    write_tiny_video(root / "videos" / "10000002@N02_222_bbb.mp4", shade=9)
    builder = build(root, tmp_path / "cache")
    train = builder.as_dataset("train")
    assert train["video_id"] == list(NAME_VARIANTS)
    assert [Path(path).name for path in train["video_path"]] == list(NAME_VARIANTS.values())
    row = train[1]
    # JSON file order, as CLIP4Clip joins them (not annotation_id order): it decides what 64 tokens keep.
    assert row["caption"] == "third thing in 1. first thing in 1. second thing in 1."
    assert row["annotation_ids"] == [202, 200, 201]
    assert row["times"] == [[[2, 3], [2, 2]], [[0, 0]], [[1, 1], [1, 2], [0, 1]]]
    assert train["video_index"] == [0, 1, 2, 3] and train["caption_index"] == [0, 1, 2, 3]
    assert builder.as_dataset("validation")["caption"] == ["only one."]
    assert builder.as_dataset("test")["video_id"] == ["10000002@N02_222_bbb.m2ts"]


def test_split_lists_and_missing_videos(tmp_path):
    files = dict(NAME_VARIANTS)
    files["10000003@N03_333_ccc.mp4"] = None  # not downloaded
    root = write_didemo(tmp_path / "didemo", files, with_lists=True)
    builder = build(root, tmp_path / "cache")
    train = builder.as_dataset("train")
    # List order: names[2] (missing), names[0]; names[1] and names[3] are not listed.
    assert train["video_id"] == ["10000001@N01_111_aaa.mov"]
    assert train["video_index"] == [0]
    report = builder.missing_videos_report()["train"]
    assert report["missing"] == {"count": 1, "ids": ["10000003@N03_333_ccc.mp4"]}
    assert report["listed_without_annotation"] == {"count": 1, "ids": ["not_in_json_video.mp4"]}


def test_a_file_named_exactly_like_the_annotation_is_found_whatever_its_extension(tmp_path):
    # ".3g2" is not a known video extension: only the exact-name match can find it.
    files = {**NAME_VARIANTS, "10000005@N05_555_eee.3g2": None}
    root = write_didemo(tmp_path / "didemo", files)
    mp4 = write_tiny_video(root / "videos" / "tmp.mp4", shade=5)
    Path(mp4).rename(root / "videos" / "10000005@N05_555_eee.3g2")  # an MP4 stream in a 3GPP2-named file
    train = build(root, tmp_path / "cache").as_dataset("train")
    assert "10000005@N05_555_eee.3g2" in train["video_id"]
    row = train[train["video_id"].index("10000005@N05_555_eee.3g2")]
    assert Path(row["video_path"]).name == "10000005@N05_555_eee.3g2"


# ---------------------------------------------------------------- malformed annotation files


def _write_records(tmp_path: Path, **fields) -> Path:
    """The three annotation files of one video (no video files: the errors come before any video is read)."""
    record = didemo_record(1, "a dog runs.", "x.mp4", [[0, 1]])
    record.update(fields)
    root = tmp_path / "didemo"
    root.mkdir()
    (root / "train_data.json").write_text(json.dumps([didemo_record(0, "first.", "x.mp4", [[0, 0]]), record]))
    for name in ("val_data.json", "test_data.json"):
        (root / name).write_text(json.dumps([didemo_record(2, "ok.", "x.mp4", [[0, 0]])]))
    return root


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"description": None}, r"record 1: field 'description' must be a string, got NoneType"),
        ({"description": 42}, r"record 1: field 'description' must be a string, got int"),
        ({"times": [["a", "b"]]}, r"record 1 times\[0\]: field 'times' must be an integer, got str"),
        ({"times": [[None, 1]]}, r"record 1 times\[0\]: field 'times' must be an integer, got NoneType"),
        ({"times": [[0, 1, 2]]}, r"record 1: field 'times' must be a list of \[start_chunk, end_chunk\] pairs"),
        ({"times": "0-1"}, r"record 1: field 'times' must be a list"),
        ({"annotation_id": 1.5}, r"record 1: field 'annotation_id' must be an integer, got float"),
        ({"video": None}, r"record 1: field 'video' must be a non-empty string"),
    ],
)
def test_bad_record_field_names_file_record_and_field(tmp_path, fields, message):
    root = _write_records(tmp_path, **fields)
    with pytest.raises(BenchmarkFormatError, match=message) as caught:
        build(root, tmp_path / "cache")
    assert str(root / "train_data.json") in str(caught.value)


def test_non_utf8_and_deeply_nested_annotation_files_are_named(tmp_path):
    root = _write_records(tmp_path)
    (root / "val_data.json").write_bytes(b'[{"description": "caf\xe9"}]')
    with pytest.raises(BenchmarkFormatError, match=r"val_data.json: not UTF-8 text \(line 1"):
        build(root, tmp_path / "cache")
    (root / "val_data.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BenchmarkFormatError, match="val_data.json: JSON nested too deeply"):
        read_didemo_annotations(root / "val_data.json")
