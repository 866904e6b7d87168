"""Model, processor, benchmark splits and frame caches built from the parsed arguments."""

from __future__ import annotations

import hashlib

import logging
import shutil
from pathlib import Path

import datasets

from ..modeling.configuration_unitrim import UniTriMConfig
from ..data import load_benchmark, prepare_frames
from ..data.keyframes import CLIPFrameEmbedder
from ..errors import FrameCacheMismatchError
from ..model_folders import load_model_strictly
from ..media.frame_sampling import FrameSampler
from ..modeling.modeling_unitrim import UniTriMModel
from ..processing_unitrim import UniTriMProcessor
from .arguments import DataArguments, ModelArguments

logger = logging.getLogger(__name__)


def build_model(model_args: ModelArguments, data_args: DataArguments | None = None) -> UniTriMModel:
    """
    A saved UniTriM model, a CLIP checkpoint converted with `from_clip`, or a randomly initialized preset. A new
    model's AOSM sizes (`max_words`, `max_frames`) default to the run's `--max_length` and `--num_frames`, as
    X-CLIP's `max_words` and `max_frames` size its matrices.
    """
    overrides = model_args.overrides()
    if data_args is not None:
        overrides.setdefault("max_words", data_args.max_length)
        overrides.setdefault("max_frames", data_args.num_frames)
    if model_args.model_name_or_path:
        model = load_model_strictly(UniTriMModel, model_args.model_name_or_path)
    elif model_args.clip_model_name_or_path:
        model = UniTriMModel.from_clip(model_args.clip_model_name_or_path, preset=model_args.preset, **overrides)
    else:
        model = UniTriMModel(UniTriMConfig.from_preset(model_args.preset, **overrides))
    if model_args.gradient_checkpointing:
        for tower in (model.text_model, model.vision_model):
            enable_activation_checkpointing(tower)
    return model


def enable_activation_checkpointing(tower) -> None:
    """Recompute a CLIP tower's activations in backward (transformers >= 5.x name, older name as fallback)."""
    enable = getattr(tower, "activation_checkpointing_enable", None) or tower.gradient_checkpointing_enable
    enable()


def build_processor(model_args: ModelArguments, config: UniTriMConfig, data_args: DataArguments) -> UniTriMProcessor:
    """The processor saved with `model_name_or_path` when there is one, else one matching `config`."""
    if model_args.model_name_or_path and (Path(model_args.model_name_or_path) / "processor_config.json").is_file():
        return UniTriMProcessor.from_pretrained(model_args.model_name_or_path)
    return UniTriMProcessor.for_model_config(
        config,
        max_length=data_args.max_length,
        frame_sampler_config=build_frame_sampler(data_args).to_dict(),
    )


def build_frame_sampler(data_args: DataArguments, strategy: str | None = None) -> FrameSampler:
    """The sampler of the frame cache and of evaluation: `--frame_sampling` ("fps": CLIP4Clip's 1 frame per second,
    then `num_frames` of them by `np.linspace`; "uniform") up to `--video_end_time`. `strategy` overrides it
    (the on-the-fly training path uses "random")."""
    return FrameSampler(
        data_args.num_frames,
        strategy=strategy or data_args.frame_sampling or "uniform",
        frames_per_second=1,
        slice_position="uniform",
        default_end_time=data_args.video_end_time,
    )


def _benchmark_options(data_args: DataArguments) -> dict:
    options: dict = {}
    if data_args.video_dir:
        options["video_dir"] = data_args.video_dir
    if data_args.dataset_name == "synthetic":
        # Only what the command line gave: the rest is the folder's own (or the defaults for a new folder).
        options.update({name: value for name, value in data_args.synthetic_settings().items() if value is not None})
    return options


def load_split(data_args: DataArguments, split: str) -> datasets.Dataset:
    """One split of the chosen benchmark (the synthetic one is written to `data_dir` on first use)."""
    cache_dir = data_args.datasets_cache_dir or str(Path(data_args.data_dir) / "hf_datasets_cache")
    return load_benchmark(
        data_args.dataset_name,
        data_args.data_dir,
        split,
        config_name=data_args.dataset_config_name,
        cache_dir=cache_dir,
        **_benchmark_options(data_args),
    )


def frame_cache_folder(data_args: DataArguments, split: str, image_size: int) -> Path:
    """`<frame_cache_dir or data_dir/frame_cache>/<split>-<T>f-<S>px[-fps][-to<E>s][-kf<hash>]`: one cache per split,
    input shape, sampling and keyframe features."""
    root = Path(data_args.frame_cache_dir) if data_args.frame_cache_dir else Path(data_args.data_dir) / "frame_cache"
    name = f"{split}-{data_args.num_frames}f-{image_size}px"
    # Other samplings get their own folder, so switching --frame_sampling never meets a cache of the other one.
    if (data_args.frame_sampling or "uniform") != "uniform":
        name += f"-{data_args.frame_sampling}"
    if data_args.video_end_time is not None:
        name += f"-to{data_args.video_end_time:g}s"
    if data_args.keyframe_features:
        # Keyframes chosen with another checkpoint's features are another cache, never a rebuild of this one.
        name += "-kf" + hashlib.sha256(str(data_args.keyframe_features).encode()).hexdigest()[:8]
    return root / name


def keyframe_settings(data_args: DataArguments, image_size: int) -> dict:
    """How the frame cache chooses keyframes: by self-attention over the CLIP image features of
    `--keyframe_features` (by default `--clip_model_name_or_path`), or the middle frame without such a checkpoint
    (random initialization: features of random weights would choose arbitrarily)."""
    if not data_args.keyframe_features:
        return {"keyframe_strategy": "middle"}
    embedder = CLIPFrameEmbedder(data_args.keyframe_features, image_size=image_size)
    return {"keyframe_strategy": "self_attention", "embed_frames": embedder}


def build_frame_cache(data_args: DataArguments, split: str, dataset: datasets.Dataset, image_size: int) -> datasets.Dataset:
    """The split's frame cache (frames of `build_frame_sampler` and a keyframe of `keyframe_settings`), decoded once
    and reused.

    `prepare_frames` is always called: it checks that the cache was made with the same sampler, size and video list
    and only decodes unfinished shards. A cache made for other settings or other videos (e.g. videos added to the
    benchmark) is rebuilt, so that it never serves stale frames.
    """
    folder = frame_cache_folder(data_args, split, image_size)
    arguments = dict(image_size=image_size, num_proc=data_args.frame_cache_num_proc, keyframe=True)
    arguments.update(keyframe_settings(data_args, image_size))
    try:
        return prepare_frames(dataset, build_frame_sampler(data_args), folder, **arguments)
    except FrameCacheMismatchError as error:
        logger.warning("Rebuilding the frame cache %s: %s", folder, error)
        shutil.rmtree(folder)
        return prepare_frames(dataset, build_frame_sampler(data_args), folder, **arguments)
