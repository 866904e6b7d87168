"""One GPU run (< 5 minutes on an H100) of the library's GPU figures: video encoding, scoring, 1M search, training.

Runs from the repository with nothing but torch and transformers (`PYTHONPATH=src python benchmarks/gpu.py`);
models are randomly initialized at CLIP ViT-B/32 size (cost does not depend on the weights), inputs are seeded
random tensors. Every timing is a median (and min) of `--repeats` after warm-up, with CUDA synchronisation.

0. **Bare-CLIP anchor**: the CLIP ViT-B/32 vision tower + projection on `--batch-size` videos x `--frames` frames
   (64 x 12 by default) under bf16 autocast, eager and `torch.compile`d, timed at the start and at the end of the
   run. Every figure below is also given as a ratio to the anchor's eager median of the same run (`x anchor`), so
   runs on different GPUs and days compare.
1. **Video encoding** (bf16 autocast by default): `get_video_features` of each preset on `--batch-size` videos x
   `--frames` frames, and the bare CLIP ViT-B/32 vision tower + projection on the same frames ("clip-frames");
   videos/s and ratios to clip-frames (goal: unitrim >= 0.90x clip-frames throughput). `--compile` adds
   `torch.compile`d rows.
2. **Scoring** 1k x 1k per preset in `--dtype` (features of that dtype on the GPU), with the scorer's automatic
   choice (compiled tiles on CUDA) and eager, and each alignment alone (`model.scorer.only(name)`)
   (goal: all five alignments <= 10 ms on an H100 and <= 2x xclip's four).
3. **Search** over `--search-size` items: GPU exact coarse stage (`ExactCoarseIndex` on GPU tensors: matrix-vector
   product + sort) and MGSA rescoring of 100 candidates (features from a pool, item i = pool row i mod pool size);
   p50/p95 per query.
4. **Training step** of unitrim and xclip: forward with `return_loss=True` on `--batch-size` captions + videos x
   `--frames` frames + keyframes, backward, AdamW step, under bf16 autocast (fp32 weights); samples/s and the ratio
   (goal: unitrim >= 0.8x xclip).

    PYTHONPATH=src python benchmarks/gpu.py --json gpu.json [--compile]
    python benchmarks/gpu.py --device cpu --quick        # smoke run with the tiny presets (seconds)
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from typing import Any, Callable

import torch
from _timing import Timing, machine_info, markdown_table, report, time_interleaved
from inference_speed import text_inputs, video_inputs
from scoring_speed import DTYPES, random_text_features, random_visual_features, synchronized, unit_vectors
from search_latency import ExactCoarseIndex, RescoringPool, latency_summary

from unitrim_hf import UniTriMConfig, UniTriMModel
from unitrim_hf.modeling.mgsa_scorer import MGSAScorer

PRESETS = ["unitrim", "xclip", "clip4clip-meanp"]
CLIP_FRAMES = "clip-frames"
GOALS = {"video_vs_clip": 0.90, "scoring_ms": 10.0, "scoring_vs_xclip": 2.0, "training_vs_xclip": 0.8}


def build(preset: str, device: torch.device) -> UniTriMModel:
    torch.manual_seed(0)
    return UniTriMModel(UniTriMConfig.from_preset(preset)).to(device)


def autocast(device: torch.device, dtype: torch.dtype):
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def throughput_rows(timings: dict[str, Timing], items: int, reference: str) -> dict[str, Any]:
    rows = {}
    for name, timing in timings.items():
        rows[name] = timing.as_dict() | {
            "items_per_second": items / timing.median_seconds,
            "ratio_to_reference": timings[reference].median_seconds / timing.median_seconds,
        }
    return rows


# ---------------------------------------------------------------------------------------------- 0. anchor


def clip_anchor(args, device) -> dict[str, Any]:
    """The bare CLIP vision tower + projection on batch x frames frames (bf16 autocast), eager and compiled."""
    model = build(args.presets[-1], device).eval()
    frames = video_inputs(model.config, args.batch_size, args.frames)["pixel_values_videos"].flatten(0, 1).to(device)
    functions: dict[str, Callable[[], object]] = {
        "eager": lambda: model.visual_projection(model.vision_model(pixel_values=frames).pooler_output)
    }
    if args.compile:
        tower = torch.compile(model.vision_model)
        functions["compiled"] = lambda: model.visual_projection(tower(pixel_values=frames).pooler_output)
    functions = {name: synchronized(function, device) for name, function in functions.items()}
    with torch.inference_mode(), autocast(device, torch.bfloat16):
        timings = time_interleaved(functions, args.repeats, args.warmup + (2 if args.compile else 0))
    return {"batch_size": args.batch_size, "frames": args.frames, "dtype": "bfloat16",
            "rows": {name: timing.as_dict() for name, timing in timings.items()}}


def anchor_seconds(results: dict[str, Any]) -> float:
    """The anchor's eager median: the mean of its medians at the start and at the end of the run."""
    medians = [results[key]["rows"]["eager"]["median_seconds"] for key in ("anchor", "anchor_end") if key in results]
    return sum(medians) / len(medians)


