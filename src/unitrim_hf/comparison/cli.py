"""`unitrim-compare` / `python benchmarks/compare.py`: train presets and ablations over seeds with one budget and
report mean ± std and paired differences.

    unitrim-compare --recipe configs/presets.yaml --seeds 1 2 3 --json outputs/compare/presets.json
    unitrim-compare --presets unitrim-tiny xclip-tiny clip4clip-meanp-tiny -- --num_train_epochs 5
    unitrim-compare --recipe configs/table6_disentangler.yaml --data_dir /data/msrvtt -- --dataset msrvtt
    unitrim-compare --presets unitrim-tiny xclip-tiny --postprocessing dsl qb_norm sk_norm

Arguments after `--` are train.py arguments given to every run alike.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

from ..model_folders import exit_if_missing_model_folder
from .recipes import Recipe, Variant, checked_postprocessing, load_recipe
from .report import comparison_report, render_markdown, write_json
from .runs import RunResult, run_comparison

DEFAULT_OUTPUT_ROOT = Path("outputs/compare/runs")
# The main job's synthetic benchmark folder: comparisons on the synthetic benchmark reuse its videos and caches.
DEFAULT_SYNTHETIC_DATA_DIR = Path("outputs/synthetic_data")
# train.py arguments naming a model to start from: checked before any run ("no such model folder: PATH").
MODEL_ARGUMENTS = ("clip_model_name_or_path", "model_name_or_path", "keyframe_features")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unitrim-compare",
        description="Train presets/ablations over several seeds with the same budget and compare their retrieval.",
        epilog="Arguments after `--` are passed to train.py for every run (e.g. -- --num_train_epochs 5).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--recipe", help="YAML/JSON recipe, e.g. configs/presets.yaml (see configs/README.md).")
    source.add_argument("--presets", nargs="+", help="Compare these presets as they are (the first is the reference).")
    parser.add_argument("--seeds", nargs="+", type=int, help="Seeds (default: the recipe's, else 1 2 3).")
    parser.add_argument("--variants", nargs="+", help="Run only these variants of the recipe (plus its reference).")
    parser.add_argument("--preset_suffix", help='Appended to every preset name ("-tiny", or "" for ViT-B/32 sizes).')
    parser.add_argument("--clip_model_name_or_path", help="Start every variant from this CLIP checkpoint (from_clip).")
    parser.add_argument("--data_dir", help=f"Benchmark folder (synthetic default: {DEFAULT_SYNTHETIC_DATA_DIR}).")
    parser.add_argument("--output_dir", default=str(DEFAULT_OUTPUT_ROOT),
                        help="Runs go below it, one folder per distinct run, reused across comparisons (default: %(default)s).")
    parser.add_argument("--jobs", type=int, default=1, help="Runs at a time, each in a process of its own (default 1).")
    parser.add_argument("--json", help="Write runs, summaries and paired differences to this JSON file.")
    parser.add_argument("--markdown", help="Also write the tables to this Markdown file.")
    parser.add_argument("--rerun", action="store_true", help="Retrain runs that finished before with the same arguments.")
    parser.add_argument("--postprocessing", nargs="+", metavar="METHOD",
                        help="Also report these test-time post-processings (dsl qb_norm sk_norm) in columns of their "
                             "own, with default settings; replaces the recipe's `postprocessing`.")
    return parser


def recipe_from_arguments(arguments: argparse.Namespace) -> Recipe:
    if arguments.recipe:
        recipe = load_recipe(arguments.recipe)
        if arguments.variants:
            recipe = recipe.select(arguments.variants)
    else:
        recipe = Recipe("presets", [Variant(name, name) for name in arguments.presets])
    if arguments.seeds:
        recipe.seeds = list(arguments.seeds)
    if arguments.preset_suffix is not None:
        recipe.preset_suffix = arguments.preset_suffix
    if arguments.clip_model_name_or_path:
        recipe.training["clip_model_name_or_path"] = arguments.clip_model_name_or_path
    if arguments.data_dir:
        recipe.training["data_dir"] = arguments.data_dir
    if arguments.postprocessing:
        recipe.postprocessing = checked_postprocessing(arguments.postprocessing, "--postprocessing")
    return recipe


def model_arguments(recipe: Recipe, extra: list[str]) -> list[str]:
    """The model folders or Hub ids every run starts from (`MODEL_ARGUMENTS` of the recipe and of the arguments after
    `--`, which win)."""
    values = {name: str(recipe.training[name]) for name in MODEL_ARGUMENTS if recipe.training.get(name)}
    for position, token in enumerate(extra[:-1]):
        if token.startswith("--") and token[2:] in MODEL_ARGUMENTS:
            values[token[2:]] = extra[position + 1]
    return list(values.values())


def _is_synthetic(recipe: Recipe, extra: list[str]) -> bool:
    dataset = str(recipe.training.get("dataset", "synthetic"))
    if "--dataset" in extra:
        dataset = extra[extra.index("--dataset") + 1]
    return dataset.lower() in ("synthetic", "synthetic_trim")


def _progress(result: RunResult) -> None:
    metrics = result.metrics
    text_image = metrics.get("text_to_image", {}).get("R@1", float("nan"))
    print(f"  {result.variant} seed {result.seed}: T→V R@1 {metrics['text_to_video']['R@1']:.1f}, "
          f"T→I R@1 {text_image:.1f} ({result.wall_seconds:.0f} s)", flush=True)


def run(argv: Sequence[str] | None = None) -> dict:
    """Parse, run every (variant, seed), print the tables; returns the JSON report."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        position = argv.index("--")
        argv, extra = argv[:position], argv[position + 1:]
    arguments = build_parser().parse_args(argv)
    if arguments.jobs < 1:
        raise SystemExit("--jobs must be >= 1.")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    recipe = recipe_from_arguments(arguments)
    exit_if_missing_model_folder("unitrim-compare", model_arguments(recipe, extra))
    if "data_dir" not in recipe.training and "--data_dir" not in extra and _is_synthetic(recipe, extra):
        recipe.training["data_dir"] = str(DEFAULT_SYNTHETIC_DATA_DIR)
    output_dir = Path(arguments.output_dir)
    print(f"{recipe.name}: {len(recipe.variants)} variants x {len(recipe.seeds)} seeds -> {output_dir}", flush=True)
    started = time.perf_counter()
    results = run_comparison(recipe, output_dir, jobs=arguments.jobs, extra_arguments=extra,
                             reuse_finished=not arguments.rerun, on_result=_progress)
    wall_seconds = time.perf_counter() - started
    markdown = render_markdown(recipe, results)
    print("\n" + markdown + f"\n\nWall time: {wall_seconds:.0f} s.")
    report = comparison_report(recipe, results, wall_seconds)
    if arguments.json:
        write_json(report, arguments.json)
    if arguments.markdown:
        Path(arguments.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(arguments.markdown).write_text(markdown + "\n")
    return report


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (`unitrim-compare`)."""
    run(argv)


if __name__ == "__main__":
    main()
