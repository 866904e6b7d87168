import hashlib
from pathlib import Path

import numpy as np

from unitrim_hf.data import MSRVTT, SyntheticTriM, generate_clip_specs, render_clip, write_synthetic_benchmark
from unitrim_hf.data.synthetic import scene_split
from unitrim_hf.media.frame_sampling import FrameSampler


def _digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*")) if path.is_file()
    }


def test_same_seed_same_files_other_seed_differs(tmp_path):
    first = write_synthetic_benchmark(tmp_path / "a", num_train=12, num_test=4, seed=3)
    second = write_synthetic_benchmark(tmp_path / "b", num_train=12, num_test=4, seed=3)
    other = write_synthetic_benchmark(tmp_path / "c", num_train=12, num_test=4, seed=4)
    assert _digest(first) == _digest(second)  # captions, CSVs and mp4 bytes (hence pixels)
    assert (first / "MSRVTT_data.json").read_text() != (other / "MSRVTT_data.json").read_text()
    specs = generate_clip_specs(16, seed=3)
    assert all(np.array_equal(render_clip(a), render_clip(b)) for a, b in zip(specs, generate_clip_specs(16, seed=3)))


def test_captions_are_spatial_temporal_and_combined_unique():
    specs = generate_clip_specs(300, seed=0)
    kinds = [caption.kind for spec in specs for caption in spec.captions()]
    assert {"spatial", "temporal", "combined"} <= set(kinds)
    combined = [spec.captions()[-1].text for spec in specs]
    assert len(set(combined)) == len(combined)
    assert all(2 <= len(spec.captions()) <= 5 for spec in specs)


def test_temporal_facts_are_not_decidable_from_any_single_frame():
    """Playing a clip backwards shows the same frames, keeps the spatial captions and changes every temporal one."""
    checked = 0
    for spec in generate_clip_specs(60, seed=1):
        frames = render_clip(spec, frame_size=32)
        backwards = spec.reversed()
        assert np.array_equal(render_clip(backwards, frame_size=32), frames[::-1])
        captions, reversed_captions = spec.captions(), backwards.captions()
        spatial = {caption.text for caption in captions if caption.kind == "spatial"}
        assert spatial == {caption.text for caption in reversed_captions if caption.kind == "spatial"}
        for caption in captions:
            if caption.kind == "temporal":
                assert caption.text not in {other.text for other in reversed_captions}
                checked += 1
    assert checked > 30


