"""Command-line arguments of `train.py` as dataclasses for `transformers.HfArgumentParser`.

Fields left at `None` are filled from the per-dataset defaults of `DATASET_DEFAULTS` (the paper's setup for
MSR-VTT, MSVD and DiDeMo; a tiny, fast setup for the built-in synthetic benchmark), so that
`python train.py --dataset msrvtt --data_dir ...` reproduces the paper settings and `python train.py` alone runs
the offline synthetic job. A `--config file.json|yaml` (read by `command_line.py`) supplies defaults that the command line overrides.

This module imports neither torch nor transformers: `--help` and argument errors answer at once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..benchmark_names import SYNTHETIC_SCENE_SETS, canonical_benchmark_name
from ..errors import TrainingArgumentError

# The paper's per-dataset settings (12 or 64 frames, 32 or 64 tokens, batch 64 or 16, 5 or 10 epochs) and the
# synthetic defaults, tuned so that a CPU run of about two minutes learns well above chance (see docs/training.md).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "msrvtt": {
        "preset": "unitrim", "num_frames": 12, "max_length": 32, "per_device_train_batch_size": 64,
        "num_train_epochs": 5, "learning_rate": 1e-4, "clip_learning_rate": 1e-7, "warmup_ratio": 0.1,
        "expand_captions": False, "frame_sampling": "fps",
    },
    "msvd": {
        "preset": "unitrim", "num_frames": 12, "max_length": 32, "per_device_train_batch_size": 64,
        "num_train_epochs": 5, "learning_rate": 1e-4, "clip_learning_rate": 1e-7, "warmup_ratio": 0.1,
        "expand_captions": True, "frame_sampling": "fps",
    },
    "didemo": {
        "preset": "unitrim", "num_frames": 64, "max_length": 64, "per_device_train_batch_size": 16,
        "num_train_epochs": 10, "learning_rate": 1e-4, "clip_learning_rate": 1e-7, "warmup_ratio": 0.1,
        # CLIP4Clip overwrites every DiDeMo moment with start 0, end 31: at most 32 frames at 1 fps.
        "frame_sampling": "fps", "video_end_time": 31.0,
        # A paragraph has about 4 sentences (up to 5+ moments), each with its triplets: 4 slots would drop the 5th.
        "max_triplets": 8,
    },
    # Random initialization (no CLIP weights offline): the towers must learn at the new modules' rate.
    "synthetic": {
        "preset": "unitrim-tiny", "num_frames": 8, "max_length": 24, "per_device_train_batch_size": 32,
        "num_train_epochs": 25, "learning_rate": 2e-3, "clip_learning_rate": 2e-3, "warmup_ratio": 0.05,
        "frame_sampling": "uniform", "torch_num_threads": 1,
    },
}
# The synthetic benchmark's generation settings that the command line can choose, by setting (`SYNTHETIC_DEFAULTS`):
# for a new folder only; a generated folder's own settings are read from it.
SYNTHETIC_ARGUMENTS = {
    "num_train": "synthetic_num_train", "num_test": "synthetic_num_test", "seed": "synthetic_seed",
    "scenes": "synthetic_scenes",
}
# `--frame_protocol paper`: T frames uniformly over the whole video (the UniTriM paper's DiDeMo setting, 64 frames),
# instead of the dataset's CLIP4Clip sampling (1 fps, np.linspace; DiDeMo cut at 31 s).
FRAME_PROTOCOLS: dict[str, dict[str, Any]] = {
    "clip4clip": {},
    "paper": {"frame_sampling": "uniform", "video_end_time": None},
}
logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = "outputs/unitrim-synthetic"
FRAME_SAMPLING_CHOICES = ("fps", "uniform")




@dataclass
class ModelArguments:
    """Which model to train."""

    preset: str | None = field(
        default=None,
        metadata={"help": "Config preset: unitrim, xclip, clip4clip-meanp (or their -tiny variants). "
                  "Default: unitrim for real benchmarks, unitrim-tiny for the synthetic one."},
    )
    clip_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "CLIP checkpoint (transformers CLIPModel folder or Hub id) to start from; "
                  "random initialization when omitted."},
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A saved UniTriM model to continue from (or to evaluate with --do_eval_only)."}
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": 'JSON object of UniTriMConfig fields, e.g. \'{"patch_top_k": 4, "num_temporal_layers": 0}\'.'},
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute the CLIP towers' activations in backward (less memory)."}
    )
    max_triplets: int | None = field(
        default=None,
        metadata={"help": "Triplets per caption M (config.max_triplets; a --config_overrides value wins). Default: the "
                  "preset's 4; DiDeMo 8, so that a paragraph keeps the triplets of all its sentences."},
    )

    def overrides(self) -> dict[str, Any]:
        """`config_overrides` parsed (plus `max_triplets` when set); raises `TrainingArgumentError` naming the flag
        on bad JSON or unknown fields."""
        if not self.config_overrides:
            return {} if self.max_triplets is None else {"max_triplets": self.max_triplets}
        try:
            parsed = json.loads(self.config_overrides)
        except json.JSONDecodeError as error:
            raise TrainingArgumentError(f"--config_overrides is not valid JSON: {error}") from error
        if not isinstance(parsed, dict):
            raise TrainingArgumentError(f"--config_overrides must be a JSON object, got {type(parsed).__name__}.")
        if self.max_triplets is not None:
            parsed.setdefault("max_triplets", self.max_triplets)
        return parsed


@dataclass
class DataArguments:
    """Which benchmark and how to read it."""

    dataset: str = field(default="synthetic", metadata={"help": "synthetic, msrvtt, msvd or didemo."})
    data_dir: str | None = field(
        default=None, metadata={"help": "Benchmark folder; default for synthetic: <output_dir>/../synthetic_data."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "MSR-VTT split list: 9k (default) or 7k."})
    video_dir: str | None = field(default=None, metadata={"help": "Folder of the videos, if not the documented default."})
    datasets_cache_dir: str | None = field(default=None, metadata={"help": "Cache of the prepared Arrow splits."})
    eval_split: str = field(default="test", metadata={"help": "Split evaluated each epoch (test for MSR-VTT 1k-A)."})
    num_frames: int | None = field(default=None, metadata={"help": "Frames per video T (12; DiDeMo 64)."})
    max_length: int | None = field(default=None, metadata={"help": "Caption tokens incl. SOT/EOT (32; DiDeMo 64)."})
    frame_sampling: str | None = field(
        default=None,
        metadata={"help": "Frame sampling of the frame cache and of evaluation: 'fps' (CLIP4Clip: 1 frame per second, "
                  "then T of them by np.linspace; the MSR-VTT, MSVD and DiDeMo default) or 'uniform' (centres of T "
                  "equal segments; the synthetic default)."},
    )
    video_end_time: float | None = field(
        default=None,
        metadata={"help": "Read each video only up to this second (DiDeMo default 31, as CLIP4Clip: at most 32 "
                  "frames at 1 fps); default elsewhere: the whole video."},
    )
    frame_protocol: str = field(
        default="clip4clip",
        metadata={"help": "clip4clip: the dataset's sampling (--frame_sampling, --video_end_time; reproduces CLIP4Clip "
                  "and X-CLIP's DiDeMo numbers: at most 32 frames from 0-31 s). paper: --num_frames frames uniformly "
                  "over the whole video (the UniTriM paper's DiDeMo setting, 64 frames); explicit "
                  "--frame_sampling/--video_end_time still win."},
    )
    keyframe_features: str | None = field(
        default=None,
        metadata={"help": "CLIP or UniTriM checkpoint whose image features choose each video's keyframe (the text->image "
                  "split) by self-attention among its frames. Default: --clip_model_name_or_path (pass the same one "
                  "to evaluate a saved model on the keyframes it was trained with); without one, the middle frame."},
    )
    use_frame_cache: bool = field(
        default=True, metadata={"help": "Decode every video once into a frame cache (recommended)."}
    )
    frame_cache_dir: str | None = field(default=None, metadata={"help": "Frame cache folder; default <data_dir>/frame_cache."})
    frame_cache_num_proc: int = field(default=1, metadata={"help": "Processes decoding videos into the frame cache."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes."})
    expand_captions: bool | None = field(
        default=None,
        metadata={"help": "One training item per (video, caption) pair (MSVD default, as CLIP4Clip) instead of one "
                  "per video with a caption drawn each epoch (MSR-VTT, DiDeMo, synthetic)."},
    )
    synthetic_num_train: int | None = field(
        default=None,
        metadata={"help": "Synthetic benchmark: training videos of a new --data_dir (400); a generated folder's own "
                  "number is read from it."},
    )
    synthetic_num_test: int | None = field(
        default=None,
        metadata={"help": "Synthetic benchmark: test videos of a new --data_dir (100); a generated folder's own "
                  "number is read from it."},
    )
    synthetic_seed: int | None = field(
        default=None,
        metadata={"help": "Synthetic benchmark: generation seed of a new --data_dir (0); a generated folder's own seed "
                  "is read from it."},
    )
    synthetic_scenes: str | None = field(
        default=None,
        metadata={"help": "Synthetic benchmark: scene set of a new --data_dir: mixed (the default) or temporal_order "
                  "(two changing objects, each scene beside its reversal); a generated folder's own is read from it.",
                  "choices": list(SYNTHETIC_SCENE_SETS)},
    )

    def synthetic_settings(self) -> dict[str, int | str | None]:
        """The synthetic benchmark's generation settings given on the command line (None: not given)."""
        return {setting: getattr(self, name) for setting, name in SYNTHETIC_ARGUMENTS.items()}

    @property
    def dataset_name(self) -> str:
        name = canonical_benchmark_name(self.dataset)
        if name not in DATASET_DEFAULTS:
            raise TrainingArgumentError(f"--dataset {self.dataset!r} is not one of {sorted(DATASET_DEFAULTS)}.")
        return name


