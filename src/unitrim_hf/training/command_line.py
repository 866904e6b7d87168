"""The command line of `train.py` / `unitrim-train`: parse it (and an optional `--config` file), fill the
dataset defaults, check every value. Imports neither torch nor transformers: `--help` and argument errors answer
at once."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

from ..errors import TrainingArgumentError
from .argument_checks import check_arguments
from .argument_parser import build_parser
from .arguments import ARGUMENT_CLASSES, DataArguments, ModelArguments, TrainingArguments, apply_dataset_defaults

DESCRIPTION = "Train and evaluate UniTriM on MSR-VTT, MSVD, DiDeMo or the built-in synthetic benchmark."


def _load_config_file(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise TrainingArgumentError(f"--config {path}: no such file.")
    text = file.read_text()
    if file.suffix in (".yaml", ".yml"):
        import yaml

        values = yaml.safe_load(text)
    else:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise TrainingArgumentError(f"--config {path}: not valid JSON ({error}).") from error
    if not isinstance(values, dict):
        raise TrainingArgumentError(f"--config {path} must hold a mapping of argument names to values.")
    known = {item.name for cls in ARGUMENT_CLASSES for item in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TrainingArgumentError(f"--config {path}: unknown arguments {unknown}.")
    if isinstance(values.get("config_overrides"), dict):
        values["config_overrides"] = json.dumps(values["config_overrides"])
    return values


def argument_parser() -> argparse.ArgumentParser:
    """The parser of `train.py` / `unitrim-train` (all argument dataclasses plus `--config`)."""
    parser = build_parser(ARGUMENT_CLASSES, prog="unitrim-train", description=DESCRIPTION)
    parser.add_argument("--config", type=str, default=None, help="JSON or YAML file of arguments.")
    return parser


def parse_arguments(argv: Sequence[str] | None = None) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    """Parse the command line (and an optional `--config` file whose values the command line overrides), fill the
    dataset defaults and check every value; raises `TrainingArgumentError` naming the first bad argument."""
    argv = list(argv) if argv is not None else None
    parser = argument_parser()
    known, _ = parser.parse_known_args(argv)
    if known.config:
        parser.set_defaults(**_load_config_file(known.config))
    namespace = parser.parse_args(argv)
    del namespace.config
    arguments = []
    values = vars(namespace)
    for cls in ARGUMENT_CLASSES:
        names = {item.name for item in fields(cls) if item.init}
        arguments.append(cls(**{name: values[name] for name in names}))
    model_args, data_args, training_args = arguments
    apply_dataset_defaults(model_args, data_args, training_args)
    check_arguments(model_args, data_args, training_args)
    return model_args, data_args, training_args
