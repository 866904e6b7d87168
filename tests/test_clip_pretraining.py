"""The offline CLIP stage: a tiny `CLIPModel` trained on keyframes and captions, saved as an ordinary CLIP folder,
then UniTriM and both baselines built from it with `from_clip` and fine-tuned with two learning-rate groups."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import CLIPModel

from unitrim_hf import UniTriMModel
from unitrim_hf.training import cli
from unitrim_hf.training.clip_pretraining import PRETRAINING_FILE_NAME, main as pretrain_main
from unitrim_hf.training.optimization import parameter_groups

SMALL_DATA = ["--synthetic_num_train", "16", "--synthetic_num_test", "8", "--num_frames", "2"]


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip_stage")
    pretrain_main(["--output_dir", str(root / "clip"), "--data_dir", str(root / "data"), *SMALL_DATA,
                   "--batch_size", "8", "--num_train_epochs", "2", "--max_length", "16"])
    return root


def test_clip_stage_saves_an_ordinary_clip_folder(clip_folder) -> None:
    folder = clip_folder / "clip"
    clip = CLIPModel.from_pretrained(folder)
    assert clip.config.projection_dim == 32 and clip.config.vision_config.image_size == 32
    record = json.loads((folder / PRETRAINING_FILE_NAME).read_text())
    assert record["steps"] == 4  # 16 videos / batch 8 x 2 epochs
    assert 0 <= record["text_to_image"]["R@1"] <= 100 and record["text_to_image"]["num_queries"] == 8
    fresh = CLIPModel(clip.config)
    assert not torch.equal(fresh.text_projection.weight, clip.text_projection.weight)  # it was trained and saved


@pytest.mark.parametrize("preset", ["unitrim-tiny", "xclip-tiny", "clip4clip-meanp-tiny"])
def test_every_preset_starts_from_the_stage_and_gets_two_learning_rates(clip_folder, preset: str) -> None:
    clip = CLIPModel.from_pretrained(clip_folder / "clip")
    model = UniTriMModel.from_clip(str(clip_folder / "clip"), preset=preset)
    for name, tensor in clip.text_model.state_dict().items():
        torch.testing.assert_close(model.text_model.state_dict()[name], tensor)
    torch.testing.assert_close(model.visual_projection.weight, clip.visual_projection.weight)
    rates = {group["name"]: group["lr"] for group in parameter_groups(model, 1e-3, 1e-4, 0.2)}
    assert rates["clip_decay"] == 1e-4
    if preset != "clip4clip-meanp-tiny":  # clip4clip-meanp has no new modules
        assert rates["new_decay"] == 1e-3


@pytest.mark.usefixtures("fresh_accelerate_state")
def test_train_py_fine_tunes_from_the_clip_folder(clip_folder, tmp_path) -> None:
    result = cli.run([
        "--clip_model_name_or_path", str(clip_folder / "clip"), "--preset", "unitrim-tiny",
        "--data_dir", str(clip_folder / "data"), *SMALL_DATA, "--max_length", "16",
        "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8", "--max_steps", "2",
        "--learning_rate", "1e-3", "--clip_learning_rate", "1e-4", "--output_dir", str(tmp_path / "run"),
        "--report_to", "none",
    ])
    assert result.global_step == 2 and result.evaluation is not None
    saved = UniTriMModel.from_pretrained(result.final_model_dir)
    assert saved.config.projection_dim == 32


def test_missing_and_corrupt_videos_are_reported_and_left_out(tmp_path, capsys) -> None:
    """The stage died with a raw KeyError after training when a test video could not be decoded."""
    from unitrim_hf.data import write_synthetic_benchmark

    data = write_synthetic_benchmark(tmp_path / "data", num_train=16, num_test=8, num_frames=8, frame_size=32)
    videos = data / "videos" / "all"
    (videos / "video3.mp4").unlink()  # a training video
    (videos / "video17.mp4").unlink()  # a test video
    (videos / "video18.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    pretrain_main(["--output_dir", str(tmp_path / "clip"), "--data_dir", str(data), *SMALL_DATA,
                   "--batch_size", "8", "--num_train_epochs", "1", "--max_length", "16"])
    record = json.loads((tmp_path / "clip" / PRETRAINING_FILE_NAME).read_text())
    assert record["skipped_eval_videos"] == ["video18"]  # the missing one never enters the split
    assert record["text_to_image"]["num_queries"] == 6
    assert "Left out 1 test videos that could not be decoded: video18" in capsys.readouterr().out