@dataclass
class TrainingArguments:
    """Optimization, checkpoints, evaluation, logging and the Hub."""

    output_dir: str = field(default=DEFAULT_OUTPUT_DIR, metadata={"help": "Where checkpoints and models go."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Let a fresh (not resumed) run delete the checkpoints and models of an earlier run in "
                  "--output_dir; without it such a run stops with an error. Always on for the synthetic benchmark "
                  "in the default output_dir (the no-argument main job starts over on every invocation)."},
    )
    seed: int = field(default=42, metadata={"help": "Seed of initialization, shuffling and frame sampling."})
    torch_num_threads: int | None = field(
        default=None,
        metadata={"help": "torch intra-op threads per process (synthetic default 1: the tiny model's small matrices "
                  "run ~10x faster on one thread than on two contended ones). None: torch's default."},
    )
    num_train_epochs: int | None = field(default=None, metadata={"help": "Epochs (5; DiDeMo 10)."})
    max_steps: int | None = field(
        default=None, metadata={"help": "Total optimizer steps; overrides num_train_epochs and fixes the schedule."}
    )
    stop_after_steps: int | None = field(
        default=None,
        metadata={"help": "Stop (after checkpointing) at this optimizer step without changing the schedule "
                  "(simulates an interruption)."},
    )
    per_device_train_batch_size: int | None = field(default=None, metadata={"help": "Videos per process and step (64)."})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Batch size of evaluation encoding."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Batches per optimizer step."})
    learning_rate: float | None = field(default=None, metadata={"help": "Learning rate of the new modules (1e-4)."})
    clip_learning_rate: float | None = field(
        default=None, metadata={"help": "Learning rate of the CLIP towers, projections and logit scale (1e-7)."}
    )
    weight_decay: float = field(default=0.2, metadata={"help": "AdamW weight decay (not on biases, norms, logit scale)."})
    adam_beta1: float = field(default=0.9)
    adam_beta2: float = field(default=0.98)
    adam_epsilon: float = field(default=1e-6)
    warmup_ratio: float | None = field(default=None, metadata={"help": "Fraction of steps of linear warm-up (0.1)."})
    warmup_steps: int | None = field(default=None, metadata={"help": "Warm-up steps; overrides warmup_ratio."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping; 0 switches it off."})
    logging_steps: int = field(default=10, metadata={"help": "Log losses every N optimizer steps."})
    report_to: str = field(
        default="auto", metadata={"help": "Trackers: auto (tensorboard if installed, else jsonl), all, none, or names."}
    )
    save_steps: int = field(default=0, metadata={"help": "Also save a checkpoint every N optimizer steps (0: epochs only)."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept (the oldest are deleted)."})
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "'latest' or a checkpoint folder to resume from (mid-epoch included)."}
    )
    do_eval: bool = field(default=True, metadata={"help": "Evaluate after every epoch and keep the best model."})
    do_eval_only: bool = field(default=False, metadata={"help": "Only evaluate --model_name_or_path and exit."})
    metric_for_best_model: str = field(
        default="text_to_video/R@1", metadata={"help": "direction/metric, e.g. text_to_video/R@1 or text_to_video/Rsum."}
    )
    eval_include_images: bool = field(default=True, metadata={"help": "Also evaluate text->image on keyframes."})
    sample_query: str | None = field(
        default=None, metadata={"help": "Text query for the sample search at the end (default: a test caption)."}
    )
    push_to_hub: bool = field(default=False, metadata={"help": "Push the best model, metrics and a model card."})
    hub_model_id: str | None = field(default=None, metadata={"help": "Hub repository, e.g. your-name/unitrim-msrvtt."})
    hub_private_repo: bool = field(default=False)
    ddp_timeout: int = field(
        default=7200,
        metadata={"help": "Seconds a process waits in a collective before failing (the process group's timeout): "
                  "evaluation runs on the main process while the others wait."},
    )
    debug_dump_parameters: bool = field(
        default=False,
        metadata={"help": "Each process writes debug/rank{r}.json: parameter hash and the contrastive logits' shapes."},
    )


ARGUMENT_CLASSES = (ModelArguments, DataArguments, TrainingArguments)


def apply_dataset_defaults(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> None:
    """Fill every field left at None with the default of the chosen dataset (in place)."""
    if data_args.frame_protocol not in FRAME_PROTOCOLS:
        raise ValueError(f"--frame_protocol must be one of {sorted(FRAME_PROTOCOLS)}, got {data_args.frame_protocol!r}.")
    defaults = DATASET_DEFAULTS[data_args.dataset_name] | FRAME_PROTOCOLS[data_args.frame_protocol]
    for arguments in (model_args, data_args, training_args):
        for item in fields(arguments):
            if getattr(arguments, item.name) is None and item.name in defaults:
                setattr(arguments, item.name, defaults[item.name])
    if data_args.keyframe_features is None:
        # The CLIP checkpoint, never the model being trained or evaluated: the image split must not depend on it.
        data_args.keyframe_features = model_args.clip_model_name_or_path
    if data_args.frame_sampling not in FRAME_SAMPLING_CHOICES:
        raise TrainingArgumentError(f"--frame_sampling must be one of {FRAME_SAMPLING_CHOICES}, got {data_args.frame_sampling!r}.")
    if data_args.video_end_time is not None and not data_args.video_end_time > 0:
        raise TrainingArgumentError(f"--video_end_time must be a positive number of seconds, got {data_args.video_end_time}.")
    if data_args.data_dir is None:
        if data_args.dataset_name != "synthetic":
            raise TrainingArgumentError(f"--data_dir is required for --dataset {data_args.dataset}.")
        data_args.data_dir = str(Path(training_args.output_dir).parent / "synthetic_data")
    if data_args.dataset_name == "synthetic" and Path(training_args.output_dir) == Path(DEFAULT_OUTPUT_DIR):
        # `python train.py` twice in a row reruns the main job from scratch in its own folder.
        training_args.overwrite_output_dir = True
    if data_args.dataset_name != "synthetic" and not (model_args.clip_model_name_or_path or model_args.model_name_or_path):
        logger.warning(
            "Training on %s from random initialization: without --clip_model_name_or_path (e.g. "
            "openai/clip-vit-base-patch32) the CLIP towers start random and learn at --clip_learning_rate %g, "
            "which is meant for fine-tuning CLIP weights; results will be far below the paper's.",
            data_args.dataset_name, training_args.clip_learning_rate,
        )
