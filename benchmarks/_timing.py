"""Shared helpers of the benchmark scripts: thread setup, warm-up + repeated timing (median and min), a Markdown
table and a JSON report with the machine it ran on.

Scripts in `benchmarks/` import it as a sibling module (`from _timing import ...`); Python puts the script's own
folder first on `sys.path`, so this works from any working directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Timing:
    """Wall-clock seconds of the timed repeats (warm-up runs excluded)."""

    median_seconds: float
    min_seconds: float
    repeat_seconds: list[float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def available_cores() -> int:
    """Cores this process may run on (the affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def set_torch_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count (None: all available cores) and return it."""
    import torch

    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}.")
    count = threads or available_cores()
    torch.set_num_threads(count)
    return count


def time_interleaved(
    functions: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, Timing]:
    """
    Time several functions round-robin: `warmup` untimed calls of each, then `repeats` rounds in which every
    function runs once. Interleaving spreads slow drifts of the machine (frequency, other load) over all of them
    alike, so their ratios are fairer than timing each in its own block.

    Args:
        functions: name -> a callable without arguments.
        repeats: timed calls per function (>= 1).
        warmup: untimed calls per function before timing (>= 0).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}.")
    for _ in range(warmup):
        for function in functions.values():
            function()
    seconds: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            begin = time.perf_counter()
            function()
            seconds[name].append(time.perf_counter() - begin)
    return {
        name: Timing(statistics.median(values), min(values), values) for name, values in seconds.items()
    }


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table; floats are written with 3 significant decimals, None as an empty cell."""

    def cell(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"Row {row!r} has {len(row)} cells; the table has {len(headers)} columns.")
        lines.append("| " + " | ".join(cell(value) for value in row) + " |")
    return "\n".join(lines)


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """Versions and core counts to store beside the timings."""
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "available_cores": available_cores(),
        "torch_threads": threads if threads is not None else torch.get_num_threads(),
    }


def write_json(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write `payload` as indented JSON, creating the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def report(results: dict[str, Any], print_report: Callable[[dict[str, Any]], None], json_path: str | None) -> dict[str, Any]:
    """Print a script's tables and, when `json_path` is given, write its results there; returns the results."""
    print_report(results)
    if json_path:
        write_json(json_path, results)
    return results


def add_repeat_arguments(parser: argparse.ArgumentParser, repeats: int = 5) -> None:
    """`--repeats` (timed runs) and `--warmup` (untimed runs first) of a command-timing benchmark."""
    parser.add_argument("--repeats", type=int, default=repeats, help=f"timed runs of each command (default {repeats})")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each command first (default 1)")


def parse_timing_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """`parser`'s arguments, with `--repeats` >= 1 and `--warmup` >= 0 enforced."""
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    return args
