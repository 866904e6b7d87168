"""The temporal-order scene set of SyntheticTriM: two changing objects per clip, each scene beside its reversal."""

import json

import numpy as np
import pytest

from unitrim_hf.data import generate_clip_specs, render_clip, write_synthetic_benchmark
from unitrim_hf.data.synthetic import ORDER_EVENTS, scene_split
from unitrim_hf.errors import BenchmarkFormatError
from unitrim_hf.training.command_line import parse_arguments
from unitrim_hf.training.preflight import check_data_folder


def _combined(spec) -> str:
    return spec.captions()[-1].text


def test_every_scene_is_followed_by_itself_played_backwards():
    specs = generate_clip_specs(40, seed=2, split="test", scene_set="temporal_order")
    assert len(specs) == 40
    for scene, backwards in zip(specs[::2], specs[1::2]):
        assert backwards == scene.reversed()
        assert np.array_equal(render_clip(backwards), render_clip(scene)[::-1])  # the same frames, the other order
        assert scene.captions()[0] == backwards.captions()[0]  # the spatial caption cannot tell them apart
        assert _combined(scene) != _combined(backwards)
    assert all(len(spec.objects) == 2 and {obj.event(spec.num_frames) for obj in spec.objects} <= set(ORDER_EVENTS)
               for spec in specs)
    assert len({_combined(spec) for spec in specs}) == len(specs)


def test_which_of_two_appearances_comes_first_is_the_combined_caption():
    specs = generate_clip_specs(400, seed=0, split="train", scene_set="temporal_order")
    ordered = [spec for spec in specs if {obj.event(spec.num_frames) for obj in spec.objects} == {"appears"}]
    assert ordered, "no clip where two objects appear"
    first, second = ordered[0].objects
    earlier, later = (first, second) if first.visible_from < second.visible_from else (second, first)
    assert _combined(ordered[0]) == f"a {later.name(16)} appears after a {earlier.name(16)}"


def test_an_odd_number_of_clips_ends_with_a_scene_without_its_reversal():
    specs = generate_clip_specs(5, seed=1, split="train", scene_set="temporal_order")
    assert len(specs) == 5 and specs[:4] == generate_clip_specs(4, seed=1, split="train", scene_set="temporal_order")


def test_test_scenes_are_test_scenes_of_the_mixed_benchmarks_too():
    """A reversed pair is drawn only when both scenes are test (or both training) scenes by the mixed set's hash, so
    no mixed training clip is a temporal-order test clip."""
    order_test = generate_clip_specs(60, seed=0, split="test", scene_set="temporal_order")
    assert all(scene_split(spec) == "test" for spec in order_test)
    mixed_train_scenes = {scene_split(spec) for spec in generate_clip_specs(400, seed=0, split="train")}
    assert mixed_train_scenes == {"train"}


def test_the_manifest_records_the_scene_set_and_a_contradiction_is_refused(tmp_path):
    root = write_synthetic_benchmark(tmp_path / "order", num_train=4, num_test=2, scenes="temporal_order")
    assert json.loads((root / "synthetic_trim.json").read_text())["scenes"] == "temporal_order"
    sentences = json.loads((root / "MSRVTT_data.json").read_text())["sentences"]
    assert len({row["video_id"] for row in sentences}) == 6
    with pytest.raises(BenchmarkFormatError, match="scenes=mixed contradicts .* scenes=temporal_order"):
        write_synthetic_benchmark(root, scenes="mixed")
    with pytest.raises(ValueError, match="scenes must be one of mixed, temporal_order"):
        write_synthetic_benchmark(tmp_path / "other", num_train=4, num_test=2, scenes="backwards")


def test_train_py_names_the_flag_in_a_contradiction(tmp_path):
    root = write_synthetic_benchmark(tmp_path / "order", num_train=4, num_test=2, scenes="temporal_order")
    arguments = parse_arguments(["--data_dir", str(root), "--output_dir", str(tmp_path / "run"), "--synthetic_scenes", "mixed"])
    with pytest.raises(Exception, match="--synthetic_scenes mixed contradicts"):
        check_data_folder(arguments[1])
