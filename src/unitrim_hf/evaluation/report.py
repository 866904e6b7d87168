"""Evaluation reports: `metrics.json` (every number) and `metrics.md` (Markdown tables).

Works on the plain dict of `RetrievalEvaluation.to_dict`, so a saved `metrics.json` renders the
same report without the model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

METRICS_JSON = "metrics.json"
METRICS_MARKDOWN = "metrics.md"

DIRECTION_LABELS = {
    "text_to_video": "text → video",
    "video_to_text": "video → text",
    "text_to_image": "text → image",
    "image_to_text": "image → text",
}
# metrics.json keeps two decimals: 29.0, not 28.999999999999996 (the table shows one).
METRIC_DECIMALS = 2
TABLE_COLUMNS = ("R@1", "R@5", "R@10", "Rsum", "MdR", "MnR", "num_queries")
ALIGNMENT_COLUMNS = ("R@1", "R@5", "R@10", "MdR", "MnR")
POSTPROCESSING_LABELS = {"dsl": "DSL", "qb_norm": "QB-Norm", "sk_norm": "SK-norm"}
BESIDE_COLUMNS = ("R@1", "Rsum")
# Every number-holding field of an evaluation dict (rounded in metrics.json, checked finite before writing).
METRIC_FIELDS = ("metrics", "dsl_metrics", "postprocessed_metrics", "alignment_metrics")


def round_metrics(values):
    """`values` (nested dicts of numbers, or None) with every float rounded to `METRIC_DECIMALS` decimals."""
    if isinstance(values, Mapping):
        return {key: round_metrics(value) for key, value in values.items()}
    if isinstance(values, float) and math.isfinite(values):
        return round(values, METRIC_DECIMALS)
    return values


def _cell(key: str, value) -> str:
    if value is None:
        return "-"
    if key == "num_queries":
        return str(int(value))
    return f"{float(value):.1f}"


def metrics_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """One row per direction (`text_to_video` ...), columns R@1 R@5 R@10 Rsum MdR MnR num_queries."""
    lines = ["| | " + " | ".join(TABLE_COLUMNS) + " |", "|---|" + "---:|" * len(TABLE_COLUMNS)]
    for direction, row in results.items():
        cells = [_cell(key, row.get(key)) for key in TABLE_COLUMNS]
        lines.append(f"| {DIRECTION_LABELS.get(direction, direction)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def alignment_table(results: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """One row per alignment (and `all`), text->video then video->text columns."""
    directions = [direction for direction in DIRECTION_LABELS if any(direction in row for row in results.values())]
    header = [f"{DIRECTION_LABELS[direction]} {key}" for direction in directions for key in ALIGNMENT_COLUMNS]
    lines = ["| alignment | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    for name, row in results.items():
        cells = [_cell(key, row.get(direction, {}).get(key)) for direction in directions for key in ALIGNMENT_COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def postprocessing_beside_table(
    metrics: Mapping[str, Mapping[str, float]], postprocessed: Mapping[str, Mapping[str, Mapping[str, float]]]
) -> str:
    """One row per direction: raw R@1 and Rsum, then each post-processing method's beside them ("-" where a method
    does not rank that direction)."""
    methods = list(postprocessed)
    header = [f"{key} {label}" for key in BESIDE_COLUMNS
              for label in ("raw", *(POSTPROCESSING_LABELS.get(method, method) for method in methods))]
    lines = ["| | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    for direction, row in metrics.items():
        cells = []
        for key in BESIDE_COLUMNS:
            cells.append(_cell(key, row.get(key)))
            cells += [_cell(key, postprocessed[method].get(direction, {}).get(key)) for method in methods]
        lines.append(f"| {DIRECTION_LABELS.get(direction, direction)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _postprocessing_sections(evaluation: Mapping) -> list[str]:
    postprocessed = dict(evaluation.get("postprocessed_metrics") or {})
    if not postprocessed and evaluation.get("dsl_metrics"):  # reports written before postprocessed_metrics
        postprocessed = {"dsl": evaluation["dsl_metrics"]}
    if not postprocessed:
        return []
    settings = evaluation.get("settings", {}).get("postprocessing", {})
    bank = evaluation.get("settings", {}).get("query_bank")
    parts = [
        "",
        "### Post-processed beside the raw numbers — not comparable with the raw ones",
        "",
        "DSL uses all test queries at once (transductive); QB-Norm and SK-norm normalize by a bank of training "
        "captions" + (f" ({bank['num_captions']} captions of the {bank['split']} split)" if bank else "")
        + " and rank the text-query directions only.",
        "",
        postprocessing_beside_table(evaluation["metrics"], postprocessed),
    ]
    for method, results in postprocessed.items():
        label = POSTPROCESSING_LABELS.get(method, method)
        options = ", ".join(f"{key}={value}" for key, value in settings.get(method, {}).items())
        heading = "With DSL (inverted softmax)" if method == "dsl" else f"With {label}"
        parts += ["", f"### {heading}" + (f" ({options})" if options else "") + " — not comparable with the raw table", "",
                  metrics_table(results)]
    return parts


def render_markdown(evaluation: Mapping) -> str:
    """The Markdown report of an evaluation dict (see `RetrievalEvaluation.to_dict`)."""
    model = evaluation.get("settings", {}).get("model")
    parts = [
        "## Retrieval results" + (f" of the {model}" if model else ""),
        "",
        f"{evaluation['num_captions']} caption queries, {evaluation['num_videos']} videos"
        + (f" (keyframe images: {evaluation['settings'].get('keyframe')})" if evaluation.get("settings", {}).get("keyframe") else "")
        + ". Recalls in percent; MdR/MnR: median/mean rank (1 = best); ties count against the query.",
        "",
        metrics_table(evaluation["metrics"]),
    ]
    skipped = evaluation.get("skipped_videos") or []
    if skipped:
        shown = ", ".join(skipped[:20]) + (" ..." if len(skipped) > 20 else "")
        parts += ["", f"**{len(skipped)} videos could not be decoded and were left out with their captions:** {shown}"]
    parts += _postprocessing_sections(evaluation)
    if evaluation.get("alignment_metrics"):
        parts += [
            "",
            "### Each alignment alone (same encoding pass; `all` = their mean, the model's ranking)",
            "",
            alignment_table(evaluation["alignment_metrics"]),
        ]
    return "\n".join(parts) + "\n"


def _check_finite(values, path: str = "") -> None:
    if isinstance(values, Mapping):
        for key, value in values.items():
            _check_finite(value, f"{path}.{key}" if path else str(key))
    elif isinstance(values, float) and not math.isfinite(values):
        raise ValueError(f"evaluation value {path} is {values}; refusing to write a report with non-finite metrics")


def save_report(evaluation: Mapping, output_dir: str | Path, stem: str = "metrics") -> tuple[Path, Path]:
    """Write `<stem>.json` and `<stem>.md` (`metrics.json` and `metrics.md` by default) into `output_dir` (created);
    returns their paths."""
    _check_finite({key: evaluation.get(key) for key in METRIC_FIELDS})
    evaluation = {**evaluation, **{key: round_metrics(evaluation.get(key)) for key in (*METRIC_FIELDS, "timings")}}
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path = output_dir / f"{stem}.json"
    markdown_path = output_dir / f"{stem}.md"
    json_path.write_text(json.dumps(dict(evaluation), indent=2, allow_nan=False) + "\n")
    markdown_path.write_text(render_markdown(evaluation))
    return json_path, markdown_path


def load_report(path: str | Path) -> dict:
    """An evaluation dict from `metrics.json` (or a folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_JSON
    return json.loads(path.read_text())
