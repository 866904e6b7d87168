"""UniTriMProcessor: text, video files and images into model inputs; save/load; bad input."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoProcessor

from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor, VideoDecodingError
from unitrim_hf.media.video_writer import write_video

CAPTIONS = ["a little girl does gymnastics", "a man sings and dances on the stage", "red sunset"]


@pytest.fixture(scope="module")
def processor() -> UniTriMProcessor:
    config = UniTriMConfig.from_preset("unitrim-tiny")
    return UniTriMProcessor.for_model_config(config, frame_sampler_config={"num_frames": 4})


@pytest.fixture()
def video_files(tmp_path) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for name, num_frames in (("long.mp4", 30), ("short.avi", 2)):
        frames = rng.integers(0, 255, (num_frames, 48, 64, 3), dtype=np.uint8)
        paths.append(str(write_video(tmp_path / name, frames, fps=25)))
    return paths


def test_text_gives_tokens_and_triplets(processor: UniTriMProcessor) -> None:
    inputs = processor(text=CAPTIONS)
    assert inputs["input_ids"].shape == (3, 32)
    assert inputs["triplet_input_ids"].shape == (3, 4, 16)
    assert inputs["triplet_mask"].tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]
    assert inputs["input_ids"][0, 0] == 49406
    expected_phrase = processor.tokenizer("little girl do gymnastics")["input_ids"]
    assert processor.parse_triplets(CAPTIONS[0])[0].phrase == "little girl do gymnastics"
    assert inputs["triplet_input_ids"][0, 0, : len(expected_phrase)].tolist() == expected_phrase


def test_long_caption_is_truncated_and_keeps_eot(processor: UniTriMProcessor) -> None:
    inputs = processor(text=" ".join(["word"] * 100))
    assert inputs["attention_mask"].sum() == 32
    assert inputs["input_ids"][0, -1] == 49407
    paragraph = processor(text=" ".join(["word"] * 100), max_length=64)
    assert paragraph["input_ids"].shape == (1, 64) and paragraph["input_ids"][0, -1] == 49407


def test_videos_of_mixed_lengths_pad_and_mask(processor: UniTriMProcessor, video_files: list[str]) -> None:
    array_video = np.zeros((3, 20, 30, 3), dtype=np.uint8)
    inputs = processor(videos=[*video_files, array_video, [Image.new("RGB", (30, 20))]])
    assert inputs["pixel_values_videos"].shape == (4, 4, 3, 32, 32)
    assert inputs["video_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0]]
    padded = inputs["pixel_values_videos"][inputs["video_mask"] == 0]
    assert torch.count_nonzero(padded) == 0
    real = inputs["pixel_values_videos"][inputs["video_mask"] == 1]
    assert real.abs().sum(dim=(1, 2, 3)).min() > 0


def test_images_from_pil_arrays_and_paths(processor: UniTriMProcessor, tmp_path) -> None:
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8))
    image.save(tmp_path / "image.png")
    inputs = processor(images=[image, np.asarray(image), str(tmp_path / "image.png")])
    assert inputs["pixel_values"].shape == (3, 3, 32, 32)
    torch.testing.assert_close(inputs["pixel_values"][0], inputs["pixel_values"][1])
    torch.testing.assert_close(inputs["pixel_values"][0], inputs["pixel_values"][2])


def test_save_load_round_trip_gives_identical_tensors(processor: UniTriMProcessor, video_files, tmp_path) -> None:
    processor.save_pretrained(tmp_path / "saved")
    for loaded in (UniTriMProcessor.from_pretrained(tmp_path / "saved"), AutoProcessor.from_pretrained(tmp_path / "saved")):
        assert type(loaded) is UniTriMProcessor
        assert loaded.frame_sampler.to_dict() == processor.frame_sampler.to_dict()
        assert loaded.triplet_parser.to_dict() == processor.triplet_parser.to_dict()
        expected = processor(text=CAPTIONS, videos=video_files)
        actual = loaded(text=CAPTIONS, videos=video_files)
        assert set(actual) == set(expected)
        for key in expected:
            assert torch.equal(actual[key], expected[key]), key


def test_folder_tokenizer_is_used(processor: UniTriMProcessor, tmp_path) -> None:
    tokenizer = processor.tokenizer
    tokenizer.save_pretrained(tmp_path / "clip")  # a CLIP checkpoint folder holds its tokenizer like this
    custom = type(tokenizer).from_pretrained(tmp_path / "clip")
    custom.add_tokens(["<brand-new-token>"])
    custom.save_pretrained(tmp_path / "clip")
    loaded = UniTriMProcessor.from_pretrained(tmp_path / "clip")
    assert len(loaded.tokenizer) == len(tokenizer) + 1


def test_processor_output_feeds_the_model(processor: UniTriMProcessor, video_files) -> None:
    model = UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny")).eval()
    images = [np.full((32, 32, 3), 128, dtype=np.uint8)] * 2
    with torch.no_grad():
        output = model(**processor(text=CAPTIONS[:2], videos=video_files, images=images))
    assert output.logits_per_text_video.shape == (2, 2) and torch.isfinite(output.logits_per_text_video).all()


def test_without_triplets_no_triplet_inputs() -> None:
    processor = UniTriMProcessor.for_model_config(UniTriMConfig.from_preset("xclip-tiny"))
    assert "triplet_input_ids" not in processor(text=CAPTIONS)


def test_bad_input_is_named(processor: UniTriMProcessor, tmp_path) -> None:
    with pytest.raises(VideoDecodingError, match="missing.mp4"):
        processor(videos=str(tmp_path / "missing.mp4"))
    with pytest.raises(ValueError, match=r"\(num_frames, height, width, 3\)"):
        processor(videos=np.zeros((4, 10, 10), dtype=np.uint8).reshape(1, 4, 10, 10))
    with pytest.raises(ValueError, match="uint8"):
        processor(images=np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="at least one"):
        processor()
    with pytest.raises(ValueError, match="list of strings"):
        processor(text=[1, 2])


def test_clip_folder_image_settings_are_used(tmp_path) -> None:
    from transformers import CLIPImageProcessor, CLIPProcessor

    from unitrim_hf import load_clip_tokenizer

    image_processor = CLIPImageProcessor(crop_size={"height": 336, "width": 336}, size={"shortest_edge": 336})
    CLIPProcessor(image_processor=image_processor, tokenizer=load_clip_tokenizer()).save_pretrained(tmp_path / "clip")
    processor = UniTriMProcessor.from_pretrained(tmp_path / "clip")
    assert processor.image_transform.size == 336
    assert processor(images=np.zeros((40, 50, 3), dtype=np.uint8))["pixel_values"].shape == (1, 3, 336, 336)
    processor.save_pretrained(tmp_path / "saved")
    assert UniTriMProcessor.from_pretrained(tmp_path / "saved").image_transform.size == 336


# ------------------------------------------------------------------ keyword conventions of transformers 5


def test_text_keywords_flat_or_by_modality(processor: UniTriMProcessor) -> None:
    flat = processor(text=CAPTIONS, max_length=20)
    nested = processor(text=CAPTIONS, text_kwargs={"max_length": 20})
    assert flat["input_ids"].shape == (3, 20) and flat["input_ids"][:, -1].tolist() == [49407] * 3
    for key in flat:
        assert torch.equal(flat[key], nested[key]), key
    with pytest.raises(ValueError, match="passed two times"):
        processor(text=CAPTIONS, max_length=20, text_kwargs={"max_length": 24})


def test_padding_applies_to_captions_and_triplets_keep_their_layout(processor: UniTriMProcessor) -> None:
    longest = processor(text=CAPTIONS, padding="longest")
    assert longest["input_ids"].shape == (3, int(longest["attention_mask"].sum(dim=1).max()))
    assert longest["triplet_input_ids"].shape == (3, 4, 16)
    default = processor(text=CAPTIONS)
    width = longest["input_ids"].shape[1]
    assert torch.equal(longest["input_ids"], default["input_ids"][:, :width])
    untruncated = processor(text=" ".join(["word"] * 40), truncation=False, padding=False)
    assert untruncated["input_ids"].shape == (1, 42)


def test_return_tensors_numpy_and_unknown_keywords(processor: UniTriMProcessor) -> None:
    video = np.random.default_rng(2).integers(0, 255, (3, 20, 30, 3), dtype=np.uint8)
    expected = processor(text=CAPTIONS, videos=[video])
    as_numpy = processor(text=CAPTIONS, videos=[video], return_tensors="np")
    assert set(as_numpy) == set(expected)
    for key, value in expected.items():
        assert isinstance(as_numpy[key], np.ndarray), key
        np.testing.assert_array_equal(as_numpy[key], value.numpy())
    ignored = processor(text=CAPTIONS, videos=[video], not_a_keyword=1, do_sample_frames=False, return_tensors=None)
    for key, value in expected.items():
        assert torch.equal(ignored[key], value), key
    with pytest.raises(ValueError, match="one kind of tensors"):
        processor(text=CAPTIONS, videos=[video], text_kwargs={"return_tensors": "np"})


def test_channels_first_videos_and_images(processor: UniTriMProcessor) -> None:
    rng = np.random.default_rng(3)
    video = rng.integers(0, 255, (5, 20, 30, 3), dtype=np.uint8)
    channels_first = np.ascontiguousarray(video.transpose(0, 3, 1, 2))  # (T, 3, H, W), as transformers' video utils
    expected = processor(videos=video)
    for layout in (channels_first, torch.from_numpy(channels_first), list(channels_first)):
        actual = processor(videos=layout)
        for key in expected:
            assert torch.equal(actual[key], expected[key]), key
    image = video[0]
    assert torch.equal(
        processor(images=image.transpose(2, 0, 1))["pixel_values"], processor(images=image)["pixel_values"]
    )
    # Both the last axis and the axis before height hold 3: read channels-last, as (T, H=3, W=7, 3).
    ambiguous = rng.integers(0, 255, (2, 3, 7, 3), dtype=np.uint8)
    assert torch.equal(
        processor(videos=ambiguous)["pixel_values_videos"][0, :2], processor.image_transform(ambiguous)
    )
    with pytest.raises(ValueError, match=r"\(num_frames, 3, height, width\)"):
        processor(videos=np.zeros((2, 4, 10, 10), dtype=np.uint8))


def test_saved_tokenizer_keeps_no_call_state(processor: UniTriMProcessor, tmp_path) -> None:
    processor(text=CAPTIONS, max_length=64)  # the tokenizer's backend keeps the truncation of its last call
    processor.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "tokenizer.json").read_text())
    assert saved["truncation"] is None and saved["padding"] is None
    # A folder saved before: tokenizer.json records the triplet phrase length, which loads as `max_length`.
    saved["truncation"] = {"direction": "Right", "max_length": 16, "strategy": "LongestFirst", "stride": 0}
    (tmp_path / "saved" / "tokenizer.json").write_text(json.dumps(saved))
    loaded = UniTriMProcessor.from_pretrained(tmp_path / "saved")
    assert loaded.tokenizer.init_kwargs.get("max_length") == 16
    assert loaded(text=CAPTIONS)["input_ids"].shape == (3, 32)


# ------------------------------------------------------------------ for_model_config and a saved processor


def test_for_model_config_warns_when_the_folder_holds_other_settings(tmp_path, caplog) -> None:
    config = UniTriMConfig.from_preset("unitrim-tiny")
    config.save_pretrained(tmp_path)
    UniTriMProcessor.for_model_config(config, max_length=24, frame_sampler_config={"num_frames": 8}).save_pretrained(
        tmp_path
    )
    loaded_config = AutoConfig.from_pretrained(tmp_path)  # knows its folder, as UniTriMModel.from_pretrained's config
    with caplog.at_level(logging.WARNING, logger="unitrim_hf.processing_unitrim"):
        UniTriMProcessor.for_model_config(loaded_config)
    (record,) = [record for record in caplog.records if "for_model_config" in record.getMessage()]
    message = record.getMessage()
    differing = message.split(" (", 1)[1].split("); ", 1)[0]
    assert differing == "frame_sampler_config.num_frames: 12 here, 8 saved; max_length: 32 here, 24 saved"
    assert f"UniTriMProcessor.from_pretrained({str(tmp_path)!r})" in message

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="unitrim_hf.processing_unitrim"):
        UniTriMProcessor.for_model_config(loaded_config, max_length=24, frame_sampler_config={"num_frames": 8})
        UniTriMProcessor.for_model_config(config)  # not loaded from a folder
    assert not caplog.records


def test_a_lone_surrogate_in_a_caption_is_named(processor) -> None:
    """Text decoded with surrogateescape (a file name, a terminal in another encoding) has no UTF-8 form; the
    tokenizer's own error was a bare TypeError."""
    with pytest.raises(ValueError, match=r"`text\[1\]` is not valid Unicode: a lone surrogate U\+DC80 at character 6"):
        processor(text=["a cat sleeps", "a dog \udc80 runs"])
