"""Cold start of the command-line tools: what `unitrim search` costs before its first query and `unitrim index`
before its first file, each in fresh processes, beside `from transformers import PreTrainedModel` measured in the
same run (round-robin, median and min of `--repeats`).

Rows:
- `from transformers import PreTrainedModel`: the reference (every tool that loads a transformers model pays it).
- `unitrim --help`: argument parsing only (nothing heavy is imported).
- `unitrim search`: one query, whole process; "before first query" subtracts the query time the command prints.
- `unitrim index` (nothing new): a re-index of an unchanged folder: start-up, scan and plan, no file encoded.
Then one fresh process times the phases of `unitrim search` before its first query (imports, model load, opening
the index, encoding the relevance caption bank).

By default a tiny random `unitrim-tiny` model and a 4-file collection are made in a temporary folder (the
start-up cost of the tools hardly depends on the model's size, except the model load; pass `--model`, `--folder`
and `--index` to measure your own).

    python benchmarks/cold_start.py [--repeats 5] [--json cold_start.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _timing import add_repeat_arguments, machine_info, markdown_table, parse_timing_arguments, report

QUERY = "a red square moves to the left"
QUERY_TIME = re.compile(r"items, ([0-9.]+) ms\)")
REFERENCE = "from transformers import PreTrainedModel"

PHASES_SCRIPT = r"""
import json, sys, time
started = time.perf_counter(); phases = {}
def mark(name):
    global started
    now = time.perf_counter(); phases[name] = now - started; started = now
import unitrim_hf.search.cli as cli; mark("import unitrim_hf.search.cli")
import torch; mark("import torch")
from transformers import PreTrainedModel; mark("import transformers (PreTrainedModel)")
from unitrim_hf.search.searcher import Searcher; from unitrim_hf.search.report import format_table
mark("import searcher, report")
model, processor = cli._load(sys.argv[2], None); mark("load model and processor")
import lancedb; mark("import lancedb")
searcher = Searcher(sys.argv[1], model, processor); mark("open index (fingerprint, vector checks)")
searcher.bank_features(); mark("encode the relevance caption bank")
results = searcher.search(sys.argv[3], 10); mark("first query (encode, search, explain)")
format_table(results); mark("format the table")
print(json.dumps(phases))
"""


def unitrim() -> list[str]:
    script = Path(sys.executable).with_name("unitrim")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "unitrim_hf.search.cli"]


def environment() -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def make_collection(root: Path) -> tuple[Path, Path, Path]:
    """A saved random unitrim-tiny model, a folder of 2 videos and 2 images, and its index."""
    import numpy as np
    from PIL import Image

    from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor
    from unitrim_hf.media.video_writer import write_video

    config = UniTriMConfig.from_preset("unitrim-tiny")
    model = UniTriMModel(config)
    processor = UniTriMProcessor.for_model_config(config, frame_sampler_config={"num_frames": 4})
    model_dir, folder, index_dir = root / "model", root / "media", root / "index"
    model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.mp4", "b.webm"):
        write_video(folder / name, rng.integers(0, 255, (12, 32, 32, 3), dtype=np.uint8), fps=6)
    for name in ("c.png", "d.jpg"):
        Image.fromarray(rng.integers(0, 255, (24, 36, 3), dtype=np.uint8)).save(folder / name)
    run([*unitrim(), "index", str(folder), "--model", str(model_dir), "--index", str(index_dir), "--no-progress"])
    return model_dir, folder, index_dir


def run(command: list[str]) -> str:
    completed = subprocess.run(command, capture_output=True, text=True, env=environment())
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-2000:]}")
    return completed.stdout


def measure(commands: dict[str, list[str]], repeats: int, warmup: int) -> dict[str, dict[str, list[float]]]:
    """Wall seconds of each command (and, for search, seconds before its first query), round-robin."""
    seconds: dict[str, dict[str, list[float]]] = {name: {"wall": [], "before_first_query": []} for name in commands}
    for round_index in range(warmup + repeats):
        for name, command in commands.items():
            started = time.perf_counter()
            output = run(command)
            wall = time.perf_counter() - started
            if round_index < warmup:
                continue
            seconds[name]["wall"].append(wall)
            found = QUERY_TIME.search(output)
            if found:
                seconds[name]["before_first_query"].append(wall - float(found.group(1)) / 1000)
    return seconds


def summary(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {"median_seconds": median, "min_seconds": ordered[0], "repeat_seconds": values}


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        if args.model and args.index and args.folder:
            model_dir, folder, index_dir = Path(args.model), Path(args.folder), Path(args.index)
        else:
            model_dir, folder, index_dir = make_collection(Path(scratch))
        commands = {
            REFERENCE: [sys.executable, "-c", REFERENCE],
            "unitrim --help": [*unitrim(), "--help"],
            "unitrim search": [*unitrim(), "search", QUERY, "--index", str(index_dir), "--model", str(model_dir)],
            "unitrim index (nothing new)": [*unitrim(), "index", str(folder), "--model", str(model_dir), "--index",
                                            str(index_dir), "--no-progress"],
        }
        seconds = measure(commands, args.repeats, args.warmup)
        phases = json.loads(run([sys.executable, "-c", PHASES_SCRIPT, str(index_dir), str(model_dir), QUERY]))
    rows = {name: {"wall": summary(values["wall"]), "before_first_query": summary(values["before_first_query"])}
            for name, values in seconds.items()}
    reference = rows[REFERENCE]["wall"]
    for row in rows.values():
        row["ratio_to_reference"] = row["wall"]["median_seconds"] / reference["median_seconds"]
    return {"benchmark": "cold_start", "machine": machine_info(),
            "settings": {"repeats": args.repeats, "warmup": args.warmup, "query": QUERY, "model": str(model_dir)},
            "rows": rows, "search_phases": phases, "total_seconds": time.perf_counter() - started}


def print_report(results: dict[str, Any]) -> None:
    settings = results["settings"]
    print(f"Fresh processes, round-robin; median and min of {settings['repeats']} runs after {settings['warmup']} "
          f"warm-up ({results['machine']['available_cores']} cores)\n")
    table = []
    for name, row in results["rows"].items():
        before = row["before_first_query"]
        table.append([name, row["wall"]["median_seconds"], row["wall"]["min_seconds"], row["ratio_to_reference"],
                      before["median_seconds"] if before else None, before["min_seconds"] if before else None])
    print(markdown_table(["command", "wall median s", "wall min s", f"x {REFERENCE}", "before first query median s",
                          "before first query min s"], table) + "\n")
    print("What `unitrim search` does before its first query (one fresh process):\n")
    print(markdown_table(["phase", "s"], [[name, value] for name, value in results["search_phases"].items()]))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_repeat_arguments(parser)
    parser.add_argument("--model", help="a model folder (with --folder and --index; default: a tiny random one)")
    parser.add_argument("--folder", help="the indexed folder")
    parser.add_argument("--index", help="its index, built by that model")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parse_timing_arguments(parser, argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    return report(run_benchmark(args), print_report, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
