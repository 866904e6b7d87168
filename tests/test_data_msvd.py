import os
import pickle
from pathlib import Path

import pytest

from unitrim_hf.data import MSVD, BenchmarkFormatError, UnsafePickleError, load_caption_pickle, load_restricted_pickle

try:
    from test_data_support import write_msvd
except ImportError:  # tests collected as a package
    from tests.test_data_support import write_msvd

CAPTIONS = {
    "fr9H1WLcF1A_256_261": [["two", "young", "men", "are", "playing", "table", "tennis"], ["men", "are", "playing", "table", "tennis"]],
    "bQJQGoJF7_k_162_169": [["a", "cat", "jumps"]],
    "aaa_1_5": [["a", "dog", "runs"], ["a", "dog", "is", "running"], ["the", "dog", "runs", "fast"]],
    "bbb_2_9": [["a", "man", "cooks"], ["someone", "is", "cooking"]],
    "ccc_3_4": [["a", "woman", "sings"]],
}
SPLITS = {
    "train": ["fr9H1WLcF1A_256_261"],
    "validation": ["bQJQGoJF7_k_162_169"],
    "test": ["aaa_1_5", "bbb_2_9", "ccc_3_4"],
}
EXTENSIONS = {
    "fr9H1WLcF1A_256_261": ".avi",
    "bQJQGoJF7_k_162_169": ".avi",
    "aaa_1_5": ".avi",
    "bbb_2_9": ".mp4",
    "ccc_3_4": ".webm",
}


def build(root: Path, cache: Path, **options) -> MSVD:
    builder = MSVD(data_dir=str(root), cache_dir=str(cache), **options)
    builder.download_and_prepare()
    return builder


def test_multi_caption_rows_map_to_their_video(tmp_path):
    root = write_msvd(tmp_path / "msvd", CAPTIONS, SPLITS, EXTENSIONS)
    builder = build(root, tmp_path / "cache")
    test = builder.as_dataset("test")
    assert test.num_rows == 3 + 2 + 1
    assert test["video_index"] == [0, 0, 0, 1, 1, 2]
    assert test["caption"][:3] == ["a dog runs", "a dog is running", "the dog runs fast"]
    assert test["caption_index"] == list(range(6))
    for video_id, video_path in zip(test["video_id"], test["video_path"]):
        assert Path(video_path).name == video_id + EXTENSIONS[video_id]
    train = builder.as_dataset("train")
    assert train["caption"] == ["two young men are playing table tennis", "men are playing table tennis"]
    assert builder.as_dataset("validation").num_rows == 1


def test_missing_video_shifts_video_index(tmp_path):
    extensions = {key: value for key, value in EXTENSIONS.items() if key != "bbb_2_9"}
    root = write_msvd(tmp_path / "msvd", CAPTIONS, SPLITS, extensions)
    builder = build(root, tmp_path / "cache")
    test = builder.as_dataset("test")
    assert test["video_id"] == ["aaa_1_5"] * 3 + ["ccc_3_4"]
    assert test["video_index"] == [0, 0, 0, 1]
    assert builder.missing_videos_report()["test"]["missing"] == {"count": 1, "ids": ["bbb_2_9"]}


def test_one_row_per_video(tmp_path):
    root = write_msvd(tmp_path / "msvd", CAPTIONS, SPLITS, EXTENSIONS)
    test = build(root, tmp_path / "cache", one_row_per_video=True).as_dataset("test")
    assert test.num_rows == 3
    assert test[1]["captions"] == ["a man cooks", "someone is cooking"]


def test_listed_video_without_captions_is_an_error(tmp_path):
    splits = {**SPLITS, "test": SPLITS["test"] + ["zzz_9_9"]}
    root = write_msvd(tmp_path / "msvd", CAPTIONS, splits, EXTENSIONS)
    with pytest.raises(BenchmarkFormatError, match="zzz_9_9"):
        build(root, tmp_path / "cache")


class _RunsCommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_blocks_code_execution(tmp_path):
    marker = tmp_path / "pwned"
    malicious = tmp_path / "raw-captions.pkl"
    malicious.write_bytes(pickle.dumps({"vid": [["a"]], "payload": _RunsCommand(marker)}))
    with pytest.raises(UnsafePickleError, match="system"):
        load_caption_pickle(malicious)
    assert not marker.exists()
    # Also refused with every protocol, and through the builder.
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(_RunsCommand(marker), protocol=protocol))
        with pytest.raises(UnsafePickleError):
            load_restricted_pickle(path)
    assert not marker.exists()
    root = write_msvd(tmp_path / "msvd", CAPTIONS, SPLITS, EXTENSIONS)
    (root / "raw-captions.pkl").write_bytes(malicious.read_bytes())
    with pytest.raises(UnsafePickleError):
        build(root, tmp_path / "cache")
    assert not marker.exists()


