"""The relevance label's two error rates on the synthetic benchmark (see `unitrim_hf.modeling.relevance`).

The test videos of the main job's synthetic benchmark are indexed with a trained model; then
- every test caption is a **true query**: its ground-truth video should not be hidden ("no match");
- captions of another domain (MSR-VTT-style sentences about people, animals and cooking,
  `tests/data/triplets_msrvtt_holdout.jsonl`) are **unrelated queries**: their best result should be "no match".

Rates reported: unrelated queries whose top result is "no match" (want high) and whose top result is "match"
(want low); true queries whose ground truth is labelled "no match" (hidden, want low), also among those ranked
first; plus the z-score quantiles of each group (what the thresholds cut).

    python train.py   # once: writes outputs/synthetic_data and outputs/unitrim-synthetic
    python benchmarks/relevance_rates.py [--model outputs/unitrim-synthetic/best_model] \
        [--data outputs/synthetic_data] [--json relevance.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from _timing import machine_info, markdown_table, report

REPOSITORY = Path(__file__).resolve().parents[1]
UNRELATED_CAPTIONS = REPOSITORY / "tests" / "data" / "triplets_msrvtt_holdout.jsonl"


def quantiles(values: list[float]) -> dict[str, float]:
    """Min, 5th, 50th, 95th percentile and max of `values` (NaN-free)."""
    data = torch.tensor(values, dtype=torch.float64)
    points = torch.tensor([0.0, 0.05, 0.5, 0.95, 1.0], dtype=torch.float64)
    names = ["min", "p5", "p50", "p95", "max"]
    return {name: float(value) for name, value in zip(names, torch.quantile(data, points))}


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from unitrim_hf import UniTriMModel, UniTriMProcessor
    from unitrim_hf.data import load_benchmark
    from unitrim_hf.search import Indexer, Searcher
    from unitrim_hf.modeling.relevance import MATCH, MATCH_Z, NO_MATCH, WEAK_Z

    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    split = load_benchmark("synthetic", args.data, "test")
    model = UniTriMModel.from_pretrained(args.model).eval()
    processor = UniTriMProcessor.from_pretrained(args.model)
    text_column = "caption" if "caption" in split.column_names else "captions"
    true_queries: list[tuple[str, str]] = []
    video_of: dict[str, str] = {}
    for row in split:
        video_of[row["video_id"]] = str(Path(row["video_path"]).resolve())
        captions = [row[text_column]] if text_column == "caption" else row[text_column]
        true_queries += [(caption, row["video_id"]) for caption in captions]
    unrelated = [json.loads(line)["caption"] for line in UNRELATED_CAPTIONS.read_text().splitlines() if line.strip()]

    with tempfile.TemporaryDirectory() as scratch:
        index_dir = Path(args.work_dir or scratch) / "relevance-index"
        Indexer(index_dir, model, processor, batch_size=8, progress=False).add_files(sorted(set(video_of.values())))
        searcher = Searcher(index_dir, model, processor)
        size = len(searcher)

        def ranked(query: str):
            return searcher.search(query, top_k=size, num_candidates=size, explain=False)

        true_z, true_rank, true_labels = [], [], []
        for caption, video_id in true_queries:
            results = ranked(caption)
            match = next(result for result in results if Path(result.path).resolve() == Path(video_of[video_id]))
            true_z.append(match.relevance)
            true_rank.append(match.rank)
            true_labels.append(match.relevance_label)
        unrelated_z, unrelated_labels = [], []
        for caption in unrelated:
            top = ranked(caption)[0]
            unrelated_z.append(top.relevance)
            unrelated_labels.append(top.relevance_label)

    first = [label for label, rank in zip(true_labels, true_rank) if rank == 1]
    rates = {
        "unrelated_top_result_no_match": unrelated_labels.count(NO_MATCH) / len(unrelated_labels),
        "unrelated_top_result_match": unrelated_labels.count(MATCH) / len(unrelated_labels),
        "true_match_hidden": true_labels.count(NO_MATCH) / len(true_labels),
        "true_match_hidden_when_ranked_first": first.count(NO_MATCH) / len(first) if first else float("nan"),
        "true_match_labelled_match": true_labels.count(MATCH) / len(true_labels),
        "true_match_ranked_first": len(first) / len(true_labels),
    }
    return {
        "benchmark": "relevance_rates", "machine": machine_info(args.threads),
        "settings": {"model": str(args.model), "data": str(args.data), "collection_size": size,
                     "true_queries": len(true_queries), "unrelated_queries": len(unrelated),
                     "match_z": MATCH_Z, "weak_z": WEAK_Z},
        "rates": rates,
        "z_quantiles": {"true_match": quantiles(true_z), "unrelated_top_result": quantiles(unrelated_z)},
        "total_seconds": time.perf_counter() - started,
    }


def print_report(results: dict[str, Any]) -> None:
    settings = results["settings"]
    print(f"{settings['collection_size']} indexed test videos; {settings['true_queries']} true queries, "
          f"{settings['unrelated_queries']} unrelated; match z >= {settings['match_z']}, weak z >= "
          f"{settings['weak_z']}\n")
    print(markdown_table(["rate", "value"], [[name, value] for name, value in results["rates"].items()]) + "\n")
    print(markdown_table(["z of", "min", "p5", "p50", "p95", "max"], [
        [group, *values.values()] for group, values in results["z_quantiles"].items()]))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="outputs/unitrim-synthetic/best_model", help="trained model folder")
    parser.add_argument("--data", default="outputs/synthetic_data", help="the synthetic benchmark folder")
    parser.add_argument("--work-dir", default=None, help="keep the index here (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    return report(run_benchmark(args), print_report, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
