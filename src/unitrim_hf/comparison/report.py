"""Markdown tables and the JSON report of a comparison."""

from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict
from pathlib import Path

from .recipes import Recipe
from .runs import RunResult
from .statistics import (
    DIAGNOSTIC_METRICS,
    PAIRED_METRICS,
    POSTPROCESSED_DIRECTIONS,
    RETRIEVAL_METRICS,
    paired_differences,
    postprocessed_metrics,
    summarize_runs,
)

SHORT_NAMES = {"text_to_video": "T→V", "video_to_text": "V→T", "text_to_image": "T→I"}
POSTPROCESSING_LABELS = {"dsl": "DSL", "qb_norm": "QB-Norm", "sk_norm": "SK-norm"}
PER_SEED_METRICS = ("text_to_video/R@1", "text_to_image/R@1")


def short_metric_name(metric: str) -> str:
    """"text_to_video/R@1" -> "T→V R@1", "dsl/text_to_video/R@1" -> "T→V R@1 DSL"; diagnostics and times keep their
    key."""
    group, key = metric.split("/", 1)
    if group in POSTPROCESSING_LABELS:
        return f"{short_metric_name(key)} {POSTPROCESSING_LABELS[group]}"
    return f"{SHORT_NAMES[group]} {key}" if group in SHORT_NAMES else key


def _number(value: float, digits: int = 1) -> str:
    return "–" if not math.isfinite(value) else f"{value:.{digits}f}"


def _mean_spread(cell: dict, digits: int = 1) -> str:
    if not math.isfinite(cell["mean"]):
        return "–"
    return f"{cell['mean']:.{digits}f} ± {cell['std']:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(row) + " |" for row in rows)]


def ranked_variants(summary: dict, rank_by: str | None) -> list[str]:
    """Variants in recipe order, or by descending mean of `rank_by`."""
    variants = list(summary)
    if rank_by:
        variants.sort(key=lambda name: -summary[name][rank_by]["mean"] if math.isfinite(summary[name][rank_by]["mean"]) else math.inf)
    return variants


def postprocessed_columns(summary: dict, methods: list[str]) -> list[str]:
    """Raw R@1 of each direction followed by each method's R@1 of it; a method's column only where some run
    measured it (QB-Norm and SK-norm rank no video->text)."""
    columns = []
    for direction in POSTPROCESSED_DIRECTIONS:
        columns.append(f"{direction}/R@1")
        for method in methods:
            metric = f"{method}/{direction}/R@1"
            if any(math.isfinite(cells[metric]["mean"]) for cells in summary.values()):
                columns.append(metric)
    return columns


def _postprocessed_table(recipe: Recipe, summary: dict, order: list[str]) -> list[str]:
    methods = list(recipe.postprocessing)
    columns = postprocessed_columns(summary, methods)
    settings = "; ".join(
        f"{POSTPROCESSING_LABELS.get(name, name)}: " + ", ".join(f"{key}={value}" for key, value in values.items())
        for name, values in recipe.postprocessing.items()
    )
    lines = ["", "Test-time post-processing beside the raw numbers (R@1, mean ± std; DSL uses all test queries at "
             "once, QB-Norm and SK-norm a bank of training captions; not comparable with the raw columns; "
             f"{settings}):", ""]
    return lines + _table(
        ["variant", *(short_metric_name(metric) for metric in columns)],
        [[name, *(_mean_spread(summary[name][metric]) for metric in columns)] for name in order],
    )


def render_markdown(recipe: Recipe, results: list[RunResult]) -> str:
    """Four tables: retrieval mean ± std, per-seed R@1, paired differences to the reference, diagnostics; with
    `recipe.postprocessing`, a fifth after the first: the post-processed R@1 in columns beside the raw ones."""
    metrics = RETRIEVAL_METRICS + DIAGNOSTIC_METRICS + postprocessed_metrics(recipe.postprocessing)
    if recipe.rank_by and recipe.rank_by not in metrics:
        metrics += (recipe.rank_by,)
    summary = summarize_runs(results, metrics)
    seeds = sorted({result.seed for result in results})
    order = ranked_variants(summary, recipe.rank_by)
    lines = [f"### {recipe.name}: mean ± std over seeds {seeds}" + (f", ranked by {recipe.rank_by}" if recipe.rank_by else ""), ""]
    lines += _table(
        ["variant", *(short_metric_name(metric) for metric in RETRIEVAL_METRICS)],
        [[name, *(_mean_spread(summary[name][metric]) for metric in RETRIEVAL_METRICS)] for name in order],
    )
    if recipe.postprocessing:
        lines += _postprocessed_table(recipe, summary, order)
    lines += ["", "Per seed (" + ", ".join(str(seed) for seed in seeds) + "):", ""]
    lines += _table(
        ["variant", *(short_metric_name(metric) for metric in PER_SEED_METRICS)],
        [[name, *(" / ".join(_number(summary[name][metric]["per_seed"].get(seed, math.nan)) for seed in seeds)
                  for metric in PER_SEED_METRICS)] for name in order],
    )
    paired = paired_differences(results, recipe.reference, PAIRED_METRICS)
    if paired:
        lines += ["", f"Paired by seed, variant − {recipe.reference} (mean ± std; seeds above/equal/below):", ""]
        lines += _table(
            ["variant", *(f"Δ {short_metric_name(metric)}" for metric in PAIRED_METRICS)],
            [[name, *(f"{_mean_spread(cells[metric])} ({cells[metric]['wins']}/{cells[metric]['ties']}/{cells[metric]['losses']})"
                      for metric in PAIRED_METRICS)] for name, cells in paired.items()],
        )
    lines += ["", "Training diagnostics (mean ± std): fraction of steps with the text-video loss on the ln(batch) "
              "plateau, first step below it, mean pairwise cosine of the combined text feature t in a training batch "
              "(mean over training, last step) and of the sentence features (last step; 1 = collapsed), training "
              "seconds:", ""]
    lines += _table(
        ["variant", *(short_metric_name(metric) for metric in DIAGNOSTIC_METRICS)],
        [[name, *(_mean_spread(summary[name][metric], 0 if metric.startswith(("time", "diagnostics/steps")) else 2)
                  for metric in DIAGNOSTIC_METRICS)] for name in order],
    )
    return "\n".join(lines)


def comparison_report(recipe: Recipe, results: list[RunResult], wall_seconds: float) -> dict:
    """Everything as JSON-serializable data: the recipe, every run, the summaries and the paired differences."""
    return {
        "recipe": {**asdict(recipe), "variants": [asdict(variant) for variant in recipe.variants]},
        "runs": [asdict(result) for result in results],
        "summary": summarize_runs(results, RETRIEVAL_METRICS + DIAGNOSTIC_METRICS
                                  + postprocessed_metrics(recipe.postprocessing)),
        "paired": paired_differences(results, recipe.reference),
        "wall_seconds": wall_seconds,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }


def write_json(report: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str))
