"""UniTriMProcessor: captions, video files and images into exactly the inputs UniTriMModel takes."""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from transformers import BatchFeature, ProcessorMixin
from transformers.processing_utils import ProcessingKwargs, Unpack
from transformers.utils import cached_file

from .media.frame_sampling import FrameSampler
from .media.frame_selection import FrameGrid
from .media.image_loading import DEFAULT_MAX_IMAGE_PIXELS, load_image_file, pil_image_to_rgb
from .media.image_transforms import CLIPFrameTransform
from .remote_processor import LOADER_REFERENCE, write_processor_bundle
from .tokenization import load_clip_tokenizer
from .triplets import Triplet, TripletParser, strip_control_characters

PathLike = str | os.PathLike

logger = logging.getLogger(__name__)

# How captions are tokenized unless a call says otherwise: padded and truncated to the caption length.
_CAPTION_TOKENIZER_DEFAULTS = {"padding": "max_length", "truncation": True}
# Output formats of `return_tensors`; None keeps PyTorch tensors, as the processor always did.
_TENSOR_TYPES = {"pt": "pt", "np": "np", None: "pt"}
# Video and image keywords that have a meaning here; the others of transformers' processors are ignored.
_MEDIA_KEYWORDS = {"return_tensors"}
# Text keywords the processor answers for the whole call (transformers copies the last two into `text_kwargs`).
_CALL_WIDE_TEXT_KEYWORDS = {"return_tensors", "return_mm_token_type_ids", "return_text_replacement_offsets"}


