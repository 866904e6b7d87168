"""Start-up cost: `import unitrim_hf` next to `from transformers import PreTrainedModel`, and the two command-line
tools' `--help`, each in a fresh process, timed round-robin (median and min of `--repeats`).

Goals: `import unitrim_hf` no slower than importing transformers' `PreTrainedModel` alone (the package registers
its Auto classes without importing transformers; see `unitrim_hf.auto_registration`); `unitrim --help` and
`unitrim-train --help` under 2 s. A fresh interpreter that only starts (`python -c pass`) is timed too, as the
floor every row includes.

    python benchmarks/import_time.py [--repeats 5] [--json import_time.json]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _timing import (
    Timing, add_repeat_arguments, machine_info, markdown_table, parse_timing_arguments, report, time_interleaved,
)

HELP_GOAL_SECONDS = 2.0


def console_script(name: str, module: str) -> list[str]:
    """The installed console script `name`, or the same entry point run through this interpreter."""
    script = Path(sys.executable).with_name(name)
    if script.is_file():
        return [str(script), "--help"]
    return [sys.executable, "-c", f"import sys; sys.argv = [{name!r}, '--help']; from {module} import main; main()"]


def commands() -> dict[str, list[str]]:
    python = sys.executable
    return {
        "python -c pass": [python, "-c", "pass"],
        "import unitrim_hf": [python, "-c", "import unitrim_hf"],
        "from transformers import PreTrainedModel": [python, "-c", "from transformers import PreTrainedModel"],
        "from unitrim_hf import UniTriMModel": [python, "-c", "from unitrim_hf import UniTriMModel"],
        "unitrim --help": console_script("unitrim", "unitrim_hf.search.cli"),
        "unitrim-train --help": console_script("unitrim-train", "unitrim_hf.training.cli"),
    }


def runner(command: list[str]):
    def run() -> None:
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-2000:]}")

    return run


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    selected = commands()
    started = time.perf_counter()
    timings: dict[str, Timing] = time_interleaved({name: runner(cmd) for name, cmd in selected.items()},
                                                  args.repeats, args.warmup)
    rows = {name: timing.as_dict() for name, timing in timings.items()}
    reference = timings["from transformers import PreTrainedModel"]
    for name, timing in timings.items():
        rows[name]["ratio_to_pretrained_model_import"] = timing.median_seconds / reference.median_seconds
        rows[name]["min_ratio_to_pretrained_model_import"] = timing.min_seconds / reference.min_seconds
    goals = {
        "import_no_slower_than_pretrained_model": rows["import unitrim_hf"]["ratio_to_pretrained_model_import"] <= 1.0,
        "unitrim_help_under_2s": rows["unitrim --help"]["median_seconds"] < HELP_GOAL_SECONDS,
        "unitrim_train_help_under_2s": rows["unitrim-train --help"]["median_seconds"] < HELP_GOAL_SECONDS,
    }
    return {"benchmark": "import_time", "machine": machine_info(), "settings": {
        "repeats": args.repeats, "warmup": args.warmup, "commands": {name: " ".join(cmd) for name, cmd in selected.items()}},
        "rows": rows, "goals": goals, "total_seconds": time.perf_counter() - started}


def print_report(results: dict[str, Any]) -> None:
    settings = results["settings"]
    print(f"Fresh processes, round-robin; median and min of {settings['repeats']} runs after {settings['warmup']} "
          f"warm-up ({results['machine']['available_cores']} cores)\n")
    print(markdown_table(["command", "median s", "min s", "x PreTrainedModel import", "x (min)"], [
        [name, row["median_seconds"], row["min_seconds"], row["ratio_to_pretrained_model_import"],
         row["min_ratio_to_pretrained_model_import"]] for name, row in results["rows"].items()]) + "\n")
    for goal, met in results["goals"].items():
        print(f"{goal}: {'met' if met else 'NOT met'}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_repeat_arguments(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parse_timing_arguments(parser, argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    return report(run_benchmark(args), print_report, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