def test_written_layout_parses_with_msrvtt_and_decodes_close_to_render(tmp_path):
    root = write_synthetic_benchmark(tmp_path / "synthetic", num_train=10, num_test=3, seed=0, frame_size=64)
    builder = MSRVTT(data_dir=str(root), config_name="9k", cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    train, test = builder.as_dataset("train"), builder.as_dataset("test")
    train_specs, test_specs = generate_clip_specs(10, seed=0), generate_clip_specs(3, seed=0, split="test")
    assert train.num_rows == sum(len(spec.captions()) for spec in train_specs)
    assert test["caption"] == [spec.captions()[-1].text for spec in test_specs]
    assert test["video_index"] == [0, 1, 2]
    decoded = FrameSampler(num_frames=16)(test[0]["video_path"])
    assert int(decoded.mask.sum()) == 16
    error = np.abs(decoded.frames.astype(np.int16) - render_clip(test_specs[0], 64).astype(np.int16)).mean()
    assert error < 6.0  # lossy mp4, but the same picture


def test_synthetic_builder_writes_then_reads(tmp_path):
    builder = SyntheticTriM(data_dir=str(tmp_path / "generated"), cache_dir=str(tmp_path / "cache"), num_train=8, num_test=3, seed=5)
    builder.download_and_prepare()
    assert (tmp_path / "generated" / "videos" / "all" / "video0.mp4").is_file()
    train = builder.as_dataset("train")
    assert set(train["kind"]) >= {"spatial", "combined"}
    assert builder.as_dataset("test")["kind"] == ["combined"] * 3


def _video_digests(root: Path, split: str) -> set[str]:
    """SHA-256 of the mp4 files of one split of a written benchmark."""
    import csv

    if split == "train":
        with open(root / "MSRVTT_train.9k.csv") as handle:
            ids = [row["video_id"] for row in csv.DictReader(handle)]
    else:
        with open(root / "MSRVTT_JSFUSION_test.csv") as handle:
            ids = [row["video_id"] for row in csv.DictReader(handle)]
    return {hashlib.sha256((root / "videos" / "all" / f"{video_id}.mp4").read_bytes()).hexdigest() for video_id in ids}


def test_test_videos_are_never_training_videos_of_any_size_or_seed(tmp_path):
    """The default evaluation benchmark (200/50) against a larger training benchmark (the main job's 400/100 shape,
    scaled down), the same and other seeds: no test video file is a training video file, no test scene a training
    scene."""
    small = write_synthetic_benchmark(tmp_path / "small", num_train=20, num_test=10, seed=0)
    large = write_synthetic_benchmark(tmp_path / "large", num_train=40, num_test=10, seed=0)
    other_seed = write_synthetic_benchmark(tmp_path / "other_seed", num_train=40, num_test=10, seed=1)
    test_files = set().union(*(_video_digests(root, "test") for root in (small, large, other_seed)))
    train_files = set().union(*(_video_digests(root, "train") for root in (small, large, other_seed)))
    assert len(test_files) >= 10 and len(train_files) >= 40
    assert not test_files & train_files
    # The same holds for the scenes themselves over many seeds and sizes (caption and geometry).
    test_scenes = {spec for seed in range(5) for spec in generate_clip_specs(60, seed=seed, split="test")}
    train_scenes = {spec for seed in range(5) for spec in generate_clip_specs(240, seed=seed)}
    assert not test_scenes & train_scenes
    assert all(scene_split(spec) == "test" for spec in test_scenes)
    # A smaller benchmark's clips are the first ones of a larger one with the same seed (training and test alike).
    assert generate_clip_specs(20, seed=0) == generate_clip_specs(40, seed=0)[:20]
    assert generate_clip_specs(5, seed=0, split="test") == generate_clip_specs(10, seed=0, split="test")[:5]


def test_a_benchmark_of_the_earlier_generator_is_refused(tmp_path):
    import json

    import pytest

    from unitrim_hf.data import BenchmarkFormatError

    root = write_synthetic_benchmark(tmp_path / "synthetic", num_train=4, num_test=2, seed=0)
    manifest = json.loads((root / "synthetic_trim.json").read_text())
    del manifest["scene_generator"]
    (root / "synthetic_trim.json").write_text(json.dumps(manifest))
    with pytest.raises(BenchmarkFormatError, match="earlier version"):
        write_synthetic_benchmark(root, num_train=4, num_test=2, seed=0)


def test_drawing_scenes_describes_each_drawn_clip_once(monkeypatch):
    from unitrim_hf.data import synthetic

    expected = generate_clip_specs(24, seed=5, num_frames=8, split="test")
    draws, descriptions = [], []
    sample_clip, describe_clip = synthetic.sample_clip, synthetic.describe_clip

    def counting_sample_clip(*args, **kwargs):
        draws.append(1)
        return sample_clip(*args, **kwargs)

    def counting_describe_clip(clip):
        descriptions.append(1)
        return describe_clip(clip)

    monkeypatch.setattr(synthetic, "sample_clip", counting_sample_clip)
    monkeypatch.setattr(synthetic, "describe_clip", counting_describe_clip)
    assert generate_clip_specs(24, seed=5, num_frames=8, split="test") == expected
    assert len(draws) > 24  # some drawn scenes belong to the other split
    assert len(descriptions) == len(draws)