def add_anchor_ratios(results: dict[str, Any]) -> None:
    """`x_anchor` (median seconds / anchor eager median) on every timed row of every section."""
    anchor = anchor_seconds(results)
    for section in ("video_encoding", "scoring", "training"):
        for row in results[section]["rows"].values():
            row["x_anchor"] = row["median_seconds"] / anchor
    for key in ("coarse", "total"):
        results["search"][key]["p50_x_anchor"] = results["search"][key]["p50_ms"] / 1e3 / anchor


# ---------------------------------------------------------------------------------------------- 1. video encoding


def video_encoding(models: dict[str, UniTriMModel], args, device, dtype) -> dict[str, Any]:
    inputs = {p: {k: v.to(device) for k, v in video_inputs(m.config, args.batch_size, args.frames).items()}
              for p, m in models.items()}
    reference = models[args.presets[-1]]
    frames = inputs[args.presets[-1]]["pixel_values_videos"].flatten(0, 1)

    def clip_frames(model: UniTriMModel = reference) -> torch.Tensor:
        return model.visual_projection(model.vision_model(pixel_values=frames).pooler_output)

    functions: dict[str, Callable[[], object]] = {CLIP_FRAMES: clip_frames}
    for preset, model in models.items():
        functions[preset] = lambda m=model, x=inputs[preset]: m.get_video_features(**x)
    if args.compile:
        compiled_tower = torch.compile(reference.vision_model)
        functions[f"{CLIP_FRAMES} compiled"] = lambda: reference.visual_projection(compiled_tower(pixel_values=frames).pooler_output)
        for preset, model in models.items():
            compiled = torch.compile(model.get_video_features)
            functions[f"{preset} compiled"] = lambda c=compiled, x=inputs[preset]: c(**x)
    functions = {name: synchronized(function, device) for name, function in functions.items()}
    with torch.inference_mode(), autocast(device, dtype):
        timings = time_interleaved(functions, args.repeats, args.warmup + (2 if args.compile else 0))
    rows = throughput_rows({n: t for n, t in timings.items() if "compiled" not in n}, args.batch_size, CLIP_FRAMES)
    if args.compile:
        compiled_rows = throughput_rows({n: t for n, t in timings.items() if "compiled" in n}, args.batch_size,
                                        f"{CLIP_FRAMES} compiled")
        rows.update(compiled_rows)
    return {"batch_size": args.batch_size, "frames": args.frames, "rows": rows}


# ---------------------------------------------------------------------------------------------- 2. scoring


def scoring(models: dict[str, UniTriMModel], args, device, dtype) -> dict[str, Any]:
    size = args.scoring_size
    features = {p: (random_text_features(m.config, size, dtype=dtype).to(device),
                    random_visual_features(m.config, size, dtype=dtype).to(device)) for p, m in models.items()}
    functions = {p: synchronized(lambda m=m, f=features[p]: m.similarity(*f), device) for p, m in models.items()}
    for preset, model in models.items():
        eager = MGSAScorer(model.config.alignments, model.config.aggregation_temperature, compile=False)
        functions[f"{preset} eager"] = synchronized(
            lambda s=eager, m=model, f=features[preset]: s.similarity(*f, m.exp_logit_scale()), device
        )
    alone: dict[str, Callable[[], object]] = {}
    owners: dict[str, str] = {}
    for preset, model in models.items():
        for name in model.config.alignments:
            if name not in owners:
                owners[name] = preset
                scorer = model.scorer.only(name)
                alone[f"alone: {name}"] = synchronized(
                    lambda s=scorer, m=model, f=features[preset]: s.similarity(*f, m.exp_logit_scale()), device
                )
    with torch.inference_mode():
        timings = time_interleaved(functions | alone, args.repeats, args.warmup + 1)
    xclip = next((p for p in models if p.startswith("xclip")), None)
    rows = {}
    for name, timing in timings.items():
        rows[name] = timing.as_dict() | {"milliseconds": 1e3 * timing.median_seconds}
        if xclip and name in models:
            rows[name]["ratio_to_xclip"] = timing.median_seconds / timings[xclip].median_seconds
    return {"size": size, "dtype": str(dtype).replace("torch.", ""), "rows": rows, "alignment_models": owners}


