"""Text→image retrieval of trained models with each kind of SyntheticTriM caption, and the benchmark's ceilings.

The text disentangler exists to keep a caption's temporal content (motion, appearing, order) out of the text
feature that is matched against still images. Whether a benchmark can reward it depends on whether that content
hurts text→image retrieval at all. This script measures it on the test split: every test video has a combined
caption (what everything does: the test query), a spatial caption (what any single frame shows) and temporal
captions. If spatial captions retrieve the keyframes no better than combined ones, the temporal words do not
get in the way, and a spatial encoder has nothing to remove.

It also prints two ceilings of text→image R@1 on the test keyframes: a retriever that knows exactly which
colours and shapes (and sizes) a caption names, and nothing else, ranking the keyframes showing them first in
random order (expected R@1 = mean over queries of 1 / number of test videos naming the same objects).

Usage::

    # every finished run of a comparison (rows grouped by variant, mean ± std over seeds)
    python benchmarks/text_image_by_caption_kind.py --runs outputs/compare/runs --json probe.json
    # one saved model on a benchmark folder
    python benchmarks/text_image_by_caption_kind.py --model outputs/unitrim-synthetic/final_model \
        --data_dir outputs/synthetic_data
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

from _trained_runs import add_run_arguments, load_trained_run, runs_from_arguments

# Every test video has exactly one caption of each kind (temporal captions are not on every video, so they are
# left out: their gallery would be smaller).
CAPTION_KINDS = ("combined", "spatial")


def captions_by_kind(data_dir: Path, video_ids: list[str]) -> dict[str, dict[str, list[str]]]:
    """{kind: {video_id: [captions]}} of the given videos, read from the benchmark's `MSRVTT_data.json`."""
    data = json.loads((data_dir / "MSRVTT_data.json").read_text())
    wanted = set(video_ids)
    table: dict[str, dict[str, list[str]]] = {kind: defaultdict(list) for kind in CAPTION_KINDS}
    for sentence in data["sentences"]:
        if sentence["video_id"] in wanted and sentence.get("kind", "") != "temporal":
            if "kind" not in sentence:
                raise ValueError(f"{data_dir / 'MSRVTT_data.json'}: sentence {sentence.get('sen_id')} has no 'kind' "
                                 "field; this probe needs a SyntheticTriM benchmark")
            table[sentence["kind"]][sentence["video_id"]].append(sentence["caption"])
    return table


def oracle_ceilings(names_per_video: list[tuple[str, ...]]) -> float:
    """Expected text→image R@1 (percent) of a retriever that only knows each query's `names_per_video` entry.

    Args:
        names_per_video: for each test video, what the retriever knows of it (e.g. its sorted colour+shape pairs).
    """
    counts = Counter(names_per_video)
    return 100.0 * sum(1.0 / counts[names] for names in names_per_video) / len(names_per_video)


def synthetic_ceilings(data_dir: Path, num_test: int) -> dict[str, float]:
    """The two ceilings of the test split of the SyntheticTriM benchmark written in `data_dir`."""
    from unitrim_hf.data.synthetic import generate_clip_specs

    settings = json.loads((data_dir / "synthetic_trim.json").read_text())
    specs = generate_clip_specs(
        num_test, settings["seed"], settings["num_frames"], split="test", scene_set=settings.get("scenes", "mixed")
    )
    frames = settings["num_frames"]
    colour_shape = [tuple(sorted((obj.colour, obj.shape) for obj in spec.objects)) for spec in specs]
    # What a caption names: size, colour and shape ("small red circle"), no size for an object that grows or shrinks.
    named = [tuple(sorted(obj.name(frames) for obj in spec.objects)) for spec in specs]
    return {"colour+shape": oracle_ceilings(colour_shape), "objects as named": oracle_ceilings(named)}


def probe_model(model_dir: Path, argv: list[str]) -> dict:
    """Text→image R@1/R@5 of the model in `model_dir` on the test split, once per caption kind.

    `argv` are the `train.py` arguments the model was trained with: they give the benchmark folder and the frame
    cache (sampling, keyframe choice) its evaluation used.
    """
    import datasets

    from unitrim_hf.evaluation.runner import evaluate_retrieval, video_table

    run = load_trained_run(model_dir, argv)
    model, processor, data_args, test_split, frame_cache = (
        run.model, run.processor, run.data_args, run.test_split, run.frame_cache
    )
    videos = video_table(test_split)
    kinds = captions_by_kind(Path(data_args.data_dir), [video["video_id"] for video in videos])
    results = {}
    for kind in CAPTION_KINDS:
        missing = [video["video_id"] for video in videos if not kinds[kind].get(video["video_id"])]
        if missing:
            raise ValueError(f"{len(missing)} test videos have no {kind} caption (e.g. {missing[0]})")
        rows = [
            {**video, "video_index": position, "captions": kinds[kind][video["video_id"]]}
            for position, video in enumerate(videos)
        ]
        split = datasets.Dataset.from_list(rows)
        evaluation = evaluate_retrieval(
            model, processor, split, frame_cache=frame_cache, per_alignment=False, show_progress=False,
        )
        metrics = evaluation.metrics["text_to_image"]
        results[kind] = {"R1": metrics["R@1"], "R5": metrics["R@5"], "num_queries": metrics["num_queries"]}
    return results


def summary_table(rows: list[dict]) -> str:
    """Markdown table: per variant, mean ± std over seeds of text→image R@1 for each caption kind."""
    by_variant: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_variant[row["variant"]].append(row)
    lines = [
        "| variant | seeds | " + " | ".join(f"T→I R@1, {kind} captions" for kind in CAPTION_KINDS)
        + " | spatial − combined (paired) |",
        "|---|---|" + "---|" * (len(CAPTION_KINDS) + 1),
    ]
    for variant, runs in by_variant.items():
        cells = []
        for kind in CAPTION_KINDS + ("difference",):
            values = [
                run["results"]["spatial"]["R1"] - run["results"]["combined"]["R1"] if kind == "difference"
                else run["results"][kind]["R1"] for run in runs
            ]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.1f} ± {spread:.1f}")
        lines.append(f"| {variant} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, "outputs/synthetic_data", keyframe_features=True)
    parser.add_argument("--json", type=Path, help="Also write every run's figures and the ceilings here.")
    arguments = parser.parse_args(argv)
    from unitrim_hf.training import parse_arguments

    runs = runs_from_arguments(parser, arguments)
    rows = []
    for variant, seed, model_dir, run_argv in runs:
        results = probe_model(model_dir, run_argv)
        rows.append({"variant": variant, "seed": seed, "model": str(model_dir), "results": results})
        print(f"{variant} seed {seed}: " + ", ".join(f"{kind} {results[kind]['R1']:.1f}" for kind in CAPTION_KINDS),
              file=sys.stderr)
    _, data_args, _ = parse_arguments(runs[0][3])
    num_test = rows[0]["results"]["combined"]["num_queries"]
    ceilings = synthetic_ceilings(Path(data_args.data_dir), num_test)
    print(summary_table(rows))
    print()
    print("Ceilings of text→image R@1 on these test keyframes (a retriever knowing only the objects named): "
          + ", ".join(f"{name} {value:.1f}" for name, value in ceilings.items()))
    if arguments.json:
        arguments.json.write_text(json.dumps({"runs": rows, "ceilings": ceilings}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
