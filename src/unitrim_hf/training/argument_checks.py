"""Checks of the parsed arguments, run before any work (no torch import): each failure is a one-line
`TrainingArgumentError` naming the argument."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
from pathlib import Path
from typing import Any

from ..benchmark_names import SYNTHETIC_SCENE_SETS
from ..errors import TrainingArgumentError
from ..modeling.switches import TOWER_CONFIG_FIELDS, UniTriMSwitches, config_field_names
from .arguments import DataArguments, ModelArguments, TrainingArguments

CONFIG_CLASS_NAME = "UniTriMConfig"
PRESET_FOLDER = Path(__file__).resolve().parents[1] / "modeling" / "presets"
# What CLIPTextConfig and CLIPVisionConfig default to (every public CLIP checkpoint has 77 text positions).
CLIP_TOWER_DEFAULTS = {"max_position_embeddings": 77, "image_size": 224, "patch_size": 32}
# torch, numpy and Python's random all take seeds in [0, 2**32).
SEED_LIMIT = 2**32


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
    _check_model(model_args, data_args, overrides)
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
    _require(data_args.synthetic_scenes in (None, *SYNTHETIC_SCENE_SETS),
             f"--synthetic_scenes must be one of {', '.join(SYNTHETIC_SCENE_SETS)}, got {data_args.synthetic_scenes!r}.")


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
    _require(0 <= args.seed < SEED_LIMIT, f"--seed must be in [0, 2**32), got {args.seed}.")
    _require(args.torch_num_threads is None or args.torch_num_threads >= 1,
             f"--torch_num_threads must be >= 1, got {args.torch_num_threads}.")
    if args.push_to_hub:
        _require(bool(args.hub_model_id), "--push_to_hub needs --hub_model_id (e.g. your-name/unitrim-msrvtt).")
        _require(not hub_offline(), "--push_to_hub: the Hub is switched off (HF_HUB_OFFLINE is set); unset it or drop --push_to_hub.")


def _check_model(model_args: ModelArguments, data_args: DataArguments, overrides: dict[str, Any]) -> None:
    """The preset exists, the config overrides are values the config accepts, and the caption length and the
    patches kept fit the towers the model will have (read from the preset's or the folder's JSON, no torch)."""
    settings = _model_settings(model_args)
    switches = _checked_switches({**{k: v for k, v in settings.items() if k not in TOWER_CONFIG_FIELDS}, **overrides})
    text = {**CLIP_TOWER_DEFAULTS, **(settings.get("text_config") or {})}
    vision = {**CLIP_TOWER_DEFAULTS, **(settings.get("vision_config") or {})}
    positions = int(text["max_position_embeddings"])
    _require(data_args.max_length <= positions,
             f"--max_length must be at most the text tower's {positions} positions, got {data_args.max_length}.")
    patches = (int(vision["image_size"]) // int(vision["patch_size"])) ** 2
    _require(switches.patch_top_k <= patches,
             f"--config_overrides: patch_top_k must be at most the {patches} patches of a frame, got {switches.patch_top_k}.")


def _model_settings(model_args: ModelArguments) -> dict[str, Any]:
    """The config fields the model will be built with, as far as they can be read without torch: the saved
    folder's `config.json`, else the preset (with a CLIP folder's tower sizes); {} for a Hub id."""
    if model_args.model_name_or_path:
        return _read_config_json(model_args.model_name_or_path)
    preset = model_args.preset
    path = PRESET_FOLDER / f"{preset}.json"
    available = sorted(item.stem for item in PRESET_FOLDER.glob("*.json"))
    _require(path.is_file(), f"--preset {preset!r} is not one of {available}.")
    settings = json.loads(path.read_text())
    if model_args.clip_model_name_or_path:
        clip = _read_config_json(model_args.clip_model_name_or_path)
        settings.update({name: clip[name] for name in TOWER_CONFIG_FIELDS if name in clip})
    return settings


def _read_config_json(folder: str) -> dict[str, Any]:
    path = Path(folder) / "config.json"
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a Hub id, or a folder whose loading reports its own problem
    return settings if isinstance(settings, dict) else {}


def _checked_switches(values: dict[str, Any]) -> UniTriMSwitches:
    """The switches with `values`, each of its field's type and passing the config's own checks."""
    known = {item.name: item for item in dataclasses.fields(UniTriMSwitches)}
    for name, value in values.items():
        if name in known:
            _require(_has_field_type(known[name], value),
                     f"--config_overrides: {name} must be {_type_name(known[name])}, got {value!r}.")
    switches = UniTriMSwitches(**{name: value for name, value in values.items() if name in known})
    try:
        switches.fill_default_alignments()
        switches.validate_switches()
    except ValueError as error:
        raise TrainingArgumentError(f"--config_overrides: {error}") from error
    for name in ("patch_top_k", "max_triplets", "num_temporal_layers", "max_frame_positions", "projection_dim"):
        value = getattr(switches, name)
        minimum = 1 if name in ("max_frame_positions", "projection_dim") else 0
        _require(value >= minimum, f"--config_overrides: {name} must be >= {minimum}, got {value}.")
    return switches


def _has_field_type(field: dataclasses.Field, value: Any) -> bool:
    default = field.default
    if field.name == "alignments":
        return value is None or isinstance(value, list) and all(isinstance(item, str) for item in value)
    if field.name == "token_shift_layers":
        return value is None or isinstance(value, list) and all(
            isinstance(item, int) and not isinstance(item, bool) for item in value
        )
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(default, str):
        return isinstance(value, str)
    if default is None:  # an optional size (e.g. temporal_intermediate_size)
        return value is None or isinstance(value, int) and not isinstance(value, bool)
    return True


def _type_name(field: dataclasses.Field) -> str:
    if field.name == "alignments":
        return "a list of alignment names"
    if field.name == "token_shift_layers":
        return "a list of layer indices or null"
    names = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}
    return names.get(type(field.default), "an integer or null")


def hub_offline() -> bool:
    """Whether `HF_HUB_OFFLINE` is set to a true value (huggingface_hub's reading of it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