def test_plain_pickles_load_with_every_protocol(tmp_path):
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"ok{protocol}.pkl"
        path.write_bytes(pickle.dumps(CAPTIONS, protocol=protocol))
        loaded = load_caption_pickle(path)
        assert loaded["aaa_1_5"] == ["a dog runs", "a dog is running", "the dog runs fast"]


def test_wrong_structure_and_corrupt_pickle(tmp_path):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps({"vid": [["a", 3]]}))
    with pytest.raises(BenchmarkFormatError, match="vid"):
        load_caption_pickle(path)
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(BenchmarkFormatError, match="dict"):
        load_caption_pickle(path)
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(BenchmarkFormatError, match="bad.pkl"):
        load_caption_pickle(path)


@pytest.mark.parametrize("depth", [50_000, 200_000])
def test_deeply_nested_caption_is_a_format_error_not_a_recursion_error(tmp_path, depth):
    # Protocol 2, hand-written opcodes (pickle.dumps itself would recurse): {"v": [[[...[]...]]]} nested `depth` deep.
    data = b"\x80\x02}X\x01\x00\x00\x00v]" + b"]" * depth + b"a" * (depth - 1) + b"as."
    path = tmp_path / "raw-captions.pkl"
    path.write_bytes(data)
    with pytest.raises(BenchmarkFormatError) as caught:
        load_caption_pickle(path)
    assert str(path) in str(caught.value) and len(str(caught.value)) < 500


def test_pickle_reusing_one_long_caption_is_refused_before_it_expands(tmp_path):
    shared = [["word"] * 250_000]  # one 1.25 MB caption, referenced by every video of the file
    path = tmp_path / "raw-captions.pkl"
    path.write_bytes(pickle.dumps({f"video{n}": shared for n in range(1200)}))
    assert path.stat().st_size < 1_100_000
    with pytest.raises(BenchmarkFormatError, match=r"video 'video0' caption 0: field 'caption' has 1249999 characters"):
        load_caption_pickle(path)


def test_pickle_with_too_many_captions_is_refused(tmp_path):
    shared = [["a", "dog"]] * 5000
    path = tmp_path / "raw-captions.pkl"
    path.write_bytes(pickle.dumps({"video0": shared}))
    with pytest.raises(BenchmarkFormatError, match=r"raw-captions.pkl: video 'video0' has 5000 captions, more than the limit"):
        load_caption_pickle(path)


def test_non_utf8_split_list_names_the_file(tmp_path):
    root = write_msvd(tmp_path / "msvd", CAPTIONS, SPLITS, EXTENSIONS)
    (root / "test_list.txt").write_bytes(b"aaa_1_5\n\xff\xfe\n")
    with pytest.raises(BenchmarkFormatError, match=r"test_list.txt: not UTF-8 text \(line 2"):
        build(root, tmp_path / "cache")


def test_pickle_applying_str_to_a_shared_list_is_refused(tmp_path):
    """A few hundred bytes that apply the allowed `str` to a list sharing one list 2^24 times: `str` would expand
    it into gigabytes (5.7 GB at depth 28); only text may be converted."""
    import struct

    ops = [pickle.PROTO + b"\x02", pickle.GLOBAL + b"builtins\nstr\n"]
    ops += [pickle.EMPTY_LIST, pickle.MARK, pickle.BINUNICODE + struct.pack("<I", 1) + b"x", pickle.APPENDS,
            pickle.BINPUT + b"\x00", pickle.POP]
    depth = 24
    for level in range(1, depth + 1):
        previous = pickle.BINGET + bytes([level - 1])
        ops += [pickle.EMPTY_LIST, pickle.MARK, previous, previous, pickle.APPENDS, pickle.BINPUT + bytes([level]), pickle.POP]
    ops += [pickle.BINGET + bytes([depth]), pickle.TUPLE1, pickle.REDUCE, pickle.STOP]
    path = tmp_path / "raw-captions.pkl"
    path.write_bytes(b"".join(ops))
    assert path.stat().st_size < 400
    with pytest.raises(UnsafePickleError, match="applies str to a list"):
        load_caption_pickle(path)
