"""Checks of the parsed arguments, run before any work (no torch import): each failure is a one-line
`TrainingArgumentError` naming the argument."""

from __future__ import annotations

import difflib
import math
import os

from ..errors import TrainingArgumentError
from ..modeling.switches import config_field_names
from .arguments import DataArguments, ModelArguments, TrainingArguments

CONFIG_CLASS_NAME = "UniTriMConfig"


def unknown_key_message(argument: str, unknown: list[str], known: frozenset[str] | set[str]) -> str:
    """`"--x: unknown UniTriMConfig field 'patch_topk' (did you mean 'patch_top_k'?)"`."""
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(known), n=1)
        parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return f"{argument}: unknown {CONFIG_CLASS_NAME} field {', '.join(parts)}"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise TrainingArgumentError(message)


def _positive_finite(name: str, value: float | None) -> None:
    _require(value is not None and math.isfinite(value) and value > 0,
             f"--{name} must be a positive finite number, got {value}.")


def check_arguments(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> None:
    """Refuse settings that would fail (or silently do nothing useful) later; raises `TrainingArgumentError`."""
    overrides = model_args.overrides()
    unknown = sorted(set(overrides) - config_field_names())
    _require(not unknown, unknown_key_message("--config_overrides", unknown, config_field_names()) + ".")
    _check_data(data_args)
    _check_training(training_args)
    if training_args.do_eval_only:
        _require(bool(model_args.model_name_or_path), "--do_eval_only needs --model_name_or_path (a saved UniTriM model).")


def _check_data(data_args: DataArguments) -> None:
    _require(data_args.num_frames >= 1, f"--num_frames must be >= 1, got {data_args.num_frames}.")
    _require(data_args.max_length >= 3, f"--max_length must be >= 3 (start, one token, end), got {data_args.max_length}.")
    _require(data_args.frame_cache_num_proc >= 1, f"--frame_cache_num_proc must be >= 1, got {data_args.frame_cache_num_proc}.")
    _require(data_args.dataloader_num_workers >= 0,
             f"--dataloader_num_workers must be >= 0, got {data_args.dataloader_num_workers}.")
    for name in ("synthetic_num_train", "synthetic_num_test"):
        value = getattr(data_args, name)
        _require(value is None or value >= 1, f"--{name} must be >= 1, got {value}.")


def _check_training(args: TrainingArguments) -> None:
    _positive_finite("learning_rate", args.learning_rate)
    _positive_finite("clip_learning_rate", args.clip_learning_rate)
    _positive_finite("adam_epsilon", args.adam_epsilon)
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                 "logging_steps", "save_total_limit", "ddp_timeout"):
        value = getattr(args, name)
        _require(value is not None and value >= 1, f"--{name} must be >= 1, got {value}.")
    if not args.do_eval_only:
        _require(args.num_train_epochs is not None and args.num_train_epochs >= 1 or bool(args.max_steps),
                 f"--num_train_epochs must be >= 1 (or use --do_eval_only to only evaluate), got {args.num_train_epochs}.")
    for name in ("max_steps", "stop_after_steps"):
        value = getattr(args, name)
        _require(value is None or value >= 1, f"--{name} must be >= 1, got {value}.")
    _require(args.save_steps >= 0, f"--save_steps must be >= 0 (0: only at the end of each epoch), got {args.save_steps}.")
    _require(args.warmup_steps is None or args.warmup_steps >= 0, f"--warmup_steps must be >= 0, got {args.warmup_steps}.")
    _require(args.warmup_ratio is not None and 0 <= args.warmup_ratio < 1, f"--warmup_ratio must be in [0, 1), got {args.warmup_ratio}.")
    _require(math.isfinite(args.weight_decay) and args.weight_decay >= 0, f"--weight_decay must be >= 0, got {args.weight_decay}.")
    _require(math.isfinite(args.max_grad_norm) and args.max_grad_norm >= 0,
             f"--max_grad_norm must be >= 0 (0 switches clipping off), got {args.max_grad_norm}.")
    for name in ("adam_beta1", "adam_beta2"):
        value = getattr(args, name)
        _require(0 <= value < 1, f"--{name} must be in [0, 1), got {value}.")
    _require("/" in args.metric_for_best_model,
             f"--metric_for_best_model must look like text_to_video/R@1, got {args.metric_for_best_model!r}.")
    _require(args.torch_num_threads is None or args.torch_num_threads >= 1,
             f"--torch_num_threads must be >= 1, got {args.torch_num_threads}.")
    if args.push_to_hub:
        _require(bool(args.hub_model_id), "--push_to_hub needs --hub_model_id (e.g. your-name/unitrim-msrvtt).")
        _require(not hub_offline(), "--push_to_hub: the Hub is switched off (HF_HUB_OFFLINE is set); unset it or drop --push_to_hub.")


def hub_offline() -> bool:
    """Whether `HF_HUB_OFFLINE` is set to a true value (huggingface_hub's reading of it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
