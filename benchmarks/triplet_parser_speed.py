"""Throughput of [`unitrim_hf.TripletParser`] on the hand-annotated dev captions.

Parses the dev captions `--passes` times per repeat, reports the median captions/s of
`--repeats` repeats (one process, one core), plus triplet precision, recall and F1 on the dev captions (the ones
the rules were tuned on), the held-out captions, the held-out shape and motion captions and the held-out MSR-VTT
shape captions, and the seconds one long verbless caption of 64k and 1M characters takes (the input caps,
`MAX_CAPTION_CHARACTERS` and `MAX_SENTENCE_WORDS`, keep it bounded).

    python benchmarks/triplet_parser_speed.py [--passes 20] [--repeats 5] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from unitrim_hf.triplets import TripletParser, triplet_f1

DATA_DIR = Path(__file__).resolve().parent.parent / "tests" / "data"
ANNOTATION_FILES = {
    "dev": "triplets_dev.jsonl",
    "holdout": "triplets_holdout.jsonl",
    "shapes_holdout": "triplets_shapes_holdout.jsonl",
    "msrvtt_holdout": "triplets_msrvtt_holdout.jsonl",
}
LONG_CAPTION_CHARACTERS = (64_000, 1_000_000)
LONG_CAPTION_UNIT = "lorem ipsum dolor sit amet "  # no verb: before the caps, the slowest text per character


def _load(name: str) -> list[dict]:
    with open(DATA_DIR / name, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def long_caption_seconds(parser: TripletParser, characters: int) -> float:
    """Seconds `parser` takes on one caption of `characters` characters of verbless words."""
    caption = (LONG_CAPTION_UNIT * (characters // len(LONG_CAPTION_UNIT) + 1))[:characters]
    start = time.perf_counter()
    parser.parse(caption)
    return time.perf_counter() - start


def measure(backend: str, passes: int, repeats: int) -> dict:
    """Median captions/s over `repeats` runs of `passes` passes over the dev captions, and F1 scores."""
    dev = _load("triplets_dev.jsonl")
    captions = [row["caption"] for row in dev]

    start = time.perf_counter()
    parser = TripletParser(backend=backend)
    parser.parse(captions[0])
    first_parse_seconds = time.perf_counter() - start

    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(passes):
            parser.parse_batch(captions)
        rates.append(passes * len(captions) / (time.perf_counter() - start))

    def f1(rows: list[dict]) -> dict:
        return triplet_f1([parser.parse(row["caption"]) for row in rows], [row["triplets"] for row in rows])

    return {
        "backend": backend,
        "captions": len(captions),
        "passes": passes,
        "repeats": repeats,
        "captions_per_second_median": statistics.median(rates),
        "captions_per_second_all": rates,
        "first_parse_seconds": first_parse_seconds,
        **{name: f1(_load(file_name)) for name, file_name in ANNOTATION_FILES.items()},
        "long_caption_seconds": {str(size): long_caption_seconds(parser, size) for size in LONG_CAPTION_CHARACTERS},
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    arguments.add_argument("--backend", default="lexicon", choices=["lexicon", "nltk"])
    arguments.add_argument("--passes", type=int, default=20, help="passes over the dev captions per repeat")
    arguments.add_argument("--repeats", type=int, default=5)
    arguments.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    options = arguments.parse_args()
    if options.passes < 1 or options.repeats < 1:
        arguments.error("--passes and --repeats must be at least 1")

    result = measure(options.backend, options.passes, options.repeats)
    rows = [
        ("backend", result["backend"]),
        ("dev captions x passes", f"{result['captions']} x {result['passes']}"),
        ("captions/s (median of %d)" % result["repeats"], f"{result['captions_per_second_median']:,.0f}"),
        ("first parse incl. lexicon load (s)", f"{result['first_parse_seconds']:.3f}"),
    ] + [
        (f"{name} P / R / F1", "{precision:.3f} / {recall:.3f} / {f1:.3f}".format(**result[name]))
        for name in ANNOTATION_FILES
    ] + [
        (f"one caption of {int(size):,} characters (s)", f"{seconds:.3f}")
        for size, seconds in result["long_caption_seconds"].items()
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if options.json is not None:
        options.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