# ---------------------------------------------------------------------------------------------- 3. search


def search(models: dict[str, UniTriMModel], args, device) -> dict[str, Any]:
    model = models[args.presets[0]]
    config = model.config
    stored = unit_vectors((args.search_size, config.projection_dim), torch.Generator().manual_seed(5), torch.float16)
    coarse = ExactCoarseIndex(stored.to(device))
    del stored
    pool = RescoringPool(config, min(args.search_size, 4096))
    pool.features = pool.features.to(device)
    text = random_text_features(config, args.queries + 3, seed=11).to(device)
    coarse_ms, total_ms = [], []
    with torch.inference_mode():
        for row in range(text.batch_size):
            query = text.take(slice(row, row + 1))
            vector = torch.nn.functional.normalize(query.sentence_embeds[0].float(), dim=-1)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            _, positions = coarse.search(vector, 100)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            middle = time.perf_counter()
            logits = model.similarity(query, pool.visual_features(positions)).logits[0]
            ranking = positions[torch.sort(logits, descending=True, stable=True).indices].cpu()
            end = time.perf_counter()
            if row >= 3 and len(ranking):
                coarse_ms.append(1e3 * (middle - start))
                total_ms.append(1e3 * (end - start))
    return {"items": args.search_size, "candidates": 100, "device": str(device), "rerank_preset": args.presets[0],
            "coarse": latency_summary(coarse_ms), "total": latency_summary(total_ms)}


# ---------------------------------------------------------------------------------------------- 4. training


