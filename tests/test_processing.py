"""UniTriMProcessor: text, video files and images into model inputs; save/load; bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor

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
