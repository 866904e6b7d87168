"""Saved models of `unitrim-compare` runs (or one model folder), loaded with the test split they were evaluated on:
shared by the probes that re-score trained models (`text_image_by_caption_kind.py`, `temporal_order_probe.py`)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class TrainedRun:
    """A trained model with its test split and that split's frame cache, as its evaluation read them."""

    model: Any
    processor: Any
    data_args: Any
    test_split: Any
    frame_cache: Any


def finished_runs(folders: list[Path]) -> list[tuple[str, int, Path, list[str]]]:
    """(variant, seed, model folder, argv) of every finished comparison run below `folders`; with several folders
    the variant is labelled with its folder's name (the same variant trained two ways is two rows)."""
    runs = []
    for folder in folders:
        for record in sorted(folder.rglob("comparison_run.json")):
            run = json.loads(record.read_text())
            model_dir = record.parent / "final_model"
            if model_dir.is_dir():
                label = f"{run['variant']} ({folder.name})" if len(folders) > 1 else run["variant"]
                runs.append((label, int(run["seed"]), model_dir, run["argv"]))
    return runs


def synthetic_model_argv(model_dir: Path, data_dir: Path, keyframe_features: str | None = None) -> list[str]:
    """`train.py` arguments that read the SyntheticTriM folder `data_dir` as a run evaluating `model_dir` would.

    Raises FileNotFoundError naming the file when `data_dir` is not a generated SyntheticTriM folder.
    """
    settings_file = Path(data_dir) / "synthetic_trim.json"
    if not settings_file.is_file():
        raise FileNotFoundError(f"{settings_file} not found: --data_dir must be a SyntheticTriM benchmark folder")
    argv = ["--dataset", "synthetic", "--data_dir", str(data_dir), "--output_dir", str(model_dir)]
    if keyframe_features:
        argv += ["--keyframe_features", keyframe_features]
    return argv


def load_trained_run(model_dir: Path, argv: list[str]) -> TrainedRun:
    """The model in `model_dir` and the test split (with its frame cache) of the `train.py` arguments `argv`."""
    from unitrim_hf import UniTriMModel, UniTriMProcessor
    from unitrim_hf.training import parse_arguments
    from unitrim_hf.training.builders import build_frame_cache, load_split

    _, data_args, _ = parse_arguments(argv)
    model = UniTriMModel.from_pretrained(model_dir)
    processor = UniTriMProcessor.from_pretrained(model_dir)
    test_split = load_split(data_args, data_args.eval_split)
    frame_cache = build_frame_cache(data_args, data_args.eval_split, test_split, processor.image_transform.size)
    return TrainedRun(model, processor, data_args, test_split, frame_cache)


def add_run_arguments(parser: argparse.ArgumentParser, default_data_dir: str, keyframe_features: bool = False) -> None:
    """`--runs FOLDER ...` or `--model FOLDER` (with `--data_dir`, and `--keyframe_features` when asked)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--runs", nargs="+", type=Path, help="Folders of unitrim-compare runs (searched recursively).")
    source.add_argument("--model", type=Path, help="One saved UniTriM model folder.")
    parser.add_argument("--data_dir", default=default_data_dir,
                        help=f"SyntheticTriM folder for --model (default: {default_data_dir}).")
    if keyframe_features:
        parser.add_argument("--keyframe_features",
                            help="For --model: the CLIP checkpoint whose features chose the keyframes in training, if any.")


def runs_from_arguments(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> list[tuple[str, int, Path, list[str]]]:
    """The runs `add_run_arguments`' options name, as `finished_runs` gives them (the model alone: variant "model",
    seed 0); a folder that is not a benchmark, or no finished run, is a usage error."""
    if arguments.model:
        try:
            argv = synthetic_model_argv(arguments.model, Path(arguments.data_dir), getattr(arguments, "keyframe_features", None))
        except FileNotFoundError as error:
            parser.error(str(error))
        return [("model", 0, arguments.model, argv)]
    runs = finished_runs(arguments.runs)
    if not runs:
        parser.error(f"no finished run (comparison_run.json next to final_model/) below {arguments.runs}")
    return runs
