"""Keyframes by self-attention among a video's frames: the choice on constructed features, the CLIP feature
embedder, and the frame cache built by training."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import torch
from transformers import CLIPConfig, CLIPModel

from unitrim_hf import UniTriMConfig, UniTriMModel, clip_transform
from unitrim_hf import FrameSampler
from unitrim_hf.data import MSRVTT, prepare_frames, read_cached_batch
from unitrim_hf.data.keyframes import CLIPFrameEmbedder, attention_received, select_keyframe_index
from unitrim_hf.data.synthetic_writer import write_synthetic_benchmark
from unitrim_hf.training import parse_arguments
from unitrim_hf.training.builders import keyframe_settings

# Five real frames (and one padding frame) whose 2-D features point at these angles: two frames of one shot
# (90, 100 degrees), then three of another (0, 10, 20). Each frame attends mostly to its nearest other frame;
# 10 degrees is the nearest neighbour of both 0 and 20, so it receives the most attention (about 1.92).
ANGLES = [90.0, 100.0, 0.0, 10.0, 20.0]


def _constructed_video() -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    frames = np.zeros((6, 2, 2, 3), dtype=np.uint8)
    for index in range(len(ANGLES)):
        frames[index] = index  # each frame carries its index, so the embedder can look its feature up
    mask = np.array([1, 1, 1, 1, 1, 0])
    features = 10.0 * torch.tensor([[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in ANGLES])
    return frames, mask, features


def test_self_attention_keyframe_differs_from_middle_and_centroid():
    frames, mask, features = _constructed_video()

    def embed(real_frames: np.ndarray) -> torch.Tensor:
        assert real_frames.shape == (5, 2, 2, 3)  # the padding frame is never embedded
        return features[[int(frame[0, 0, 0]) for frame in real_frames]]

    assert select_keyframe_index(frames, mask, "middle") == 2
    assert select_keyframe_index(frames, mask, "clip_centroid", embed_frames=embed) == 4
    assert select_keyframe_index(frames, mask, "self_attention", embed_frames=embed) == 3
    received = attention_received(features)
    assert received.sum().item() == pytest.approx(5.0)
    assert received.tolist() == pytest.approx([1.0, 1.0, 0.5395, 1.9209, 0.5395], abs=1e-3)
    # A very soft softmax spreads attention evenly, and the choice drifts to the centroid's frame.
    assert select_keyframe_index(frames, mask, "self_attention", embed_frames=embed, temperature=1000.0) == 4
    with pytest.raises(ValueError, match='"self_attention" needs embed_frames'):
        select_keyframe_index(frames, mask, "self_attention")
    with pytest.raises(ValueError, match="temperature must be positive"):
        select_keyframe_index(frames, mask, "self_attention", embed_frames=embed, temperature=0.0)
    with pytest.raises(ValueError, match="non-finite"):
        select_keyframe_index(frames, mask, "self_attention", embed_frames=lambda f: torch.full((5, 2), float("nan")))


def test_identical_frames_give_the_middle_frame():
    frames = np.zeros((7, 2, 2, 3), dtype=np.uint8)
    mask = np.array([1, 1, 1, 1, 1, 0, 0])
    assert select_keyframe_index(frames, mask, "self_attention", embed_frames=lambda f: torch.ones(len(f), 4)) == 2


def test_a_single_frame_is_its_own_keyframe():
    assert attention_received(torch.ones(1, 4)).tolist() == [1.0]
    frames = np.zeros((3, 2, 2, 3), dtype=np.uint8)
    assert select_keyframe_index(frames, np.array([0, 1, 0]), "self_attention", embed_frames=lambda f: torch.ones(1, 4)) == 1


def _tiny_clip(folder) -> str:
    config = CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},  # 16 patches: unitrim-tiny keeps 6
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    return str(folder)


def test_clip_frame_embedder_gives_clip_image_features(tmp_path):
    folder = _tiny_clip(tmp_path / "clip")
    frames = np.random.default_rng(0).integers(0, 256, size=(3, 40, 48, 3), dtype=np.uint8)
    embedder = CLIPFrameEmbedder(folder, batch_size=2)
    features = embedder(frames)
    assert features.shape == (3, 16) and embedder.image_size == 32
    model = CLIPModel.from_pretrained(folder).eval()
    with torch.no_grad():
        expected = model.get_image_features(pixel_values=clip_transform(frames, size=32)).pooler_output
    assert torch.allclose(features, expected, atol=1e-5)
    restored = pickle.loads(pickle.dumps(embedder))  # workers of prepare_frames(num_proc > 1) receive it pickled
    assert restored._model is None and torch.allclose(restored(frames), features, atol=1e-5)


def test_clip_frame_embedder_reads_a_saved_unitrim_model(tmp_path):
    model = UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny"))
    model.save_pretrained(tmp_path / "unitrim")
    size = model.config.vision_config.image_size
    frames = np.random.default_rng(1).integers(0, 256, size=(2, size, size, 3), dtype=np.uint8)
    features = CLIPFrameEmbedder(str(tmp_path / "unitrim"))(frames)
    assert features.shape == (2, model.config.projection_dim) and torch.isfinite(features).all()


def test_training_frame_cache_uses_self_attention_keyframes_of_the_starting_checkpoint(tmp_path):
    folder = _tiny_clip(tmp_path / "clip")
    _, data, _ = parse_arguments(["--clip_model_name_or_path", folder, "--output_dir", str(tmp_path / "out")])
    assert data.keyframe_features == folder
    settings = keyframe_settings(data, image_size=32)
    assert settings["keyframe_strategy"] == "self_attention" and settings["embed_frames"].name == folder
    _, random_init, _ = parse_arguments(["--output_dir", str(tmp_path / "out")])
    assert random_init.keyframe_features is None and keyframe_settings(random_init, 32) == {"keyframe_strategy": "middle"}
    # A saved model being evaluated or continued does not choose its own test images.
    _, saved, _ = parse_arguments(["--model_name_or_path", str(tmp_path / "saved"), "--output_dir", str(tmp_path / "out")])
    assert saved.keyframe_features is None
    _, explicit, _ = parse_arguments(["--model_name_or_path", "m", "--keyframe_features", folder, "--output_dir", "o"])
    assert explicit.keyframe_features == folder

    root = write_synthetic_benchmark(tmp_path / "data", num_train=3, num_test=1, seed=3, num_frames=8, frame_size=32)
    builder = MSRVTT(data_dir=str(root), config_name="9k", cache_dir=str(tmp_path / "hf"))
    builder.download_and_prepare()
    split = builder.as_dataset("train")
    sampler = FrameSampler(num_frames=6)
    cache = prepare_frames(split, sampler, tmp_path / "cache", image_size=32, **settings)
    info = json.loads((tmp_path / "cache" / "cache_info.json").read_text())
    assert info["keyframe_strategy"] == "self_attention" and info["keyframe_features"] == folder
    batch = read_cached_batch(cache, list(range(cache.num_rows)))
    embedder = CLIPFrameEmbedder(folder)
    chosen = []
    for position in range(cache.num_rows):
        frames, mask = batch["frames"][position], batch["video_mask"][position]
        index = select_keyframe_index(frames, mask, "self_attention", embedder)
        assert np.array_equal(batch["keyframe"][position], frames[index])
        chosen.append(index)
    assert all(0 <= index < 6 for index in chosen)
