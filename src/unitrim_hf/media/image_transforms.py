"""CLIP's image preprocessing (short-side bicubic resize, center crop, normalization) as one batched tensor op.

Two resizes give CLIP's Pillow result to within two gray levels:

- "uint8" (the default): torch's antialiased bicubic resize of the uint8 frames (fixed-point horizontal then vertical
  passes, as Pillow), cropped, then converted to float and normalized: about 4x faster than "float";
- "float": the frames converted to float first, each pass rounded to uint8 values (the resize of earlier versions,
  kept so that features computed with it can be reproduced exactly).

The two differ by at most two gray levels on under 1 % of the values (docs/performance.md, "Frame sampling").
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
RESIZE_MODES = ("uint8", "float")
DEFAULT_RESIZE = "uint8"


def _frames_to_uint8_tensor(frames: Any) -> torch.Tensor:
    """Stack the accepted input kinds into a (num_frames, height, width, 3) uint8 tensor."""
    if isinstance(frames, (list, tuple)):
        if len(frames) == 0:
            raise ValueError("frames is an empty list")
        arrays = []
        for position, item in enumerate(frames):
            if hasattr(item, "convert") and hasattr(item, "size"):  # PIL image
                item = np.asarray(item.convert("RGB"))
            array = item.numpy() if isinstance(item, torch.Tensor) else np.asarray(item)
            if array.ndim != 3 or array.shape[-1] != 3:
                raise ValueError(f"frames[{position}] must have shape (height, width, 3), got {tuple(array.shape)}")
            if array.dtype != np.uint8:
                raise ValueError(f"frames[{position}] must be uint8, got {array.dtype}")
            if arrays and array.shape != arrays[0].shape:
                raise ValueError(
                    f"all frames must have the same size: frames[0] is {arrays[0].shape}, "
                    f"frames[{position}] is {array.shape}"
                )
            arrays.append(array)
        return torch.from_numpy(np.stack(arrays))
    if isinstance(frames, np.ndarray):
        if frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8, got {frames.dtype}")
        array = np.ascontiguousarray(frames)
        if not array.flags.writeable:  # torch warns on read-only buffers (e.g. np.asarray of a PIL image)
            array = array.copy()
        tensor = torch.from_numpy(array)
    elif isinstance(frames, torch.Tensor):
        if frames.dtype != torch.uint8:
            raise ValueError(f"frames must be uint8, got {frames.dtype}")
        tensor = frames
    else:
        raise ValueError(
            f"frames must be a uint8 array/tensor (num_frames, height, width, 3) or a list of images, got {type(frames)}"
        )
    if tensor.ndim != 4 or tensor.shape[-1] != 3:
        raise ValueError(
            f"frames must have shape (num_frames, height, width, 3), got {tuple(tensor.shape)}; "
            "wrap a single (height, width, 3) image as frames[None]"
        )
    if tensor.shape[0] == 0:
        raise ValueError("frames holds zero frames")
    return tensor


def resized_size(height: int, width: int, size: int) -> tuple[int, int]:
    """Output (height, width) of a short-side resize to `size` (the long side truncated, as torchvision does)."""
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


def clip_transform(
    frames: Any,
    size: int = 224,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    resize: str = DEFAULT_RESIZE,
) -> torch.Tensor:
    """CLIP preprocessing of a batch of frames.

    Args:
        frames: uint8 RGB (num_frames, height, width, 3) numpy array or torch tensor, or a list of PIL images /
            (height, width, 3) uint8 arrays of equal size.
        size: output side; the short side is resized to `size` (bicubic, antialiased), then center-cropped.
        mean, std: per-channel normalization applied after scaling to [0, 1].
        resize: "uint8" (resize the uint8 frames, then convert the crop to float) or "float" (convert to float,
            then resize, rounding each pass to uint8 values: the resize of earlier versions).

    Returns:
        float32 (num_frames, 3, size, size).

    Both resizes run as Pillow's does (horizontal then vertical pass, each rounded to uint8 values), so the result
    matches CLIP's PIL pipeline (Resize bicubic, CenterCrop, ToTensor, Normalize) to within two gray levels
    (about 0.03 after normalization), with almost every value within one level (0.015).
    """
    _check_settings(size, mean, std, resize)
    images = _frames_to_uint8_tensor(frames).permute(0, 3, 1, 2)  # (num_frames, 3, height, width)
    height, width = images.shape[-2:]
    new_height, new_width = resized_size(height, width, size)
    if resize == "uint8":
        if (new_height, new_width) != (height, width):
            images = F.interpolate(images, size=(new_height, new_width), mode="bicubic", align_corners=False, antialias=True)
    else:
        images = images.float()
        # Two separable passes (width, then height), each clamped and rounded to uint8 values: this is what
        # Pillow's resize does, and skipping the intermediate rounding leaves errors of up to ~20 gray levels on
        # noisy images.
        if new_width != width:
            images = F.interpolate(images, size=(height, new_width), mode="bicubic", align_corners=False, antialias=True)
            images = images.clamp_(0, 255).round_()
        if new_height != height:
            images = F.interpolate(images, size=(new_height, new_width), mode="bicubic", align_corners=False, antialias=True)
            images = images.clamp_(0, 255).round_()
    top = int(round((new_height - size) / 2.0))
    left = int(round((new_width - size) / 2.0))
    # The crop made contiguous before the arithmetic: on the channels-last layout of the input, the subtraction and
    # division cost several times the resize. The float tensor is always a new one (made here, or before the "float"
    # resize), so the in-place operations never touch the caller's data.
    images = images[:, :, top : top + size, left : left + size].contiguous().float()
    mean_tensor = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    std_tensor = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    return images.sub_(mean_tensor).div_(std_tensor)


def _check_settings(size: int, mean: Sequence[float], std: Sequence[float], resize: str) -> None:
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std need 3 values (RGB), got {len(mean)} and {len(std)}")
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")


class CLIPFrameTransform:
    """Holds the settings of `clip_transform`; calling it applies the transform.

    Args:
        size: output side.
        mean, std: per-channel normalization.
        resize: "uint8" or "float" (see `clip_transform`).
    """

    def __init__(
        self,
        size: int = 224,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        resize: str = DEFAULT_RESIZE,
    ):
        _check_settings(size, mean, std, resize)
        self.size = size
        self.mean = tuple(float(value) for value in mean)
        self.std = tuple(float(value) for value in std)
        self.resize = resize

    def __call__(self, frames: Any) -> torch.Tensor:
        return clip_transform(frames, self.size, self.mean, self.std, self.resize)

    def to_dict(self) -> dict:
        return {"size": self.size, "mean": list(self.mean), "std": list(self.std), "resize": self.resize}

    @classmethod
    def from_dict(cls, settings: dict) -> "CLIPFrameTransform":
        """The transform of `to_dict`'s settings (missing ones take the defaults). Complete settings written before
        `resize` existed (size, mean and std, as `to_dict` wrote them then) keep the resize they were made with,
        "float"."""
        unknown = set(settings) - {"size", "mean", "std", "resize"}
        if unknown:
            raise ValueError(f"unknown CLIPFrameTransform settings: {sorted(unknown)}")
        if {"size", "mean", "std"} <= settings.keys() and "resize" not in settings:
            settings = {**settings, "resize": "float"}
        return cls(**settings)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, mean={self.mean}, std={self.std}, resize={self.resize!r})"
