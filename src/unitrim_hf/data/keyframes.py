"""One keyframe image per video, for text->image retrieval on the video benchmarks.

The default strategy, `"self_attention"`, lets the frames attend to each other through their CLIP image features
(scaled dot-product attention, each frame attending to the others) and takes the frame that receives the most
attention: the frame most of the video "looks at", which the UniTriM paper uses to build its text-image-video
triplets. It needs frame features (`embed_frames`, e.g. [`CLIPFrameEmbedder`]); `"middle"` and
`"clip_centroid"` remain available.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Optional

import datasets
import numpy as np
import torch

from ..media.frame_sampling import FrameSampler
from ..errors import BenchmarkFormatError, VideoDecodingError
from ..model_folders import load_model_strictly

logger = logging.getLogger(__name__)

KEYFRAME_STRATEGIES = ("self_attention", "middle", "clip_centroid")
FEATURE_STRATEGIES = ("self_attention", "clip_centroid")
EmbedFrames = Callable[[np.ndarray], torch.Tensor]


def attention_received(features: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
    """Attention each frame receives when every frame attends to the others.

    `A = softmax(F Fᵀ / τ)` over the other frames (the diagonal is masked: a frame does not vote for itself),
    with `τ = sqrt(D)` as in scaled dot-product attention unless `temperature` is given; the result is the
    column sums of `A` (they add up to the number of frames). One frame receives 1.

    Args:
        features: (num_frames, D) frame features as given (not normalized, so CLIP's feature norms count, as in
            attention over CLIP tokens).
        temperature: τ; None uses sqrt(D).

    Returns:
        (num_frames,) attention received by each frame.
    """
    features = features.float()
    num_frames, dim = features.shape
    if num_frames == 1:
        return features.new_ones(1)
    scale = temperature if temperature is not None else dim**0.5
    if not scale > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = features @ features.T / scale
    logits.fill_diagonal_(float("-inf"))
    return torch.softmax(logits, dim=-1).sum(dim=0)


def select_keyframe_index(
    frames: np.ndarray,
    mask: np.ndarray,
    strategy: str = "middle",
    embed_frames: Optional[EmbedFrames] = None,
    temperature: float | None = None,
) -> int:
    """Index (into `frames`) of the keyframe among the real frames.

    Args:
        frames: uint8 (num_frames, height, width, 3), zero-padded after the real frames.
        mask: (num_frames,) 1 for real frames.
        strategy: `"self_attention"`: the real frame receiving the most attention (`attention_received`;
            among frames tied for it, the one nearest the middle real frame); `"middle"`: the middle real frame (`num_real // 2`);
            `"clip_centroid"`: the real frame whose embedding has the highest cosine similarity to the mean
            embedding.
        embed_frames: for `"self_attention"` and `"clip_centroid"`: uint8 (n, height, width, 3) -> (n, dim)
            tensor (e.g. [`CLIPFrameEmbedder`]); only the real frames are embedded.
        temperature: for `"self_attention"`: the softmax temperature (default sqrt(dim)).
    """
    if strategy not in KEYFRAME_STRATEGIES:
        raise ValueError(f"keyframe strategy must be one of {KEYFRAME_STRATEGIES}, got {strategy!r}")
    real = np.flatnonzero(np.asarray(mask) > 0)
    if real.size == 0:
        raise ValueError("the video has no real frame (mask is all zero)")
    if strategy == "middle":
        return int(real[real.size // 2])
    if embed_frames is None:
        raise ValueError(f'keyframe strategy "{strategy}" needs embed_frames=<frames -> (num_frames, dim) embeddings>')
    embeddings = torch.as_tensor(embed_frames(frames[real])).float()
    if embeddings.ndim != 2 or embeddings.shape[0] != real.size:
        raise ValueError(
            f"embed_frames must return (num_frames={real.size}, dim) embeddings, got shape {tuple(embeddings.shape)}"
        )
    if not torch.isfinite(embeddings).all():
        raise ValueError("embed_frames returned non-finite embeddings")
    if strategy == "self_attention":
        received = attention_received(embeddings, temperature)
        # Frames tied for the most attention (e.g. a still scene, identical frames) give way to the middle one.
        tied = torch.nonzero(received >= received.max() - 1e-5 * received.max().abs()).flatten().tolist()
        return int(real[min(tied, key=lambda position: (abs(position - real.size // 2), position))])
    embeddings = torch.nn.functional.normalize(embeddings, dim=-1)
    centroid = torch.nn.functional.normalize(embeddings.mean(dim=0), dim=-1)
    return int(real[int(torch.argmax(embeddings @ centroid))])


class CLIPFrameEmbedder:
    """Frames -> CLIP image features (projected, not normalized) of a checkpoint, for the feature strategies.

    The checkpoint is a transformers `CLIPModel` folder or Hub id, or a saved UniTriM model (its CLIP image
    feature, `get_image_features(...).frame_embeds[:, 0]`). It is loaded on first call, on CUDA when available,
    so the embedder pickles as its settings (`prepare_frames(num_proc>1)` sends it to worker processes).

    Args:
        model_name_or_path: the checkpoint.
        image_size: side the frames are resized to (CLIP preprocessing); None uses the checkpoint's.
        batch_size: frames per forward pass.
    """

    def __init__(self, model_name_or_path: str, image_size: int | None = None, batch_size: int = 64):
        self.model_name_or_path = str(model_name_or_path)
        self.image_size = image_size
        self.batch_size = batch_size
        self._model = None

    @property
    def name(self) -> str:
        """What identifies the features (recorded in a frame cache's settings)."""
        return self.model_name_or_path

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}

    def _load(self):
        from transformers import AutoConfig, CLIPModel

        config = AutoConfig.from_pretrained(self.model_name_or_path)
        if config.model_type == "unitrim":
            from ..modeling.modeling_unitrim import UniTriMModel

            model_class = UniTriMModel
        else:
            model_class = CLIPModel
        # Keyframes chosen with random weights would be silently wrong: a checkpoint must hold all its tensors.
        model = load_model_strictly(model_class, self.model_name_or_path)
        self.image_size = self.image_size or int(model.config.vision_config.image_size)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self._model = model.to(device).eval()
        return self._model

    @torch.no_grad()
    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (n, height, width, 3) -> float (n, D) CLIP image features, on the CPU."""
        from ..media.image_transforms import clip_transform

        model = self._model or self._load()
        device = next(model.parameters()).device
        features = []
        for start in range(0, len(frames), self.batch_size):
            pixel_values = clip_transform(frames[start : start + self.batch_size], size=self.image_size).to(device)
            output = model.get_image_features(pixel_values=pixel_values)
            if hasattr(output, "frame_embeds"):
                output = output.frame_embeds[:, 0]
            elif not isinstance(output, torch.Tensor):
                output = output.pooler_output
            features.append(output.float().cpu())
        return torch.cat(features)


def keyframe_dataset(
    video_dataset: datasets.Dataset,
    strategy: str = "middle",
    sampler: Optional[FrameSampler] = None,
    embed_frames: Optional[EmbedFrames] = None,
) -> datasets.Dataset:
    """The image split of a video split: one keyframe per video, in `video_index` order.

    Args:
        video_dataset: a split of one of the builders (columns `video_id`, `video_path`,
            `video_index`, and `caption` or `captions`).
        strategy: see `select_keyframe_index`.
        sampler: frames the keyframe is chosen among; `FrameSampler(num_frames=12)` (uniform) by default.
        embed_frames: needed by `"self_attention"` and `"clip_centroid"`.

    Returns:
        A dataset with `video_id`, `video_path`, `video_index` (the video's index in the split: the row, unless
        a video was left out), `captions` (all captions of the video in the split), `frame_index` (decoded frame
        number) and `image` ([`datasets.Image`]). Caption rows of `video_dataset` keep pointing at the right
        image through their `video_index`. A video that cannot be decoded is left out and logged (a warning
        naming each with its reason), as the frame cache and the evaluation do.
    """
    sampler = sampler or FrameSampler(num_frames=12)
    videos: dict[int, dict] = {}
    has_list = "captions" in video_dataset.column_names
    if not has_list and "caption" not in video_dataset.column_names:
        raise BenchmarkFormatError(f"video_dataset needs a 'caption' or 'captions' column, has {video_dataset.column_names}")
    text_column = "captions" if has_list else "caption"
    for video_index, video_id, video_path, text in zip(
        video_dataset["video_index"], video_dataset["video_id"], video_dataset["video_path"], video_dataset[text_column]
    ):
        entry = videos.setdefault(int(video_index), {"video_id": video_id, "video_path": video_path, "captions": []})
        entry["captions"].extend(text if has_list else [text])

    unreadable: dict[str, str] = {}

    def rows():
        for video_index in sorted(videos):
            entry = videos[video_index]
            try:
                sampled = sampler(entry["video_path"])
            except VideoDecodingError as error:
                unreadable[entry["video_id"]] = error.reason
                continue
            position = select_keyframe_index(sampled.frames, sampled.mask, strategy, embed_frames)
            yield {
                **entry,
                "video_index": video_index,
                "frame_index": int(sampled.frame_indices[position]),
                "image": sampled.frames[position],
            }

    features = datasets.Features(
        {
            "video_id": datasets.Value("string"),
            "video_path": datasets.Value("string"),
            "captions": datasets.List(datasets.Value("string")),
            "video_index": datasets.Value("int32"),
            "frame_index": datasets.Value("int64"),
            "image": datasets.Image(),
        }
    )
    # Built in memory: one small image per video; no cache fingerprinting of the closures.
    images = datasets.Dataset.from_list(list(rows()), features=features)
    if unreadable:
        listed = "; ".join(f"{video_id}: {reason}" for video_id, reason in list(unreadable.items())[:20])
        logger.warning("%d of %d videos could not be decoded and have no keyframe: %s%s", len(unreadable), len(videos),
                       listed, " ..." if len(unreadable) > 20 else "")
    return images
