"""clip_transform against CLIP's Pillow pipeline (bicubic short-side resize, center crop, ToTensor, Normalize)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from unitrim_hf.media.image_transforms import CLIP_MEAN, CLIP_STD, CLIPFrameTransform, clip_transform

ONE_GRAY_LEVEL = 1.0 / 255 / min(CLIP_STD)  # ~0.0146 after normalization


def pil_reference(image: np.ndarray, size: int = 224) -> torch.Tensor:
    """CLIP's preprocessing written with Pillow alone: (3, size, size) float32."""
    picture = Image.fromarray(image)
    width, height = picture.size
    scale = size / min(width, height)
    new_width = size if width <= height else int(size * width / height)
    new_height = size if height <= width else int(size * height / width)
    assert abs(new_width - width * scale) < 1 and abs(new_height - height * scale) < 1
    picture = picture.resize((new_width, new_height), Image.BICUBIC)
    left, top = int(round((new_width - size) / 2.0)), int(round((new_height - size) / 2.0))
    picture = picture.crop((left, top, left + size, top + size))
    tensor = torch.from_numpy(np.array(picture)).permute(2, 0, 1).float() / 255
    return (tensor - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]


def test_images(height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    rows, columns = np.mgrid[:height, :width]
    smooth = np.stack([columns * 255 // width, rows * 255 // height, ((rows + columns) % 50) * 5], axis=-1)
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3))
    return [smooth.astype(np.uint8), noise.astype(np.uint8)]


test_images.__test__ = False  # a helper, not a test


@pytest.mark.parametrize("resize", ["uint8", "float"])
@pytest.mark.parametrize("height, width", [(240, 320), (360, 640), (480, 270), (100, 150), (300, 301), (224, 224)])
def test_matches_pillow_reference(height, width, resize):
    for image in test_images(height, width):
        output = clip_transform(image[None], resize=resize)
        assert output.shape == (1, 3, 224, 224) and output.dtype == torch.float32
        difference = (output[0] - pil_reference(image)).abs()
        assert difference.max() <= 2 * ONE_GRAY_LEVEL + 1e-4, float(difference.max())
        assert (difference > ONE_GRAY_LEVEL + 1e-4).float().mean() < 1e-3, "off by more than one level"
        assert difference.mean() < 0.1 * ONE_GRAY_LEVEL


def test_uint8_and_float_resizes_differ_by_at_most_two_levels_on_few_values():
    frames = np.stack(test_images(240, 320, seed=3) + test_images(240, 320, seed=4))
    uint8_resize, float_resize = clip_transform(frames, resize="uint8"), clip_transform(frames, resize="float")
    levels = ((uint8_resize - float_resize) * torch.tensor(CLIP_STD).view(1, 3, 1, 1) * 255).abs().round()
    assert levels.max() <= 2
    assert 0 < (levels > 0).float().mean() < 0.03  # not the same computation, and close


def test_float_resize_rounds_each_pass():
    """The "float" resize of earlier versions: float bicubic passes, width first, each rounded to uint8 values."""
    image = test_images(60, 90, seed=5)[1]
    images = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    images = torch.nn.functional.interpolate(images, size=(60, 48), mode="bicubic", antialias=True).clamp(0, 255).round()
    images = torch.nn.functional.interpolate(images, size=(32, 48), mode="bicubic", antialias=True).clamp(0, 255).round()
    expected = (images[..., 8:40] / 255 - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(clip_transform(image[None], size=32, resize="float"), expected)


def test_small_output_size_and_custom_normalization():
    image = test_images(90, 120)[0]
    output = clip_transform(image[None], size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert output.shape == (1, 3, 32, 32)
    assert output.min() >= -1 - 1e-6 and output.max() <= 1 + 1e-6


def test_batch_is_the_same_as_one_frame_at_a_time():
    frames = np.stack(test_images(120, 160, seed=1) + test_images(120, 160, seed=2))
    batched = clip_transform(frames, size=64)
    one_by_one = torch.cat([clip_transform(frame[None], size=64) for frame in frames])
    torch.testing.assert_close(batched, one_by_one)


def test_input_kinds_agree():
    frames = np.stack(test_images(60, 80))
    from_numpy = clip_transform(frames, size=48)
    torch.testing.assert_close(clip_transform(torch.from_numpy(frames), size=48), from_numpy)
    torch.testing.assert_close(clip_transform([Image.fromarray(frame) for frame in frames], size=48), from_numpy)
    torch.testing.assert_close(clip_transform(list(frames), size=48), from_numpy)
    grayscale = Image.fromarray(frames[0]).convert("L")
    assert clip_transform([grayscale], size=48).shape == (1, 3, 48, 48)


def test_no_resize_when_short_side_already_matches():
    image = test_images(224, 300)[0]
    output = clip_transform(image[None])
    left = int(round((300 - 224) / 2.0))
    expected = torch.from_numpy(image[:, left : left + 224].copy()).permute(2, 0, 1).float() / 255
    expected = (expected - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]
    torch.testing.assert_close(output[0], expected)


@pytest.mark.parametrize(
    "frames, message",
    [
        (np.zeros((48, 64, 3), np.uint8), "frames\\[None\\]"),
        (np.zeros((2, 48, 64, 4), np.uint8), "shape"),
        (np.zeros((2, 48, 64, 3), np.float32), "uint8"),
        (torch.zeros((2, 48, 64, 3)), "uint8"),
        (np.zeros((0, 48, 64, 3), np.uint8), "zero frames"),
        ([], "empty"),
        ([np.zeros((48, 64, 3), np.uint8), np.zeros((40, 64, 3), np.uint8)], "same size"),
        ([np.zeros((48, 64), np.uint8)], "frames\\[0\\]"),
        ("video.mp4", "uint8 array"),
    ],
)
def test_bad_input_raises_value_error(frames, message):
    with pytest.raises(ValueError, match=message):
        clip_transform(frames)


def test_transform_object_round_trip():
    transform = CLIPFrameTransform(size=32)
    restored = CLIPFrameTransform.from_dict(transform.to_dict())
    assert restored.to_dict() == transform.to_dict()
    assert transform.to_dict()["resize"] == "uint8"
    frames = np.stack(test_images(40, 50))
    torch.testing.assert_close(restored(frames), clip_transform(frames, size=32))
    float_resize = CLIPFrameTransform.from_dict({**transform.to_dict(), "resize": "float"})
    torch.testing.assert_close(float_resize(frames), clip_transform(frames, size=32, resize="float"))
    # Settings saved before the resize was a setting keep the resize they were saved with; no settings: the default.
    old_settings = {"size": 32, "mean": list(transform.mean), "std": list(transform.std)}
    assert CLIPFrameTransform.from_dict(old_settings).resize == "float"
    assert CLIPFrameTransform.from_dict({}).resize == CLIPFrameTransform.from_dict({"size": 32}).resize == "uint8"
    with pytest.raises(ValueError):
        CLIPFrameTransform(size=0)
    with pytest.raises(ValueError, match="resize must be one of"):
        CLIPFrameTransform(resize="bilinear")
    with pytest.raises(ValueError, match="unknown"):
        CLIPFrameTransform.from_dict({"size": 32, "crop": 3})
