"""Behaviour of the `ts2net` preset: token shift is switchable and leaves CLIP alone when off, still images are
pseudo-videos, the preset survives a save/load round trip, and bad settings fail with a clear message."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPConfig, CLIPModel

from model_inputs import random_text_inputs, random_video_inputs
from unitrim_hf import UniTriMConfig, UniTriMModel


# Fewer frame slots and samples than the preset's 12 and 500, to keep the tests fast; the computation is the same.
FAST = {"max_frames": 4, "token_selection_samples": 50}


def ts2net(seed: int = 0, **overrides) -> UniTriMModel:
    torch.manual_seed(seed)
    return UniTriMModel(UniTriMConfig.from_preset("ts2net-tiny", **{**FAST, **overrides})).eval()


def test_token_shift_switched_off_keeps_clip_features_and_on_changes_only_videos() -> None:
    shifted, plain = ts2net(), ts2net(token_shift_layers=None)
    assert plain.token_shift is None and not plain.vision_model.encoder.layers[0].self_attn._forward_pre_hooks
    assert torch.equal(shifted.state_dict()["vision_model.encoder.layers.1.self_attn.q_proj.weight"],
                       plain.state_dict()["vision_model.encoder.layers.1.self_attn.q_proj.weight"])
    video = random_video_inputs(shifted.config, batch_size=2, num_frames=3)
    frames = video["pixel_values_videos"][video["video_mask"].bool()]
    with torch.no_grad():
        clip_states = plain.vision_model(pixel_values=frames).last_hidden_state
        # Outside a video the hooks do nothing: the tower is CLIP's.
        assert torch.equal(shifted.vision_model(pixel_values=frames).last_hidden_state, clip_states)
        plain_video = plain.get_video_features(**video)
        shifted_video = shifted.get_video_features(**video)
    # Without shift the video side's tower states are CLIP's on the real frames.
    torch.testing.assert_close(plain_video.last_hidden_state[video["video_mask"].bool()], clip_states)
    assert shifted_video.frame_embeds.shape[1] == shifted.config.max_frames  # padded to max_frames slots
    real = video["video_mask"].bool()
    assert (shifted_video.last_hidden_state[:, :3][real] - plain_video.last_hidden_state[real]).abs().max() > 1e-2


def test_still_images_are_videos_of_max_frames_copies() -> None:
    model = ts2net(token_selection_eval="hard")
    images = torch.randn(3, 3, 32, 32)
    text = random_text_inputs(model.config)
    copies = images[:, None].expand(-1, model.config.max_frames, -1, -1, -1)
    with torch.no_grad():
        as_image = model.get_image_features(images)
        as_video = model.get_video_features(copies)
        output = model(**text, pixel_values=images)
        expected = model.similarity(model.get_text_features(**text), as_video).logits
    assert not as_image.is_image and as_image.frame_embeds.shape[1] == model.config.max_frames
    assert UniTriMConfig.from_preset("ts2net").max_frames == 12  # the paper's 12 copies
    torch.testing.assert_close(as_image.frame_embeds, as_video.frame_embeds)
    torch.testing.assert_close(output.logits_per_text_image, expected)
    # Identical frames exchange identical tokens: the shift changes nothing on a pseudo-video.
    unshifted = ts2net(token_selection_eval="hard", token_shift_layers=None)
    with torch.no_grad():
        torch.testing.assert_close(unshifted.get_image_features(images).frame_embeds, as_image.frame_embeds)


def test_eval_selection_perturbed_is_seeded_and_hard_is_deterministic() -> None:
    model = ts2net()
    video = random_video_inputs(model.config, batch_size=2)
    with torch.no_grad():
        torch.manual_seed(3)
        first = model.get_video_features(**video).frame_embeds
        torch.manual_seed(3)
        again = model.get_video_features(**video).frame_embeds
        other = model.get_video_features(**video).frame_embeds
        model.token_selector.eval_selection = "hard"
        hard = [model.get_video_features(**video).frame_embeds for _ in range(2)]
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(*hard)


def test_round_trip_of_the_preset(tmp_path) -> None:
    model = ts2net(token_selection_eval="hard")
    with torch.no_grad():
        for parameter in model.token_selector.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    inputs = {**random_text_inputs(model.config), **random_video_inputs(model.config)}
    model.save_pretrained(tmp_path)
    loaded = UniTriMModel.from_pretrained(tmp_path).eval()
    assert loaded.config.token_shift_layers == [0, 1] and loaded.config.token_selection_mask == "tiled"
    assert loaded.token_shift is not None and loaded.config.image_as_pseudo_video
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits_per_text_video, model(**inputs).logits_per_text_video,
                                   rtol=0, atol=0)


def test_training_step_reaches_the_token_scorer() -> None:
    model = ts2net().train()
    inputs = {**random_text_inputs(model.config), **random_video_inputs(model.config)}
    output = model(**inputs, return_loss=True)
    output.loss.backward()
    assert model.token_selector.scorer.input_proj.weight.grad.abs().max() > 0
    assert model.temporal_encoder.frame_position_embedding.weight.grad[: 4 * 4].abs().max() > 0


def test_from_clip_builds_the_preset() -> None:
    tiny = UniTriMConfig.from_preset("ts2net-tiny")
    clip = CLIPModel(CLIPConfig(text_config=tiny.text_config.to_dict(), vision_config=tiny.vision_config.to_dict(),
                                projection_dim=32)).eval()
    model = UniTriMModel.from_clip(clip, preset="ts2net-tiny").eval()
    assert model.token_shift is not None and model.token_selector is not None
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():  # outside a video the tower is CLIP's
        torch.testing.assert_close(
            model.visual_projection(model.vision_model(pixel_values=image).pooler_output),
            clip.get_image_features(pixel_values=image).pooler_output,
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"token_shift_layers": [5]}, r"token_shift_layers \[5\]: \[5\] out of range for a vision tower of 2 layers"),
        ({"token_selection_top_k": 17}, "token_selection_top_k=17 must be between 1 and the 16 patches"),
        ({"token_selection_top_k": 6, "max_frames": 12}, "7 tokens of each of 12 frames, 84 positions, but the"),
        ({"token_selection_eval": "soft"}, "token_selection_eval"),
        ({"token_selection_sigma": 0.0}, "token_selection_sigma"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(overrides: dict, message: str) -> None:
    video = random_video_inputs(UniTriMConfig.from_preset("ts2net-tiny"), batch_size=1)
    with pytest.raises(ValueError, match=message):
        ts2net(**overrides).get_video_features(**video)


def test_longer_videos_than_max_frames_are_refused() -> None:
    model = ts2net()
    video = random_video_inputs(model.config, batch_size=1, num_frames=5)
    with pytest.raises(ValueError, match="token shift runs on config.max_frames=4"):
        model.get_video_features(**video)


def test_train_py_accepts_the_preset_and_its_shift_layers() -> None:
    from unitrim_hf.training import parse_arguments

    model_args = parse_arguments(["--preset", "ts2net-tiny", "--config_overrides", '{"token_shift_layers": [1]}'])[0]
    assert model_args.overrides()["token_shift_layers"] == [1]


def test_model_card_names_the_preset_only_with_its_token_modules() -> None:
    from unitrim_hf.training.model_card import matching_preset

    assert matching_preset(UniTriMConfig.from_preset("ts2net-tiny")) == "ts2net-tiny"
    assert matching_preset(UniTriMConfig.from_preset("ts2net-tiny", token_shift_layers=None)) is None


def test_the_caption_bank_cache_saves_a_sentence_only_text_feature(tmp_path) -> None:
    from unitrim_hf.search import bank_cache

    model = ts2net()
    with torch.no_grad():
        features = model.get_text_features(**random_text_inputs(model.config))
    assert features.combined_embeds is features.pooler_output  # `image_text_feature="sentence"` shares the tensor
    bank_cache._write(tmp_path / "bank.safetensors", features)
    torch.testing.assert_close(bank_cache._read(tmp_path / "bank.safetensors").combined_embeds, features.combined_embeds)


@pytest.mark.slow
def test_search_scores_images_of_a_pseudo_video_model_as_videos(tmp_path) -> None:
    from test_search_helpers import GOOD_IMAGES, GOOD_VIDEOS, NUM_FRAMES, write_media
    from unitrim_hf import UniTriMProcessor
    from unitrim_hf.search import IndexStore, Searcher, index_folder

    model = ts2net(max_frames=NUM_FRAMES)
    processor = UniTriMProcessor.for_model_config(model.config, frame_sampler_config={"num_frames": NUM_FRAMES})
    folder = write_media(tmp_path / "media", GOOD_VIDEOS[:1] + GOOD_IMAGES[:2])
    index_folder(folder, tmp_path / "index", model, processor, batch_size=4, progress=False)
    searcher = Searcher(tmp_path / "index", model, processor)
    results = searcher.search("a red square", top_k=3, num_candidates=3, explain=False)
    items, stored = IndexStore.open(searcher.store.location).load_features()
    text = searcher.encode("a red square").features
    for result in results:
        assert set(result.alignment_scores) == {"sentence_frame_softmax"}  # images too: no text_image score
        row = next(index for index, item in enumerate(items) if item.path == result.path)
        visual = searcher.visual_features(stored.take(torch.tensor([row])), result.kind)
        with torch.inference_mode():
            assert result.score == pytest.approx(float(model.similarity(text, visual).logits[0, 0]), abs=1e-5)
    assert {result.kind for result in results} == {"video", "image"}
