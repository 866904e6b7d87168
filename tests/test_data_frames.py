import json

import numpy as np
import pytest
import torch

from unitrim_hf.data import (
    FrameCacheMismatchError,
    MSRVTT,
    keyframe_dataset,
    load_benchmark,
    load_frame_cache,
    prepare_frames,
    read_cached_batch,
    select_keyframe_index,
    to_model_resolution,
    write_synthetic_benchmark,
)
from unitrim_hf.media.frame_sampling import FrameSampler


class CountingSampler(FrameSampler):
    """A FrameSampler that counts decodes and can fail after a number of them (a simulated interruption)."""

    def __init__(self, *args, fail_after=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self, path, *args, **kwargs):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        return super().__call__(path, *args, **kwargs)


@pytest.fixture(scope="module")
def synthetic_train(tmp_path_factory):
    base = tmp_path_factory.mktemp("synthetic")
    root = write_synthetic_benchmark(base / "data", num_train=10, num_test=3, seed=2, num_frames=16, frame_size=64)
    builder = MSRVTT(data_dir=str(root), config_name="9k", cache_dir=str(base / "cache"))
    builder.download_and_prepare()
    return builder.as_dataset("train")


def test_cache_holds_exactly_the_sampler_frames(synthetic_train, tmp_path):
    sampler = FrameSampler(num_frames=6)
    cache = prepare_frames(synthetic_train, sampler, tmp_path / "cache", image_size=64, shard_size=4)
    assert cache.num_rows == 10
    assert list(cache["video_id"]) == [f"video{n}" for n in range(10)]
    paths = dict(zip(synthetic_train["video_id"], synthetic_train["video_path"]))
    batch = read_cached_batch(cache, [0, 7])
    assert batch["frames"].dtype == np.uint8 and batch["frames"].shape == (2, 6, 64, 64, 3)
    assert batch["keyframe"].shape == (2, 64, 64, 3) and batch["video_mask"].shape == (2, 6)
    for position, video_id in enumerate(batch["video_id"]):
        sampled = sampler(paths[video_id])
        assert np.array_equal(batch["frames"][position], sampled.frames)
        assert np.array_equal(batch["video_mask"][position], sampled.mask)
        assert np.array_equal(batch["frame_indices"][position], sampled.frame_indices)
        assert np.array_equal(batch["keyframe"][position], sampled.frames[3])  # middle of 6 real frames


def test_cache_resizes_to_model_resolution(synthetic_train, tmp_path):
    sampler = FrameSampler(num_frames=3)
    subset = synthetic_train.select(range(3))
    cache = prepare_frames(subset, sampler, tmp_path / "cache", image_size=32, keyframe=False)
    frames = read_cached_batch(cache, [0])["frames"][0]
    assert frames.shape == (3, 32, 32, 3) and "keyframe" not in cache.column_names
    expected = to_model_resolution(sampler(subset[0]["video_path"]).frames, 32)
    assert np.array_equal(frames, expected)


def test_wide_frames_are_center_cropped():
    frames = np.zeros((1, 40, 80, 3), dtype=np.uint8)
    frames[:, :, 20:60] = 200  # centre square bright, sides dark
    resized = to_model_resolution(frames, 20)
    assert resized.shape == (1, 20, 20, 3) and resized.dtype == np.uint8
    assert resized[0, 5:15, 5:15].min() >= 190


def test_interrupted_prepare_resumes_without_redecoding(synthetic_train, tmp_path):
    output = tmp_path / "cache"
    interrupted = CountingSampler(num_frames=4, fail_after=5)
    with pytest.raises(KeyboardInterrupt):
        prepare_frames(synthetic_train, interrupted, output, image_size=32, shard_size=4)
    assert sorted(path.name for path in (output / "shards").iterdir() if path.is_dir())[:1] == ["00000"]
    assert not (output / "shards" / "00001").exists()

    resumed = CountingSampler(num_frames=4)
    cache = prepare_frames(synthetic_train, resumed, output, image_size=32, shard_size=4)
    assert resumed.calls == 10 - 4  # shard 0 (4 videos) was not decoded again
    assert cache.num_rows == 10

    again = CountingSampler(num_frames=4)
    assert prepare_frames(synthetic_train, again, output, image_size=32, shard_size=4).num_rows == 10
    assert again.calls == 0
    assert load_frame_cache(output).num_rows == 10

    with pytest.raises(FrameCacheMismatchError, match="image_size"):
        prepare_frames(synthetic_train, FrameSampler(num_frames=4), output, image_size=48, shard_size=4)


def test_unreadable_videos_are_reported_and_skipped(synthetic_train, tmp_path, caplog):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 10)
    subset = synthetic_train.filter(lambda row: row["video_index"] < 3).map(
        lambda row: {"video_path": str(broken) if row["video_id"] == "video1" else row["video_path"]}
    )
    cache = prepare_frames(subset, FrameSampler(num_frames=2), tmp_path / "cache", image_size=32)
    assert list(cache["video_id"]) == ["video0", "video2"]
    report = json.loads((tmp_path / "cache" / "unreadable_videos.json").read_text())
    assert report["count"] == 1 and report["ids"] == ["video1"]
    assert "video1" in caplog.text


def test_parallel_prepare_matches_serial(synthetic_train, tmp_path):
    sampler = FrameSampler(num_frames=2)
    serial = prepare_frames(synthetic_train, sampler, tmp_path / "serial", image_size=32, shard_size=5)
    parallel = prepare_frames(synthetic_train, sampler, tmp_path / "parallel", image_size=32, shard_size=5, num_proc=2)
    assert list(parallel["video_id"]) == list(serial["video_id"])
    everything = list(range(10))
    assert np.array_equal(read_cached_batch(parallel, everything)["frames"], read_cached_batch(serial, everything)["frames"])


