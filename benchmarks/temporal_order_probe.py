"""Which alignments of trained models see the order of frames, on the temporal-order scene set of SyntheticTriM.

The `temporal_order` scene set pairs every test scene with itself played backwards: the two clips share their frames
and their spatial caption, and their combined captions (the test queries) differ only in directions, grow/shrink,
appear/disappear or which event comes first. For each test caption this script asks whether a score ranks the
caption's own clip above its reversed partner: **order accuracy**, 50 % for a score blind to frame order, 100 % for
one that always reads the order right. It reports it for the model's logits and for each alignment alone, with
text→video R@1, and the share of the model's top-1 errors that are the partner (an error a frame-order-blind score
makes half of the time on every pair).

It also re-scores the test set with the order-aware alignment given more weight than the others' mean: R@1 of
`w * sentence_video + (1 - w) * mean(other alignments)` for a few `w` (the model's own ranking is `w = 1 / number
of alignments`). Those models were trained with the plain mean, so this shows what the weights change at test
time only.

Usage::

    python benchmarks/temporal_order_probe.py --runs outputs/compare/order-clip --json order_probe.json
    python benchmarks/temporal_order_probe.py --model outputs/unitrim-order/final_model --data_dir outputs/synthetic_order
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import torch

from _trained_runs import add_run_arguments, load_trained_run, runs_from_arguments

ORDER_AWARE_ALIGNMENT = "sentence_video"
REWEIGHTING = (0.4, 0.6, 0.8, 1.0)
# What reversing a clip changes, by event: where an object goes, how its size changes, when it is visible.
EVENT_GROUPS = {"moves": "motion", "grows": "size", "shrinks": "size", "appears": "visibility", "disappears": "visibility"}


def partner_positions(data_dir: Path, video_ids: list[str]) -> list[int | None]:
    """For each test video (in `video_ids` order), the position of its reversed partner among `video_ids`, or None
    (no partner generated, or the partner could not be read).

    Raises ValueError naming the folder when it is not a `temporal_order` SyntheticTriM benchmark.
    """
    settings = json.loads((data_dir / "synthetic_trim.json").read_text())
    if settings.get("scenes") != "temporal_order":
        raise ValueError(f"{data_dir}: generated with scenes={settings.get('scenes', 'mixed')!r}; this probe needs a "
                         "temporal_order benchmark (train.py --synthetic_scenes temporal_order)")
    # Test clips are written after the training ones, each scene followed by its reversal.
    num_train = int(settings["num_train"])
    clip_index = {video_id: int(video_id.removeprefix("video")) - num_train for video_id in video_ids}
    position = {index: row for row, index in enumerate(clip_index.values())}
    return [position.get(clip_index[video_id] ^ 1) for video_id in video_ids]


def event_groups(data_dir: Path, video_ids: list[str]) -> list[set[str]]:
    """For each test video, the groups of `EVENT_GROUPS` its two objects' events belong to (what its reversal
    changes), from the generator's scene of that clip."""
    from unitrim_hf.data.synthetic import generate_clip_specs

    settings = json.loads((data_dir / "synthetic_trim.json").read_text())
    specs = generate_clip_specs(int(settings["num_test"]), int(settings["seed"]), int(settings["num_frames"]),
                                split="test", scene_set=settings["scenes"])
    num_train, frames = int(settings["num_train"]), int(settings["num_frames"])
    return [{EVENT_GROUPS[obj.event(frames)] for obj in specs[int(video_id.removeprefix("video")) - num_train].objects}
            for video_id in video_ids]


def order_accuracy(scores: torch.Tensor, targets: torch.Tensor, partners: torch.Tensor) -> float:
    """Percent of queries whose own video outscores its partner (ties count half).

    Args:
        scores (`(num_queries, num_videos)`): one score matrix.
        targets (`(num_queries,)`): each query's video position.
        partners (`(num_queries,)`): the partner position of each query's video (queries without one left out).
    """
    rows = torch.arange(len(targets))
    own, other = scores[rows, targets], scores[rows, partners]
    return 100.0 * float(((own > other).double() + 0.5 * (own == other).double()).mean())