def training(args, device, dtype) -> dict[str, Any]:
    presets = [p for p in args.presets if not p.startswith("clip4clip")]
    steps: dict[str, Callable[[], object]] = {}
    held = []
    for preset in presets:
        model = build(preset, device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
        inputs = text_inputs(model.config, args.batch_size, 32) | video_inputs(model.config, args.batch_size, args.frames)
        inputs["pixel_values"] = inputs["pixel_values_videos"][:, args.frames // 2].clone()
        inputs = {name: value.to(device) for name, value in inputs.items()}

        def step(model=model, optimizer=optimizer, inputs=inputs) -> object:
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, dtype):
                loss = model(**inputs, return_loss=True).loss
            loss.backward()
            optimizer.step()
            return loss

        steps[preset] = synchronized(step, device)
        held.append((model, optimizer))
    timings = time_interleaved(steps, args.repeats, args.warmup + 1)
    xclip = next((p for p in presets if p.startswith("xclip")), presets[-1])
    rows = throughput_rows(timings, args.batch_size, xclip)
    del held
    gc.collect()
    return {"batch_size": args.batch_size, "frames": args.frames, "rows": rows, "reference": xclip}


# ---------------------------------------------------------------------------------------------- report


def print_report(results: dict[str, Any]) -> None:
    video = results["video_encoding"]
    print(f"Device: {results['machine'].get('cuda_device', results['settings']['device'])}; "
          f"dtype {results['settings']['dtype']}; median of {results['settings']['repeats']} repeats\n")
    anchor = results["anchor"]
    print(f"0. Bare-CLIP anchor, {anchor['batch_size']} videos x {anchor['frames']} frames, bf16 "
          f"(start and end of the run; x anchor below = median / {anchor_seconds(results) * 1e3:.2f} ms)")
    print(markdown_table(["when", "what", "median ms", "min ms"], [
        [when, name, row["median_seconds"] * 1e3, row["min_seconds"] * 1e3]
        for when, key in (("start", "anchor"), ("end", "anchor_end")) for name, row in results[key]["rows"].items()
    ]) + "\n")
    print(f"1. Video encoding, {video['batch_size']} videos x {video['frames']} frames")
    print(markdown_table(["model", "median ms", "min ms", "x anchor", "videos/s", "throughput x clip-frames"], [
        [name, row["median_seconds"] * 1e3, row["min_seconds"] * 1e3, row["x_anchor"], row["items_per_second"],
         row["ratio_to_reference"]]
        for name, row in video["rows"].items()]) + "\n")
    score = results["scoring"]
    print(f"2. Scoring {score['size']}x{score['size']} ({score['dtype']})")
    print(markdown_table(["what", "median ms", "min ms", "x anchor", "x xclip"], [
        [name, row["median_seconds"] * 1e3, row["min_seconds"] * 1e3, row["x_anchor"], row.get("ratio_to_xclip")]
        for name, row in score["rows"].items()]) + "\n")
    found = results["search"]
    print(f"3. Search over {found['items']} items (exact coarse stage on {found['device']} + {found['candidates']} rescored): "
          f"coarse p50 {found['coarse']['p50_ms']:.2f} ms; total p50 {found['total']['p50_ms']:.2f} ms "
          f"({found['total']['p50_x_anchor']:.4f} x anchor), p95 {found['total']['p95_ms']:.2f} ms\n")
    train = results["training"]
    print(f"4. Training step, batch {train['batch_size']} x {train['frames']} frames + keyframes, AdamW")
    print(markdown_table(["preset", "median ms", "min ms", "x anchor", "samples/s", f"throughput x {train['reference']}"], [
        [name, row["median_seconds"] * 1e3, row["min_seconds"] * 1e3, row["x_anchor"], row["items_per_second"],
         row["ratio_to_reference"]]
        for name, row in train["rows"].items()]) + "\n")
    for line in results["goals"]:
        print(line)


def goal_lines(results: dict[str, Any], presets: list[str]) -> list[str]:
    unitrim, xclip = presets[0], next((p for p in presets if p.startswith("xclip")), None)
    lines = []
    video = results["video_encoding"]["rows"]
    ratio = video[unitrim]["ratio_to_reference"]
    lines.append(f"video encoding {unitrim} / clip-frames throughput: {ratio:.3f} (goal >= {GOALS['video_vs_clip']}); "
                 f"{video[unitrim]['x_anchor']:.3f} x anchor")
    score = results["scoring"]["rows"]
    milliseconds = score[unitrim]["milliseconds"]
    lines.append(f"scoring {unitrim}: {milliseconds:.2f} ms = {score[unitrim]['x_anchor']:.4f} x anchor "
                 f"(goal <= {GOALS['scoring_ms']} ms on an H100)"
                 + (f", {score[unitrim]['ratio_to_xclip']:.2f}x xclip (goal <= {GOALS['scoring_vs_xclip']})" if xclip else ""))
    if xclip:
        train = results["training"]["rows"]
        lines.append(f"training throughput {unitrim} / {xclip}: {train[unitrim]['ratio_to_reference']:.3f} "
                     f"(goal >= {GOALS['training_vs_xclip']}); a {unitrim} step = {train[unitrim]['x_anchor']:.3f} x anchor")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --quick)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16", help="autocast / feature dtype")
    parser.add_argument("--quick", action="store_true", help="tiny presets and small sizes: a smoke run")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="also time the torch.compile'd anchor and video encoding (default: on for CUDA)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 10; 2 with --quick)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds (default 2)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available on this machine (torch {torch.__version__}, "
                     "no GPU visible). Run it where a GPU is lent, or try `--device cpu --quick` for a smoke run.")
    if args.repeats is None:
        args.repeats = 2 if args.quick else 10
    if args.compile is None:
        args.compile = device.type == "cuda"
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    suffix = "-tiny" if args.quick else ""
    args.presets = [preset + suffix for preset in PRESETS]
    args.batch_size, args.frames = (2, 3) if args.quick else (64, 12)
    args.scoring_size = 40 if args.quick else 1000
    args.search_size = 5000 if args.quick else 1_000_000
    args.queries = 5 if args.quick else 100
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    torch.backends.cuda.matmul.allow_tf32 = True
    started = time.perf_counter()
    machine = machine_info()
    if device.type == "cuda":
        machine["cuda_device"] = torch.cuda.get_device_name(device)
    results: dict[str, Any] = {"benchmark": "gpu", "machine": machine, "settings": {
        "device": str(device), "dtype": args.dtype, "quick": args.quick, "compile": args.compile,
        "repeats": args.repeats, "warmup": args.warmup, "presets": args.presets}}
    results["anchor"] = clip_anchor(args, device)
    models = {preset: build(preset, device).eval() for preset in args.presets}
    for name, function in (("video_encoding", lambda: video_encoding(models, args, device, dtype)),
                           ("scoring", lambda: scoring(models, args, device, dtype)),
                           ("search", lambda: search(models, args, device))):
        begin = time.perf_counter()
        results[name] = function()
        results[name]["section_seconds"] = time.perf_counter() - begin
        print(f"[{name} done in {results[name]['section_seconds']:.1f} s]", flush=True)
    del models
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    results["training"] = training(args, device, dtype)
    results["anchor_end"] = clip_anchor(args, device)
    add_anchor_ratios(results)
    results["goals"] = goal_lines(results, args.presets)
    results["total_seconds"] = time.perf_counter() - started
    report(results, print_report, args.json)
    print(f"\nTotal {results['total_seconds']:.1f} s")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
