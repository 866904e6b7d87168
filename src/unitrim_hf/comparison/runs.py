"""Train and evaluate every (variant, seed) of a recipe with the library's `Trainer` and `evaluate_retrieval`.

Each run trains with `do_eval` off and is evaluated once, at the end (the final model, no choice of a best test
epoch), so every variant is measured the same way. A run's folder is `<output_dir>/<preset>-seed<s>-<digest>`, the
digest being that of its train.py arguments: a finished run writes `comparison_run.json` there and is reused by
any later comparison that needs the same run (e.g. the full model of the presets table in the ablations) and whose
post-processing it reported (a run without the post-processing a recipe asks for is run again).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..evaluation.postprocessing_options import METHODS
from .recipes import Recipe

RUN_FILE_NAME = "comparison_run.json"


@dataclass
class RunSpec:
    """One training run: `argv` is the complete `train.py` command line."""

    variant: str
    seed: int
    argv: list[str]
    output_dir: str
    postprocessing: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class RunResult:
    """What one run measured: `metrics` as `RetrievalEvaluation.metrics`, plus diagnostics and times;
    `postprocessed_metrics` as `RetrievalEvaluation.postprocessed_metrics` with the settings in `postprocessing`."""

    variant: str
    seed: int
    argv: list[str]
    metrics: dict[str, dict[str, float]]
    diagnostics: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    global_step: int = 0
    postprocessed_metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    postprocessing: dict[str, dict[str, Any]] = field(default_factory=dict)

    def value(self, name: str) -> float:
        """`name` = "direction/metric" (e.g. "text_to_video/R@1"), "<method>/direction/metric" for a post-processed
        number (e.g. "dsl/text_to_video/R@1"), "diagnostics/<key>", or "time/<field>". NaN where it was not measured."""
        group, key = name.split("/", 1)
        if group in METHODS:
            direction, metric = key.split("/", 1)
            return float(self.postprocessed_metrics.get(group, {}).get(direction, {}).get(metric, float("nan")))
        if group == "diagnostics":
            return float(self.diagnostics.get(key, float("nan")))
        if group == "time":
            return float(getattr(self, key))
        return float(self.metrics.get(group, {}).get(key, float("nan")))


def _folder_name(preset: str, seed: int, argv: list[str]) -> str:
    digest = hashlib.sha256(json.dumps(argv).encode()).hexdigest()[:10]
    readable = re.sub(r"[^A-Za-z0-9_.=-]+", "_", preset).strip("_") or "model"
    return f"{readable}-seed{seed}-{digest}"


def build_run_specs(recipe: Recipe, output_dir: str | Path, extra_arguments: list[str] | None = None) -> list[RunSpec]:
    """The recipe's runs, seed-major (all variants of the first seed first), with complete train.py argv."""
    shared: list[str] = []
    for key, value in recipe.training.items():
        shared += [f"--{key}", json.dumps(value) if isinstance(value, (dict, list)) else str(value)]
    specs = []
    for seed in recipe.seeds:
        for variant in recipe.variants:
            model = variant.train_arguments(recipe.preset_suffix)
            run_arguments = [
                *shared, *model, "--seed", str(seed), "--overwrite_output_dir", "true", "--do_eval", "false",
                "--logging_steps", "1", "--report_to", "none", *(extra_arguments or []),
            ]
            folder = Path(output_dir) / _folder_name(model[1], seed, run_arguments)
            specs.append(RunSpec(variant.name, seed, [*run_arguments, "--output_dir", str(folder)], str(folder),
                                 dict(recipe.postprocessing)))
    return specs


