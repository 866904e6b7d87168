"""Checks of the folders a run reads and writes, after the arguments are parsed and before torch loads or the model is
built: each failure is a one-line [`TrainingArgumentError`] naming the folder and the flag that resolves it.

- a model argument that looks like a local folder which does not exist (`--model_name_or_path`,
  `--clip_model_name_or_path`, `--keyframe_features`): `no such model folder: PATH`, not a Hub error;
- a real benchmark's `--data_dir` that does not exist or lacks its annotation files (e.g. `--config
  configs/msrvtt.yaml` before MSR-VTT is downloaded);
- synthetic benchmark settings that contradict those the `--data_dir` folder was generated with;
- a fresh run into an `--output_dir` that holds an earlier run's checkpoints.
"""

from __future__ import annotations

from pathlib import Path

from ..benchmark_names import missing_annotation_files, resolve_synthetic_settings
from ..errors import BenchmarkFormatError, MissingModelFolderError, TrainingArgumentError
from ..model_folders import check_model_folder
from .arguments import SYNTHETIC_ARGUMENTS, DataArguments, ModelArguments, TrainingArguments
from .output_layout import complete_checkpoints, earlier_run_message

BENCHMARK_TITLES = {"msrvtt": "MSR-VTT", "msvd": "MSVD", "didemo": "DiDeMo"}


def check_before_work(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> None:
    """Run every check of this module; raises [`TrainingArgumentError`] for the first that fails."""
    check_model_folders(model_args, data_args)
    check_data_folder(data_args)
    check_output_folder(training_args)


def check_model_folders(model_args: ModelArguments, data_args: DataArguments) -> None:
    """Refuse a model argument that looks like a local folder which does not exist."""
    for flag, value in (
        ("--model_name_or_path", model_args.model_name_or_path),
        ("--clip_model_name_or_path", model_args.clip_model_name_or_path),
        ("--keyframe_features", data_args.keyframe_features),
    ):
        try:
            check_model_folder(value)
        except MissingModelFolderError as error:
            raise TrainingArgumentError(f"{flag}: {error}") from None


def check_data_folder(data_args: DataArguments) -> None:
    """A real benchmark's folder must exist and hold its annotation files; a generated synthetic folder must not
    contradict the synthetic settings given."""
    if data_args.dataset_name == "synthetic":
        _check_synthetic_settings(data_args)
        return
    missing = missing_annotation_files(data_args.dataset_name, data_args.data_dir, data_args.dataset_config_name)
    if not missing:
        return
    title = BENCHMARK_TITLES[data_args.dataset_name]
    where = (
        "no such folder" if not Path(data_args.data_dir).expanduser().is_dir()
        else f"no {', '.join(missing)} in this folder"
    )
    raise TrainingArgumentError(
        f"--data_dir {data_args.data_dir}: {where}. Put {title} there ({', '.join(missing)} and the videos, laid out as "
        "docs/datasets.md describes), or pass --data_dir with the folder that holds it (the command line wins over "
        "a --config file)."
    )


def _check_synthetic_settings(data_args: DataArguments) -> None:
    names = {setting: f"--{name}" for setting, name in SYNTHETIC_ARGUMENTS.items()} | {"data_dir": "--data_dir"}
    try:
        resolve_synthetic_settings(data_args.data_dir, argument_names=names, **data_args.synthetic_settings())
    except BenchmarkFormatError as error:
        raise TrainingArgumentError(str(error)) from None


def check_output_folder(training_args: TrainingArguments) -> None:
    """A fresh run (neither resumed, nor overwriting, nor evaluation only) refuses an `--output_dir` that holds an
    earlier run's checkpoints."""
    if training_args.resume_from_checkpoint or training_args.overwrite_output_dir or training_args.do_eval_only:
        return
    earlier = complete_checkpoints(training_args.output_dir)
    if earlier:
        raise TrainingArgumentError(earlier_run_message(training_args.output_dir, earlier[-1]))