def _check_valid_unicode(text: str, position: int) -> None:
    """ValueError naming the caption and the character when `text` holds a lone surrogate (text decoded with
    `surrogateescape`, e.g. a file name or a terminal in another encoding): it has no UTF-8 form to tokenize."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        character = text[error.start]
        raise ValueError(
            f"`text[{position}]` is not valid Unicode: a lone surrogate U+{ord(character):04X} at character "
            f"{error.start} ({text[max(error.start - 20, 0) : error.start]!r} before it); decode the text with its "
            "real encoding, or with errors='replace'."
        ) from None


class UniTriMProcessorKwargs(ProcessingKwargs, total=False):
    """
    The keywords of [`UniTriMProcessor.__call__`], in transformers' layout: `text_kwargs` go to the captions'
    tokenizer call (`max_length` defaults to the processor's `max_length`), `return_tensors` applies to every output,
    and the other `videos_kwargs` / `images_kwargs` of transformers' processors are accepted and have no effect.
    """

    _defaults = {
        "text_kwargs": {**_CAPTION_TOKENIZER_DEFAULTS, "return_tensors": "pt"},
        "videos_kwargs": {"return_tensors": "pt"},
        "images_kwargs": {"return_tensors": "pt"},
    }


class UniTriMProcessor(ProcessorMixin):
    r"""
    Turns raw captions, videos and images into `UniTriMModel` inputs, offline.

    - text (a caption or a list) -> `input_ids`, `attention_mask` (B, max_length) and, with triplets,
      `triplet_input_ids`, `triplet_attention_mask` (B, max_triplets, max_triplet_length), `triplet_mask`
      (B, max_triplets); ANSI escape sequences and control characters are removed from captions first;
    - videos (paths, (T, H, W, 3) or (T, 3, H, W) uint8 arrays or tensors, or lists of frames) ->
      `pixel_values_videos` (B, T, 3, S, S), zero-padded, and `video_mask` (B, T);
    - images (PIL images, (H, W, 3) or (3, H, W) uint8 arrays or paths) -> `pixel_values` (B, 3, S, S).

    Arrays are channels-last when their last axis has 3 entries, else channels-first when the axis before height
    has 3 (the layout transformers' video utilities produce); an array where both have 3 entries, such as
    (T, 3, H, 3), is read channels-last.

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
    valid_processor_kwargs = UniTriMProcessorKwargs

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
        """
        A new processor matching a `UniTriMConfig`: its image size, triplets on/off, `max_triplets` and phrase
        length; everything else (caption length, frames, ...) takes the defaults or `overrides`.

        This is for models without a saved processor (a new model before training). A trained checkpoint was trained
        with the processor saved next to it: load that one with [`UniTriMProcessor.from_pretrained`]. When
        `config` comes from a local folder holding a UniTriM processor whose settings differ from the one built
        here, a warning names each differing setting.
        """
        settings = {
            "use_triplets": config.use_triplets,
            "max_triplets": config.max_triplets,
            "max_triplet_length": config.max_triplet_length,
            "image_transform_config": {"size": int(config.vision_config.image_size)},
        }
        if getattr(config, "has_fixed_lengths", False):
            # AOSM (X-CLIP) or ISA (UCoFiA) matrices are sized for `max_words` token positions: captions are cut to them.
            settings["max_length"] = config.max_words
            if overrides.get("max_length", config.max_words) > config.max_words:
                raise ValueError(
                    f"max_length={overrides['max_length']} exceeds the model's config.max_words={config.max_words} "
                    "(the size of its AOSM / ISA matrices): pass at most that."
                )
        settings.update(overrides)
        processor = cls(tokenizer, **settings)
        folder = _config_folder(config)
        if folder is not None:
            _warn_if_saved_processor_differs(processor, folder)
        return processor

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
        self._reset_tokenizer_state()
        self.auto_map = {"AutoProcessor": LOADER_REFERENCE}
        try:
            files = super().save_pretrained(save_directory, **kwargs)
        finally:
            del self.auto_map
        files += write_processor_bundle(save_directory, __file__)
        if push_to_hub:
            self.push_to_hub(kwargs.get("repo_id", Path(save_directory).name), token=kwargs.get("token"))
        return files

    def _tokenizer_defaults(self) -> dict[str, Any]:
        """
        The tokenizer's init keywords, which transformers' processors take as call defaults, without `max_length`:
        the caption length is the processor's own `max_length`, while the `max_length` a tokenizer loads from its
        `tokenizer.json` is the truncation of its last call before saving (the triplet phrase length, in folders
        saved before `save_pretrained` reset it).
        """
        return {key: value for key, value in self.tokenizer.init_kwargs.items() if key != "max_length"}

    def _reset_tokenizer_state(self) -> None:
        """Drop the truncation and padding the tokenizer keeps from its last call, so that it is not saved with it."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:
            backend.no_truncation()
            backend.no_padding()

    @property
    def num_frames(self) -> int:
        return self.frame_sampler.num_frames

    # ------------------------------------------------------------------ text

    def parse_triplets(self, text: str) -> list[Triplet]:
        """The caption's (subject, predicate, object) triplets, at most `max_triplets`."""
        return self.triplet_parser.parse(text)[: self.max_triplets]

    def _tokenize(self, texts: list[str], max_length: int, **tokenizer_kwargs: Any) -> dict[str, torch.Tensor]:
        """PyTorch tensors of the tokenizer's outputs, padded to `max_length` and truncated unless told otherwise."""
        options = {**_CAPTION_TOKENIZER_DEFAULTS, **tokenizer_kwargs}
        return dict(self.tokenizer(texts, max_length=max_length, return_tensors="pt", **options))

    def encode_text(
        self, text: str | Sequence[str], max_length: int | None = None, **tokenizer_kwargs: Any
    ) -> dict[str, torch.Tensor]:
        """
        Token and triplet tensors of a caption or a list of captions (ANSI escapes and control characters removed).

        Args:
            text: a caption or a list of captions.
            max_length: caption tokens; `None` for the processor's `max_length`.
            tokenizer_kwargs: further keywords of the captions' tokenizer call (`padding`, `truncation`, ...; by
                default `padding="max_length"`, `truncation=True`). Triplet phrases are always padded and truncated
                to `max_triplet_length`, the layout the model takes.
        """
        texts = [text] if isinstance(text, str) else list(text)
        if not texts or not all(isinstance(item, str) for item in texts):
            raise ValueError("`text` must be a string or a non-empty list of strings.")
        for position, item in enumerate(texts):
            _check_valid_unicode(item, position)
        texts = [strip_control_characters(item) for item in texts]
        features = self._tokenize(texts, max_length or self.max_length, **tokenizer_kwargs)
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
        frames = _as_array(video)
        layout = _channels_last(frames) if frames.ndim == 4 else None
        if layout is None or frames.dtype != np.uint8 or frames.shape[0] == 0:
            raise ValueError(
                "A video array must be uint8 RGB of shape (num_frames, height, width, 3) or (num_frames, 3, height, "
                f"width) with at least one frame, got dtype {frames.dtype} and shape {frames.shape}."
            )
        frames = layout
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
        **kwargs: Unpack[UniTriMProcessorKwargs],
    ) -> BatchFeature:
        """
        Model inputs of captions, videos and images (any of them).

        Keywords follow transformers' processors ([`UniTriMProcessorKwargs`]): flat (`max_length=64`) or by
        modality (`text_kwargs={"max_length": 64}`), not both for the same keyword; an unknown keyword is logged and
        ignored.

        Args:
            text: a caption or a list of captions.
            videos: a video (path, (T, H, W, 3) or (T, 3, H, W) uint8 array or tensor, list of frames) or a list.
            images: an image (PIL image, (H, W, 3) or (3, H, W) uint8 array, path) or a list of them.
            video_start_times, video_end_times: optional per-video moment bounds in seconds (DiDeMo).
            kwargs: text keywords of the captions' tokenizer: `max_length` (the processor's `max_length` by
                default, e.g. 64 for paragraphs), `padding` (`"max_length"`), `truncation` (`True`), ...;
                `return_tensors`: `"pt"` (the default; `None` too) or `"np"`, for every output. Other video and
                image keywords of transformers' processors (`do_sample_frames`, `size`, ...) have no effect: frames
                come from `frame_sampler` and pixels from `image_transform`.
        """
        if text is None and videos is None and images is None:
            raise ValueError("Pass at least one of `text`, `videos` or `images`.")
        merged = self._merge_kwargs(UniTriMProcessorKwargs, tokenizer_init_kwargs=self._tokenizer_defaults(), **kwargs)
        used = {"text_kwargs": text, "videos_kwargs": videos, "images_kwargs": images}
        used = [modality for modality, value in used.items() if value is not None]
        tensor_type = _tensor_type(merged, used)
        _log_ignored_media_keywords(merged, used)
        data: dict[str, torch.Tensor] = {}
        if text is not None:
            data.update(self.encode_text(text, **_tokenizer_keywords(merged["text_kwargs"])))
        if videos is not None:
            data.update(self.encode_videos(videos, video_start_times, video_end_times))
        if images is not None:
            data.update(self.encode_images(images))
        return BatchFeature(data=data, tensor_type=tensor_type)

    @property
    def model_input_names(self) -> list[str]:
        names = ["input_ids", "attention_mask"]
        if self.use_triplets:
            names += ["triplet_input_ids", "triplet_attention_mask", "triplet_mask"]
        return names + ["pixel_values_videos", "video_mask", "pixel_values"]


def _tensor_type(merged: dict[str, dict], modalities: list[str]) -> str:
    """The one output format ("pt" or "np") the modalities of a call ask for; `None` is "pt"."""
    requested = {getattr(value, "value", value) for value in (merged[key].get("return_tensors") for key in modalities)}
    formats = {_TENSOR_TYPES.get(value, value) for value in requested}
    if len(formats) > 1:
        raise ValueError(
            f"UniTriMProcessor returns one kind of tensors per call, got return_tensors {sorted(map(str, formats))}."
        )
    (tensor_type,) = formats
    if tensor_type not in _TENSOR_TYPES.values():
        raise ValueError(
            f"UniTriMProcessor returns PyTorch or NumPy tensors (return_tensors 'pt' or 'np'), got {tensor_type!r}."
        )
    return tensor_type


def _tokenizer_keywords(text_kwargs: dict) -> dict:
    """The text keywords for the captions' tokenizer call: all but the call-wide output format and token types."""
    return {key: value for key, value in text_kwargs.items() if key not in _CALL_WIDE_TEXT_KEYWORDS}


def _log_ignored_media_keywords(merged: dict[str, dict], modalities: list[str]) -> None:
    """Log (once per kind) the video and image keywords of a call that have no effect here."""
    for modality in ("videos_kwargs", "images_kwargs"):
        ignored = sorted(set(merged[modality]) - _MEDIA_KEYWORDS) if modality in modalities else []
        if ignored:
            _warn_ignored_once(modality, tuple(ignored))


@functools.lru_cache(maxsize=64)
def _warn_ignored_once(modality: str, keywords: tuple[str, ...]) -> None:
    logger.warning(
        "UniTriMProcessor ignores the %s %s: frames come from its frame_sampler and pixels from its image_transform "
        "(settings of the processor).", modality, ", ".join(keywords),
    )


def _config_folder(config: Any) -> Path | None:
    """The local folder `config` was loaded from, if any."""
    name = getattr(config, "_name_or_path", None) or getattr(config, "name_or_path", None)
    if not name or not Path(name).is_dir():
        return None
    return Path(name)


def _saved_processor(processor: UniTriMProcessor, folder: Path) -> UniTriMProcessor | None:
    """The processor saved in `folder` built with `processor`'s tokenizer, or None where there is no valid one."""
    path = folder / "processor_config.json"
    try:
        saved = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return None
    if saved.get("processor_class") != type(processor).__name__:
        return None
    parameters = set(inspect.signature(type(processor).__init__).parameters) - {"self", "tokenizer", "kwargs"}
    try:
        return type(processor)(processor.tokenizer, **{key: saved[key] for key in parameters if key in saved})
    except (TypeError, ValueError):
        return None


def _flat_settings(settings: dict, prefix: str = "") -> dict[str, Any]:
    """`{"frame_sampler_config": {"num_frames": 8}}` as `{"frame_sampler_config.num_frames": 8}`."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flat_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat


def _warn_if_saved_processor_differs(processor: UniTriMProcessor, folder: Path) -> None:
    """Warn, naming each setting, when `folder` holds a UniTriM processor with other settings than `processor`."""
    saved = _saved_processor(processor, folder)
    if saved is None:
        return
    built, kept = _flat_settings(processor.to_dict()), _flat_settings(saved.to_dict())
    differing = [
        f"{key}: {built.get(key)!r} here, {kept.get(key)!r} saved"
        for key in sorted(set(built) | set(kept))
        if built.get(key) != kept.get(key)
    ]
    if differing:
        logger.warning(
            "UniTriMProcessor.for_model_config built a processor with other settings than the one saved in %s "
            "(%s); the model there was trained with the saved one. Load it with UniTriMProcessor.from_pretrained(%r).",
            folder, "; ".join(differing), str(folder),
        )


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
    array = _as_array(image)
    layout = _channels_last(array) if array.ndim == 3 else None
    if layout is None or array.dtype != np.uint8:
        raise ValueError(
            f"An image array must be uint8 RGB of shape (height, width, 3) or (3, height, width), got {array.dtype} "
            f"{array.shape}."
        )
    return layout


def _as_array(value: Any) -> np.ndarray:
    """A numpy view of an array, a (CPU or device) tensor or nested lists."""
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _channels_last(array: np.ndarray) -> np.ndarray | None:
    """
    `array` (an image (H, W, 3) / (3, H, W) or frames (T, H, W, 3) / (T, 3, H, W)) with RGB on the last axis, or
    None if neither layout fits. A last axis of 3 wins: (T, 3, H, 3) is read channels-last.
    """
    if array.shape[-1] == 3:
        return array
    if array.shape[-3] == 3:
        return np.moveaxis(array, -3, -1)
    return None


__all__ = ["UniTriMProcessor"]