def _train_and_evaluate(spec: RunSpec) -> RunResult:
    """Train `spec.argv` with `Trainer`, evaluate the final model once, record the diagnostics; the result is also
    written to `<spec.output_dir>/comparison_run.json`. Runs in a process of its own (see `run_comparison`)."""
    from ..training.command_line import parse_arguments
    from ..training.loop import Trainer
    from .diagnostics import TextFeatureProbe, plateau_statistics

    started = time.perf_counter()
    model_args, data_args, training_args = parse_arguments(spec.argv)
    trainer = Trainer(model_args, data_args, training_args)
    probe = TextFeatureProbe()
    trainer.step_observers.append(probe.record)
    result = trainer.train()
    evaluation = trainer.evaluate(f"final model (step {trainer.state.global_step})", postprocessing=spec.postprocessing)
    batch_size = training_args.per_device_train_batch_size * trainer.accelerator.num_processes
    evaluation.save(spec.output_dir)
    diagnostics = {**plateau_statistics(trainer.state.log_history, batch_size), **probe.summary()}
    run = RunResult(
        variant=spec.variant, seed=spec.seed, argv=list(spec.argv), metrics=evaluation.metrics,
        diagnostics=diagnostics, train_seconds=result.train_seconds, wall_seconds=time.perf_counter() - started,
        global_step=result.global_step, postprocessed_metrics=evaluation.postprocessed_metrics or {},
        postprocessing=dict(spec.postprocessing),
    )
    (Path(spec.output_dir) / RUN_FILE_NAME).write_text(json.dumps(asdict(run), indent=1))
    return run


def finished_run(spec: RunSpec) -> RunResult | None:
    """The saved result of `spec` when a run with exactly the same argv finished before and reported each
    post-processing `spec` asks for with the same settings, else None."""
    path = Path(spec.output_dir) / RUN_FILE_NAME
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if values.get("argv") != spec.argv:
        return None
    reported = values.get("postprocessing") or {}
    if any(reported.get(name) != settings for name, settings in spec.postprocessing.items()):
        return None
    return RunResult(**{**values, "variant": spec.variant})


def prepare_data(recipe: Recipe, specs: list[RunSpec]) -> None:
    """Write the benchmark (synthetic) and fill the frame caches once, before runs read them in parallel."""
    from ..modeling.configuration_unitrim import UniTriMConfig
    from ..training.command_line import parse_arguments
    from ..training.builders import build_frame_cache, load_split

    done: set[tuple[str, int]] = set()
    for spec in specs:
        model_args, data_args, training_args = parse_arguments(spec.argv)
        if model_args.clip_model_name_or_path:
            from transformers import CLIPConfig

            image_size = CLIPConfig.from_pretrained(model_args.clip_model_name_or_path).vision_config.image_size
        else:
            image_size = UniTriMConfig.from_preset(model_args.preset, **model_args.overrides()).vision_config.image_size
        key = (str(data_args.data_dir), int(image_size))
        if key in done:
            continue
        done.add(key)
        for split in ("train", data_args.eval_split):
            dataset = load_split(data_args, split)
            if data_args.use_frame_cache:
                build_frame_cache(data_args, split, dataset, int(image_size))


def run_comparison(
    recipe: Recipe,
    output_dir: str | Path,
    jobs: int = 1,
    extra_arguments: list[str] | None = None,
    reuse_finished: bool = True,
    on_result: Callable[[RunResult], Any] | None = None,
) -> list[RunResult]:
    """
    Run every (variant, seed) of `recipe`; returns the results in the order of `build_run_specs`.

    Args:
        recipe: what to compare.
        output_dir: one folder per run below it.
        jobs: runs at a time, each in a process of its own (each keeps the recipe's `torch_num_threads`).
        extra_arguments: train.py arguments appended to every run (the same for all, e.g. `--max_steps 20`).
        reuse_finished: reuse runs finished earlier with the same arguments.
        on_result: called with each result as it arrives (e.g. to print progress).
    """
    specs = build_run_specs(recipe, output_dir, extra_arguments)
    results: dict[int, RunResult] = {}
    pending: list[tuple[int, RunSpec]] = []
    for position, spec in enumerate(specs):
        previous = finished_run(spec) if reuse_finished else None
        if previous is not None:
            results[position] = previous
            if on_result:
                on_result(previous)
        else:
            pending.append((position, spec))
    if pending:
        prepare_data(recipe, [spec for _, spec in pending])
    if jobs > 1 and len(pending) > 1:
        os.environ.setdefault("TQDM_DISABLE", "1")  # interleaved progress bars are unreadable
    # One fresh process per run: accelerate's state (and torch's thread settings) belong to a process, so no run
    # inherits another's.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max(1, min(jobs, len(pending))), mp_context=context, max_tasks_per_child=1) as pool:
        futures = {pool.submit(_train_and_evaluate, spec): position for position, spec in pending}
        for future, position in futures.items():
            results[position] = future.result()
            if on_result:
                on_result(results[position])
    return [results[position] for position in range(len(specs))]


__all__ = ["RunResult", "RunSpec", "build_run_specs", "run_comparison"]