def test_select_keyframe_middle_and_centroid():
    frames = np.zeros((6, 2, 2, 3), dtype=np.uint8)
    mask = np.array([1, 1, 1, 1, 1, 0])
    assert select_keyframe_index(frames, mask, "middle") == 2
    directions = {0: [1.0, 0.0], 1: [0.0, 1.0], 2: [1.0, 0.0], 3: [0.0, 1.0], 4: [1.0, 1.0]}
    for index in directions:
        frames[index] = index

    def embed(real_frames: np.ndarray) -> torch.Tensor:
        assert real_frames.shape == (5, 2, 2, 3)  # padding is never embedded
        return torch.tensor([directions[int(frame[0, 0, 0])] for frame in real_frames]) * 3.0

    assert select_keyframe_index(frames, mask, "clip_centroid", embed_frames=embed) == 4
    with pytest.raises(ValueError, match="embed_frames"):
        select_keyframe_index(frames, mask, "clip_centroid")
    with pytest.raises(ValueError, match="strategy"):
        select_keyframe_index(frames, mask, "first")


def test_keyframe_dataset_one_image_per_video(synthetic_train):
    sampler = FrameSampler(num_frames=5)
    images = keyframe_dataset(synthetic_train.select(range(12)), strategy="middle", sampler=sampler)
    videos = sorted(set(synthetic_train.select(range(12))["video_index"]))
    assert images["video_index"] == videos
    first = images[0]
    sampled = sampler(first["video_path"])
    assert np.array_equal(np.asarray(first["image"]), sampled.frames[2])
    assert first["frame_index"] == sampled.frame_indices[2]
    own = [row["caption"] for row in synthetic_train if row["video_index"] == 0]
    assert first["captions"] == own


def test_load_benchmark(tmp_path):
    test = load_benchmark("synthetic", tmp_path / "generated", "test", cache_dir=tmp_path / "cache", num_train=4, num_test=2)
    assert test.num_rows == 2 and test["video_index"] == [0, 1]
    train = load_benchmark("MSRVTT", tmp_path / "generated", "train", config_name="9k", cache_dir=tmp_path / "cache")
    assert set(train["video_index"]) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="validation"):
        load_benchmark("msrvtt", tmp_path / "generated", "validation", cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("kinetics", tmp_path / "generated", "train")


def _shard_file(cache_dir):
    (arrow,) = sorted((cache_dir / "shards" / "00000").glob("*.arrow"))
    return arrow


def test_a_changed_byte_in_the_cache_is_detected_when_read(synthetic_train, tmp_path):
    """Pixels, a shape field or a mask changed on disk: the row fails its checksum (training went on with
    corrupted frames, or failed at step 5 with a raw ValueError)."""
    cache_dir = tmp_path / "cache"
    cache = prepare_frames(synthetic_train, FrameSampler(num_frames=4), cache_dir, image_size=32, shard_size=16)
    frames = read_cached_batch(cache, [2])["frames"][0]
    arrow = _shard_file(cache_dir)
    data = bytearray(arrow.read_bytes())
    position = bytes(data).find(frames.tobytes()[:256]) + 100  # a pixel byte of video2's frames
    assert position > 100
    data[position] ^= 0x01
    arrow.write_bytes(bytes(data))
    reloaded = load_frame_cache(cache_dir)
    read_cached_batch(reloaded, [0, 1])  # the other rows are intact
    with pytest.raises(FrameCacheMismatchError, match=r"row 2 \(video 'video2'\) does not match its checksum"):
        read_cached_batch(reloaded, [1, 2])


def test_a_truncated_shard_or_an_old_cache_is_a_clear_error(synthetic_train, tmp_path):
    cache_dir = tmp_path / "cache"
    prepare_frames(synthetic_train, FrameSampler(num_frames=4), cache_dir, image_size=32, shard_size=16)
    info_path = cache_dir / "cache_info.json"
    info = json.loads(info_path.read_text())
    arrow = _shard_file(cache_dir)
    arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    with pytest.raises(FrameCacheMismatchError, match="00000 .a frame cache shard. cannot be read"):
        load_frame_cache(cache_dir)
    del info["format"]  # a cache written before rows carried checksums
    info_path.write_text(json.dumps(info))
    with pytest.raises(FrameCacheMismatchError, match="another format .format 1.*delete it to rebuild"):
        load_frame_cache(cache_dir)
    with pytest.raises(FrameCacheMismatchError, match="another format"):
        prepare_frames(synthetic_train, FrameSampler(num_frames=4), cache_dir, image_size=32, shard_size=16)


def test_keyframe_dataset_leaves_out_and_reports_videos_it_cannot_decode(synthetic_train, tmp_path, caplog):
    split = synthetic_train.filter(lambda index: index < 4, input_columns="video_index")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video")
    paths = [str(broken) if video_id == "video1" else path for video_id, path in zip(split["video_id"], split["video_path"])]
    split = split.remove_columns("video_path").add_column("video_path", paths)
    with caplog.at_level("WARNING"):
        images = keyframe_dataset(split, strategy="middle", sampler=FrameSampler(num_frames=4))
    assert list(images["video_id"]) == ["video0", "video2", "video3"] and list(images["video_index"]) == [0, 2, 3]
    assert "1 of 4 videos could not be decoded and have no keyframe: video1:" in caplog.text
