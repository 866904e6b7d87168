"""Mean ± spread over seeds, and the paired (same seed) differences between variants."""

from __future__ import annotations

import math
import statistics
from typing import Iterable

from .runs import RunResult

RETRIEVAL_METRICS = tuple(
    f"{direction}/{metric}"
    for direction in ("text_to_video", "video_to_text", "text_to_image")
    for metric in ("R@1", "R@5", "Rsum")
)
DIAGNOSTIC_METRICS = (
    "diagnostics/plateau_fraction", "diagnostics/steps_to_leave_plateau", "diagnostics/combined_cosine_mean",
    "diagnostics/combined_cosine_last", "diagnostics/sentence_cosine_last", "time/train_seconds",
)
PAIRED_METRICS = ("text_to_video/R@1", "text_to_video/Rsum", "text_to_image/R@1", "text_to_image/Rsum")
# Directions whose post-processed R@1 the report shows beside the raw one.
POSTPROCESSED_DIRECTIONS = ("text_to_video", "video_to_text", "text_to_image")


def postprocessed_metrics(methods: Iterable[str], key: str = "R@1") -> tuple[str, ...]:
    """"<method>/<direction>/<key>" for each method and direction (e.g. "dsl/text_to_video/R@1")."""
    return tuple(f"{method}/{direction}/{key}" for method in methods for direction in POSTPROCESSED_DIRECTIONS)


def _spread(values: list[float]) -> dict[str, float]:
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return {"mean": float("nan"), "std": float("nan"), "min": float("nan"), "max": float("nan")}
    return {
        "mean": statistics.fmean(finite),
        "std": statistics.stdev(finite) if len(finite) > 1 else 0.0,  # sample standard deviation over seeds
        "min": min(finite),
        "max": max(finite),
    }


def variant_order(results: Iterable[RunResult]) -> list[str]:
    """Variant names in the order they first appear."""
    order: list[str] = []
    for result in results:
        if result.variant not in order:
            order.append(result.variant)
    return order


def summarize_runs(results: list[RunResult], metrics: Iterable[str] = RETRIEVAL_METRICS + DIAGNOSTIC_METRICS) -> dict:
    """
    `{variant: {metric: {"mean", "std", "min", "max", "per_seed": {seed: value}}}}` (std: sample standard
    deviation over seeds, 0 for one seed).
    """
    summary: dict[str, dict] = {}
    for variant in variant_order(results):
        runs = sorted((result for result in results if result.variant == variant), key=lambda run: run.seed)
        summary[variant] = {}
        for metric in metrics:
            per_seed = {run.seed: run.value(metric) for run in runs}
            summary[variant][metric] = {**_spread(list(per_seed.values())), "per_seed": per_seed}
    return summary


def paired_differences(results: list[RunResult], reference: str, metrics: Iterable[str] = PAIRED_METRICS) -> dict:
    """
    For every variant other than `reference`: per seed `variant - reference` over the seeds both have, with mean,
    std and the counts of seeds where the variant is above (wins), equal (ties) or below (losses).

    Returns:
        `{variant: {metric: {"mean", "std", "min", "max", "wins", "ties", "losses", "per_seed": {seed: diff}}}}`.
    """
    by_key = {(result.variant, result.seed): result for result in results}
    reference_seeds = sorted(seed for variant, seed in by_key if variant == reference)
    paired: dict[str, dict] = {}
    for variant in variant_order(results):
        if variant == reference:
            continue
        seeds = [seed for seed in reference_seeds if (variant, seed) in by_key]
        paired[variant] = {}
        for metric in metrics:
            differences = {
                seed: by_key[(variant, seed)].value(metric) - by_key[(reference, seed)].value(metric) for seed in seeds
            }
            values = list(differences.values())
            paired[variant][metric] = {
                **_spread(values),
                "wins": sum(value > 0 for value in values),
                "ties": sum(value == 0 for value in values),
                "losses": sum(value < 0 for value in values),
                "per_seed": differences,
            }
    return paired