def top1_recall(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Text→video R@1 (percent), ties counted against the query as `unitrim_hf.evaluation.metrics` does."""
    own = scores[torch.arange(len(targets)), targets].unsqueeze(1)
    return 100.0 * float(((scores >= own).sum(dim=1) == 1).double().mean())


def probe_model(model_dir: Path, argv: list[str]) -> dict:
    """Order accuracy and R@1 of the model in `model_dir` (and of each of its alignments) on its test split."""
    from unitrim_hf.evaluation.encoding import encode_captions, encode_videos_and_keyframes
    from unitrim_hf.evaluation.runner import leave_out_skipped_videos, split_captions, video_table

    run = load_trained_run(model_dir, argv)
    model = run.model.eval()
    captions, caption_to_video = split_captions(run.test_split)
    videos = video_table(run.test_split)
    with torch.inference_mode():
        gallery = encode_videos_and_keyframes(
            model, run.processor, videos, frame_cache=run.frame_cache, include_images=False, show_progress=False
        )
        kept_captions, targets = leave_out_skipped_videos(len(videos), gallery.kept_positions, caption_to_video)
        text = encode_captions(model, run.processor, [captions[row] for row in kept_captions], show_progress=False)
        similarity = model.similarity(text, gallery.video_features)
    kept_ids = [videos[position]["video_id"] for position in gallery.kept_positions]
    partner_of = partner_positions(Path(run.data_args.data_dir), kept_ids)
    targets = torch.from_numpy(targets)
    paired = torch.tensor([partner_of[int(target)] is not None for target in targets])
    partners = torch.tensor([partner_of[int(target)] for target in targets[paired]])
    scores = {"logits": similarity.logits.float(), **{name: value.float() for name, value in similarity.alignment_scores.items()}}
    logits = scores["logits"]
    top1 = logits.argmax(dim=1)
    errors = top1 != targets
    partner_errors = (errors[paired] & (top1[paired] == partners)).sum()
    result = {
        "num_queries": int(len(targets)),
        "num_paired": int(paired.sum()),
        "R1": {name: top1_recall(value, targets) for name, value in scores.items()},
        "order_accuracy": {name: order_accuracy(value[paired], targets[paired], partners) for name, value in scores.items()},
        "partner_share_of_errors": 100.0 * float(partner_errors) / max(int(errors.sum()), 1),
    }
    groups = event_groups(Path(run.data_args.data_dir), kept_ids)
    paired_targets = targets[paired]
    result["order_accuracy_by_event"] = {}
    for group in dict.fromkeys(EVENT_GROUPS.values()):
        chosen = torch.tensor([group in groups[int(target)] for target in paired_targets])
        if chosen.any():
            result["order_accuracy_by_event"][group] = order_accuracy(
                logits[paired][chosen], paired_targets[chosen], partners[chosen]
            )
    others = [name for name in similarity.alignment_scores if name != ORDER_AWARE_ALIGNMENT]
    if ORDER_AWARE_ALIGNMENT in similarity.alignment_scores and others:
        rest = torch.stack([scores[name] for name in others]).mean(dim=0)
        result["reweighted_R1"] = {
            str(weight): top1_recall(weight * scores[ORDER_AWARE_ALIGNMENT] + (1 - weight) * rest, targets)
            for weight in REWEIGHTING
        }
    return result


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


def summary_tables(rows: list[dict]) -> str:
    """Markdown: per variant, R@1 and order accuracy of the logits and of each alignment (mean ± std over seeds),
    then R@1 with the order-aware alignment re-weighted."""
    by_variant: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_variant[row["variant"]].append(row["results"])
    names = list(dict.fromkeys(name for row in rows for name in row["results"]["order_accuracy"]))
    lines = [
        "| variant | seeds | T→V R@1 | partner share of errors | " + " | ".join(f"order acc. {name}" for name in names) + " |",
        "|---|---|---|---|" + "---|" * len(names),
    ]
    for variant, results in by_variant.items():
        cells = [_mean_std([result["R1"]["logits"] for result in results]),
                 _mean_std([result["partner_share_of_errors"] for result in results])]
        for name in names:
            values = [result["order_accuracy"][name] for result in results if name in result["order_accuracy"]]
            cells.append(_mean_std(values) if values else "–")
        lines.append(f"| {variant} | {len(results)} | " + " | ".join(cells) + " |")
    groups = list(dict.fromkeys(EVENT_GROUPS.values()))
    lines += ["", "Order accuracy of the logits by what the reversal changes (pairs with an object of that kind):", "",
              "| variant | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for variant, results in by_variant.items():
        cells = []
        for group in groups:
            values = [result["order_accuracy_by_event"][group] for result in results
                      if group in result["order_accuracy_by_event"]]
            cells.append(_mean_std(values) if values else "–")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    weighted = {variant: results for variant, results in by_variant.items() if "reweighted_R1" in results[0]}
    if weighted:
        lines += ["", f"T→V R@1 re-scored as w · {ORDER_AWARE_ALIGNMENT} + (1 − w) · mean(others), models unchanged:", "",
                  "| variant | model (mean) | " + " | ".join(f"w = {weight}" for weight in REWEIGHTING) + " |",
                  "|---|---|" + "---|" * len(REWEIGHTING)]
        for variant, results in weighted.items():
            cells = [_mean_std([result["R1"]["logits"] for result in results])]
            cells += [_mean_std([result["reweighted_R1"][str(weight)] for result in results]) for weight in REWEIGHTING]
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, "outputs/synthetic_order")
    parser.add_argument("--json", type=Path, help="Also write every run's figures here.")
    arguments = parser.parse_args(argv)
    runs = runs_from_arguments(parser, arguments)
    rows = []
    for variant, seed, model_dir, run_argv in runs:
        try:
            results = probe_model(model_dir, run_argv)
        except ValueError as error:
            parser.error(str(error))
        rows.append({"variant": variant, "seed": seed, "model": str(model_dir), "results": results})
        print(f"{variant} seed {seed}: R@1 {results['R1']['logits']:.1f}, order accuracy "
              f"{results['order_accuracy']['logits']:.1f}", file=sys.stderr)
    print(summary_tables(rows))
    if arguments.json:
        arguments.json.write_text(json.dumps({"runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
