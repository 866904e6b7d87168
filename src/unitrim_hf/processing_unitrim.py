"""UniTriMProcessor: captions, video files and images into exactly the inputs UniTriMModel takes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from transformers import BatchFeature, ProcessorMixin
from transformers.utils import cached_file

from .media.frame_sampling import FrameSampler
from .media.frame_selection import FrameGrid
from .media.image_loading import DEFAULT_MAX_IMAGE_PIXELS, load_image_file, pil_image_to_rgb
from .media.image_transforms import CLIPFrameTransform
from .remote_processor import LOADER_REFERENCE, write_processor_bundle
from .tokenization import load_clip_tokenizer
from .triplets import Triplet, TripletParser, strip_control_characters

PathLike = str | os.PathLike


class UniTriMProcessor(ProcessorMixin):
    r"""
    Turns raw captions, videos and images into `UniTriMModel` inputs, offline.

    - text (a caption or a list) -> `input_ids`, `attention_mask` (B, max_length) and, with triplets,
      `triplet_input_ids`, `triplet_attention_mask` (B, max_triplets, max_triplet_length), `triplet_mask`
      (B, max_triplets); ANSI escape sequences and control characters are removed from captions first;
    - videos (paths, (T, H, W, 3) uint8 arrays, or lists of frames) -> `pixel_values_videos` (B, T, 3, S, S),
      zero-padded, and `video_mask` (B, T);
    - images (PIL images, (H, W, 3) uint8 arrays or paths) -> `pixel_values` (B, 3, S, S).

    Media files are read as a player or viewer shows them, at a bounded cost (docs/datasets.md, "Bad input"):

    - video: frames chosen by presentation time (variable frame rate included), rotated by the display matrix;
      animated GIFs are videos (every frame, each shown for its own duration); a still image, a file with no video
      stream, a truncated or corrupt file, or a header that claims more frames than the file can hold raises
      `VideoDecodingError` naming the file;
    - images: EXIF orientation applied, 16-bit grayscale scaled to 8 bits; a file over `max_image_pixels` raises
      `ImageDecodingError` naming the file (JPEGs are first decoded at 1/2, 1/4 or 1/8 size to fit), as do
      unreadable files and Pillow's decompression bombs.

    Args:
        tokenizer: a CLIP tokenizer; None loads the one shipped with the package.
        max_length: caption tokens incl. SOT/EOT (32; 64 for DiDeMo paragraphs); longer captions are truncated
            and keep EOT.
        use_triplets: produce the triplet inputs (set False for presets without triplets).
        max_triplets: triplets kept per caption (the model's `config.max_triplets`).
        max_triplet_length: tokens per triplet phrase.
        triplet_parser_config: `TripletParser.to_dict()` settings (backend, ...).
        frame_sampler_config: `FrameSampler.to_dict()` settings (num_frames, strategy, ...).
        image_transform_config: `CLIPFrameTransform.to_dict()` settings (size, mean, std).
        max_image_pixels: largest width x height of an image file that is decoded (50 megapixels); None: only
            Pillow's decompression-bomb limit.
    """

    attributes = ["tokenizer"]
    tokenizer_class = "AutoTokenizer"

    def __init__(
        self,
        tokenizer: Any = None,
        max_length: int = 32,
        use_triplets: bool = True,
        max_triplets: int = 4,
        max_triplet_length: int = 16,
        triplet_parser_config: dict | None = None,
        frame_sampler_config: dict | None = None,
        image_transform_config: dict | None = None,
        max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
        **kwargs: Any,
    ) -> None:
        if tokenizer is None:
            tokenizer = load_clip_tokenizer(None, model_max_length=max_length)
        if max_length < 2 or max_triplet_length < 2:
            raise ValueError("max_length and max_triplet_length must leave room for SOT and EOT (>= 2).")
        self.max_length = max_length
        self.use_triplets = use_triplets
        self.max_triplets = max_triplets
        self.max_triplet_length = max_triplet_length
        if max_image_pixels is not None and (isinstance(max_image_pixels, bool) or int(max_image_pixels) < 1):
            raise ValueError(f"max_image_pixels must be a positive integer or None, got {max_image_pixels!r}.")
        self.max_image_pixels = None if max_image_pixels is None else int(max_image_pixels)
        self.triplet_parser = TripletParser.from_dict(triplet_parser_config or {})
        self.frame_sampler = FrameSampler.from_dict(frame_sampler_config or {})
        self.image_transform = CLIPFrameTransform.from_dict(image_transform_config or {})
        self.triplet_parser_config = self.triplet_parser.to_dict()
        self.frame_sampler_config = self.frame_sampler.to_dict()
        self.image_transform_config = self.image_transform.to_dict()
        super().__init__(tokenizer, **kwargs)

    @classmethod
    def for_model_config(cls, config: Any, tokenizer: Any = None, **overrides: Any) -> "UniTriMProcessor":
        """A processor matching a `UniTriMConfig`: image size, triplets on/off, `max_triplets` and phrase length."""
        settings = {
            "use_triplets": config.use_triplets,
            "max_triplets": config.max_triplets,
            "max_triplet_length": config.max_triplet_length,
            "image_transform_config": {"size": int(config.vision_config.image_size)},
        }
        settings.update(overrides)
        return cls(tokenizer, **settings)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: PathLike, **kwargs: Any) -> "UniTriMProcessor":
        """
        Load a saved UniTriM processor, or build one from a CLIP checkpoint folder (or Hub id): its tokenizer, and
        its image size, mean and std from `preprocessor_config.json` when the folder has no UniTriM settings.
        """
        if "image_transform_config" not in kwargs:
            clip_settings = _clip_image_settings(pretrained_model_name_or_path, kwargs)
            if clip_settings is not None:
                kwargs["image_transform_config"] = clip_settings
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def save_pretrained(self, save_directory: PathLike, push_to_hub: bool = False, **kwargs: Any) -> list[str]:
        """
        Save the tokenizer and the settings (`processor_config.json`), plus the processor's code and the parser's
        data, so that `AutoProcessor.from_pretrained(folder, trust_remote_code=True)` rebuilds this processor where
        the package is not installed (see `remote_processor`). `push_to_hub=True` then uploads the folder.
        """
        self.auto_map = {"AutoProcessor": LOADER_REFERENCE}
        try:
            files = super().save_pretrained(save_directory, **kwargs)
        finally:
            del self.auto_map
        files += write_processor_bundle(save_directory, __file__)
        if push_to_hub:
            self.push_to_hub(kwargs.get("repo_id", Path(save_directory).name), token=kwargs.get("token"))
        return files

    @property
    def num_frames(self) -> int:
        return self.frame_sampler.num_frames

    # ------------------------------------------------------------------ text

    def parse_triplets(self, text: str) -> list[Triplet]:
        """The caption's (subject, predicate, object) triplets, at most `max_triplets`."""
        return self.triplet_parser.parse(text)[: self.max_triplets]

    def _tokenize(self, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(
            texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt"
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def encode_text(self, text: str | Sequence[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Token and triplet tensors of a caption or a list of captions (ANSI escapes and control characters removed)."""
        texts = [text] if isinstance(text, str) else list(text)
        if not texts or not all(isinstance(item, str) for item in texts):
            raise ValueError("`text` must be a string or a non-empty list of strings.")
        texts = [strip_control_characters(item) for item in texts]
        features = self._tokenize(texts, max_length or self.max_length)
        if not self.use_triplets:
            return features
        triplets = [parsed[: self.max_triplets] for parsed in self.triplet_parser.parse_batch(texts)]
        phrases = [triplet.phrase for caption in triplets for triplet in caption]
        batch_size = len(texts)
        shape = (batch_size, self.max_triplets, self.max_triplet_length)
        empty = self._tokenize([""], self.max_triplet_length)
        triplet_input_ids = empty["input_ids"].expand(*shape).clone()
        triplet_attention_mask = empty["attention_mask"].expand(*shape).clone()
        triplet_mask = torch.zeros(batch_size, self.max_triplets, dtype=torch.long)
        if phrases:
            encoded = self._tokenize(phrases, self.max_triplet_length)
            rows = torch.tensor([row for row, caption in enumerate(triplets) for _ in caption])
            slots = torch.tensor([slot for caption in triplets for slot in range(len(caption))])
            triplet_input_ids[rows, slots] = encoded["input_ids"]
            triplet_attention_mask[rows, slots] = encoded["attention_mask"]
            triplet_mask[rows, slots] = 1
        features.update(
            triplet_input_ids=triplet_input_ids, triplet_attention_mask=triplet_attention_mask, triplet_mask=triplet_mask
        )
        return features

    # ------------------------------------------------------------------ videos and images

    def _video_frames(self, video: Any, start_time: float | None, end_time: float | None) -> np.ndarray:
        """(num_real_frames, H, W, 3) uint8 frames of one video given as a path, an array or a list of frames."""
        if isinstance(video, (str, os.PathLike)):
            sampled = self.frame_sampler(video, start_time=start_time, end_time=end_time)
            return sampled.frames[sampled.mask.astype(bool)]
        if isinstance(video, (list, tuple)):
            if not video:
                raise ValueError("A video given as a list of frames must have at least one frame.")
            video = np.stack([pil_image_to_rgb(frame) if isinstance(frame, Image.Image) else np.asarray(frame) for frame in video])
        frames = video.numpy() if isinstance(video, torch.Tensor) else np.asarray(video)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or frames.shape[0] == 0:
            raise ValueError(
                "A video array must be uint8 RGB of shape (num_frames, height, width, 3) with at least one frame, "
                f"got dtype {frames.dtype} and shape {frames.shape}."
            )
        if frames.shape[0] > self.num_frames:
            uniform = FrameSampler(self.num_frames, strategy="uniform")
            frames = frames[uniform.sample_indices(FrameGrid(frames.shape[0], 1.0))]
        return frames

    def encode_videos(
        self,
        videos: Any,
        start_times: Sequence[float | None] | None = None,
        end_times: Sequence[float | None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """`pixel_values_videos` (B, num_frames, 3, S, S), zero-padded, and `video_mask` (B, num_frames)."""
        videos = [videos] if _is_single_video(videos) else list(videos)
        if not videos:
            raise ValueError("`videos` must hold at least one video.")
        start_times = list(start_times) if start_times is not None else [None] * len(videos)
        end_times = list(end_times) if end_times is not None else [None] * len(videos)
        if not (len(start_times) == len(end_times) == len(videos)):
            raise ValueError("video_start_times and video_end_times need one entry per video.")
        size = self.image_transform.size
        pixel_values = torch.zeros(len(videos), self.num_frames, 3, size, size)
        video_mask = torch.zeros(len(videos), self.num_frames, dtype=torch.long)
        for row, (video, start, end) in enumerate(zip(videos, start_times, end_times)):
            frames = self._video_frames(video, start, end)
            pixel_values[row, : len(frames)] = self.image_transform(frames)
            video_mask[row, : len(frames)] = 1
        return {"pixel_values_videos": pixel_values, "video_mask": video_mask}

    def encode_images(self, images: Any) -> dict[str, torch.Tensor]:
        """`pixel_values` (B, 3, S, S) of PIL images, (H, W, 3) uint8 arrays or image paths."""
        images = [images] if _is_single_image(images) else list(images)
        if not images:
            raise ValueError("`images` must hold at least one image.")
        return {
            "pixel_values": torch.cat([self.image_transform([_load_image(image, self.max_image_pixels)]) for image in images])
        }

    # ------------------------------------------------------------------ entry point

    def __call__(
        self,
        text: str | Sequence[str] | None = None,
        videos: Any = None,
        images: Any = None,
        video_start_times: Sequence[float | None] | None = None,
        video_end_times: Sequence[float | None] | None = None,
        max_length: int | None = None,
        return_tensors: str | None = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        """
        Args:
            text: a caption or a list of captions.
            videos: a video (path, (T, H, W, 3) uint8 array, list of frames) or a list of them.
            images: an image (PIL image, (H, W, 3) uint8 array, path) or a list of them.
            video_start_times, video_end_times: optional per-video moment bounds in seconds (DiDeMo).
            max_length: overrides the caption length for this call (e.g. 64 for paragraphs).
            return_tensors: "pt" (only PyTorch tensors are produced).
        """
        if kwargs:
            raise ValueError(f"Unexpected arguments {sorted(kwargs)}.")
        if return_tensors not in ("pt", None):
            raise ValueError(f"UniTriMProcessor returns PyTorch tensors only (return_tensors='pt'), got {return_tensors!r}.")
        if text is None and videos is None and images is None:
            raise ValueError("Pass at least one of `text`, `videos` or `images`.")
        data: dict[str, torch.Tensor] = {}
        if text is not None:
            data.update(self.encode_text(text, max_length))
        if videos is not None:
            data.update(self.encode_videos(videos, video_start_times, video_end_times))
        if images is not None:
            data.update(self.encode_images(images))
        return BatchFeature(data=data, tensor_type="pt")

    @property
    def model_input_names(self) -> list[str]:
        names = ["input_ids", "attention_mask"]
        if self.use_triplets:
            names += ["triplet_input_ids", "triplet_attention_mask", "triplet_mask"]
        return names + ["pixel_values_videos", "video_mask", "pixel_values"]


def _clip_image_settings(name_or_path: PathLike, loading_kwargs: dict) -> dict | None:
    """`CLIPFrameTransform` settings of a CLIP checkpoint that has no UniTriM processor settings, else None."""
    hub_options = {key: loading_kwargs[key] for key in ("cache_dir", "revision", "token", "local_files_only") if key in loading_kwargs}

    def read_json(file_name: str) -> dict | None:
        path = cached_file(
            name_or_path, file_name, _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False, **hub_options,
        )
        return json.loads(Path(path).read_text()) if path else None

    saved = read_json("processor_config.json") or {}
    if "image_transform_config" in saved:
        return None
    image_settings = saved.get("image_processor") or read_json("preprocessor_config.json")
    if not image_settings:
        return None
    crop = image_settings.get("crop_size") or image_settings.get("size") or {}
    size = crop.get("height", crop.get("shortest_edge")) if isinstance(crop, dict) else crop
    settings = {}
    if size:
        settings["size"] = int(size)
    for source, target in (("image_mean", "mean"), ("image_std", "std")):
        if image_settings.get(source):
            settings[target] = list(image_settings[source])
    return settings or None


def _is_single_video(videos: Any) -> bool:
    if isinstance(videos, (str, os.PathLike)):
        return True
    if isinstance(videos, (np.ndarray, torch.Tensor)):
        return videos.ndim == 4
    if isinstance(videos, (list, tuple)) and videos:
        first = videos[0]
        return isinstance(first, Image.Image) or (isinstance(first, (np.ndarray, torch.Tensor)) and first.ndim == 3)
    return False


def _is_single_image(images: Any) -> bool:
    if isinstance(images, (str, os.PathLike, Image.Image)):
        return True
    return isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 3


def _load_image(image: Any, max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """(H, W, 3) uint8 RGB array of a PIL image, an array or an image file (as a viewer shows it)."""
    if isinstance(image, (str, os.PathLike)):
        return load_image_file(image, max_pixels)
    if isinstance(image, Image.Image):
        return pil_image_to_rgb(image)
    array = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(f"An image array must be uint8 RGB of shape (height, width, 3), got {array.dtype} {array.shape}.")
    return array


__all__ = ["UniTriMProcessor"]
