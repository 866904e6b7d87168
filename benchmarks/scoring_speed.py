"""Text-video scoring time and peak memory of the presets (1k x 1k, 10k x 10k), ratios, per-alignment breakdown.

`model.similarity` (memory-bounded tiles) is timed on seeded random features with the shapes and masks of real
encoded captions and videos (scoring cost depends on shapes and masks, not on values):

- text: sentence (N, D); words (N, 32, D) with 8-20 real tokens after SOT; triplets (N, 4, D) with 1-3 real;
  disentangler outputs (N, D) for presets with a disentangler;
- visual: video (N, D); frames (N, 12, D), all real; selected patches (N, 12, K, D) for presets with patches.

1. **Scoring**: every preset on the same features of each size, timed round-robin (warm-up, then `--repeats`
   rounds; median and min), ratios to xclip and clip4clip-meanp of the same run. With `--extrapolate` (default
   on CPU), a size N larger than `--extrapolate-texts` x `--extrapolate-videos` is measured on that many texts and
   videos and the time multiplied by N*N / (texts * videos) (tiled scoring is linear in the number of pairs);
   such rows are labelled `extrapolated`.
2. **Peak memory**: on CPU, the resident-set growth of a fresh subprocess per preset while it scores once (peak
   RSS reset through /proc/self/clear_refs where Linux allows it, else ru_maxrss), plus analytic figures: the
   largest tile similarity tensor `similarity` builds and the output matrices. On CUDA,
   `torch.cuda.max_memory_allocated` growth.
3. **Per-alignment breakdown**: each alignment of the presets alone (`model.scorer.only(name)`), at
   `--breakdown-size`, next to a *bare matmul of the same shapes*: the same tiles of the same normalized units
   (trimmed to the used word span), multiplied into a reused buffer and nothing else; the ratio says how far the
   alignment is from the floor of its matrix products (goal <= 2x).

    python benchmarks/scoring_speed.py [--presets unitrim xclip clip4clip-meanp] [--sizes 1000 10000]
        [--device cpu|cuda] [--dtype float32|bfloat16|float16] [--compile] [--repeats 5] [--json scores.json]
    python benchmarks/scoring_speed.py --presets unitrim-tiny xclip-tiny clip4clip-meanp-tiny --sizes 20 --repeats 1
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
from typing import Any, Callable

import torch
from _timing import Timing, machine_info, markdown_table, report, set_torch_threads, time_interleaved

from unitrim_hf import UniTriMConfig, UniTriMModel
from unitrim_hf.modeling.mgsa_scorer import DEFAULT_MAX_BLOCK_ELEMENTS, DEFAULT_VISUAL_BLOCK_SIZE, MGSAScorer, Units
from unitrim_hf.modeling.modeling_outputs import UniTriMTextFeatures, UniTriMVisualFeatures
from unitrim_hf.modeling.pooling import trim_to_valid_span

DEFAULT_PRESETS = ["unitrim", "xclip", "clip4clip-meanp"]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
CAPTION_LENGTH = 32
MIN_REAL_WORDS, MAX_REAL_WORDS = 8, 20
MIN_REAL_TRIPLETS, MAX_REAL_TRIPLETS = 1, 3
NUM_FRAMES = 12
CHUNK_ROWS = 4096
MEBIBYTE = 2**20


def unit_vectors(
    shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """L2-normalized standard-normal vectors of `shape` (last dim = D), generated in chunks of rows, in `dtype`."""
    result = torch.empty(shape, dtype=dtype)
    for start in range(0, shape[0], CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, shape[0])
        chunk = torch.randn((stop - start, *shape[1:]), generator=generator)
        result[start:stop] = torch.nn.functional.normalize(chunk, dim=-1).to(dtype)
    return result


def random_text_features(config, num_texts: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> UniTriMTextFeatures:
    """
    Text features of `num_texts` captions for a model with `config` (a `UniTriMConfig`).

    Returns:
        `UniTriMTextFeatures`: word fields when the preset uses words, triplet fields when it uses triplets,
        disentangler fields when it has a disentangler; word_mask (num_texts, 32) always.
    """
    generator = torch.Generator().manual_seed(seed)
    embed_dim = config.projection_dim
    real_words = torch.randint(MIN_REAL_WORDS, MAX_REAL_WORDS + 1, (num_texts,), generator=generator)
    word_mask = torch.arange(CAPTION_LENGTH)[None, :] <= real_words[:, None]  # SOT + real words
    word_mask[:, 0] = False
    features = UniTriMTextFeatures(
        pooler_output=unit_vectors((num_texts, embed_dim), generator, dtype), word_mask=word_mask
    )
    if config.uses_words:
        features.word_embeds = unit_vectors((num_texts, CAPTION_LENGTH, embed_dim), generator, dtype)
    if config.use_triplets:
        real_triplets = torch.randint(MIN_REAL_TRIPLETS, MAX_REAL_TRIPLETS + 1, (num_texts,), generator=generator)
        features.triplet_mask = torch.arange(config.max_triplets)[None, :] < real_triplets[:, None]
        features.triplet_embeds = unit_vectors((num_texts, config.max_triplets, embed_dim), generator, dtype)
    if config.use_disentangler:
        features.spatial_embeds = unit_vectors((num_texts, embed_dim), generator, dtype)
        features.temporal_embeds = unit_vectors((num_texts, embed_dim), generator, dtype)
    return features


def random_visual_features(
    config, num_visuals: int, seed: int = 1, dtype: torch.dtype = torch.float32, num_frames: int = NUM_FRAMES
) -> UniTriMVisualFeatures:
    """
    Visual features of `num_visuals` videos of `num_frames` real frames for a model with `config`.

    Returns:
        `UniTriMVisualFeatures` with video (N, D), frames (N, T, D), video_mask (N, T) all true, and patches
        (N, T, K, D) when `config.patch_top_k` > 0.
    """
    generator = torch.Generator().manual_seed(seed)
    embed_dim = config.projection_dim
    frame_embeds = unit_vectors((num_visuals, num_frames, embed_dim), generator, dtype)
    video_embeds = torch.empty(num_visuals, embed_dim, dtype=dtype)
    for start in range(0, num_visuals, CHUNK_ROWS):
        mean = frame_embeds[start : start + CHUNK_ROWS].float().mean(dim=1)
        video_embeds[start : start + CHUNK_ROWS] = torch.nn.functional.normalize(mean, dim=-1).to(dtype)
    features = UniTriMVisualFeatures(
        pooler_output=video_embeds,
        frame_embeds=frame_embeds,
        video_mask=torch.ones(num_visuals, num_frames, dtype=torch.bool),
    )
    if config.patch_top_k:
        features.patch_embeds = unit_vectors((num_visuals, num_frames, config.patch_top_k, embed_dim), generator, dtype)
    return features


def feature_bytes(features: UniTriMTextFeatures | UniTriMVisualFeatures) -> int:
    """Bytes held by the tensors of a feature batch."""
    return sum(
        value.numel() * value.element_size()
        for value in vars(features).values()
        if isinstance(value, torch.Tensor)
    )


# ---------------------------------------------------------------------------------------------- helpers


def reference_preset(presets: list[str], prefix: str) -> str | None:
    """The preset of `presets` named `prefix` or `prefix-tiny` (a reference for ratios), if any."""
    return next((preset for preset in presets if preset == prefix or preset == f"{prefix}-tiny"), None)


def synchronized(function: Callable[[], object], device: torch.device) -> Callable[[], object]:
    """`function` followed by a CUDA synchronisation when it runs on a GPU (so the wall time covers the kernels)."""
    if device.type != "cuda":
        return function

    def run() -> object:
        result = function()
        torch.cuda.synchronize(device)
        return result

    return run


def tile_plan(model: UniTriMModel, text: UniTriMTextFeatures, visual: UniTriMVisualFeatures) -> dict[str, Any]:
    """The tile sizes `model.similarity` picks by default for each alignment and the entries of the largest tile."""
    visual_block = min(max(visual.batch_size, 1), DEFAULT_VISUAL_BLOCK_SIZE)
    units = model.scorer.units_per_pair(text, visual)
    text_blocks = {name: min(max(1, DEFAULT_MAX_BLOCK_ELEMENTS // (visual_block * count)), text.batch_size)
                   for name, count in units.items()}
    return {
        "visual_block": visual_block,
        "text_block": text_blocks,
        "units_per_pair": units,
        "largest_tile_elements": max(text_blocks[name] * visual_block * count for name, count in units.items()),
    }


def trimmed(units: Units) -> Units:
    """`units` restricted to the unit positions some row uses (as the scorer's tiles are)."""
    if units.mask is None:
        return units
    embeds, mask = trim_to_valid_span(units.embeds, units.mask)
    return Units(embeds, mask)


def bare_matmul(scorer: MGSAScorer, text: UniTriMTextFeatures, visual: UniTriMVisualFeatures) -> Callable[[], None]:
    """The matrix products alone of `scorer`'s single alignment: its default tiles of its normalized (trimmed)
    units, multiplied into one reused buffer."""
    (alignment,) = scorer.alignments
    text_units, visual_units = trimmed(alignment.text_units(text)), trimmed(alignment.visual_units(visual))
    text_embeds = text_units.embeds.reshape(-1, text_units.embeds.shape[-1])
    visual_embeds = visual_units.embeds.reshape(-1, visual_units.embeds.shape[-1])
    visual_rows = min(max(visual.batch_size, 1), DEFAULT_VISUAL_BLOCK_SIZE) * visual_units.length
    text_rows = max(1, DEFAULT_MAX_BLOCK_ELEMENTS // visual_rows // text_units.length) * text_units.length
    buffer = text_embeds.new_empty(min(text_rows, len(text_embeds)), min(visual_rows, len(visual_embeds)))

    def multiply() -> None:
        for text_start in range(0, len(text_embeds), text_rows):
            text_tile = text_embeds[text_start : text_start + text_rows]
            for visual_start in range(0, len(visual_embeds), visual_rows):
                visual_tile = visual_embeds[visual_start : visual_start + visual_rows]
                torch.mm(text_tile, visual_tile.t(), out=buffer[: len(text_tile), : len(visual_tile)])

    return multiply


def build_model(preset: str, device: torch.device, compile_similarity: bool) -> UniTriMModel:
    torch.manual_seed(0)
    model = UniTriMModel(UniTriMConfig.from_preset(preset)).eval().to(device)
    if compile_similarity:
        model.compile_similarity()  # else the scorer's automatic choice: compiled for CUDA galleries, eager on CPU
    return model


# ---------------------------------------------------------------------------------------------- memory


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False where the platform does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def memory_probe(preset: str, num_texts: int, num_visuals: int, dtype_name: str) -> dict[str, Any]:
    """Run in a fresh process: build one preset and its features, then report the RSS growth of one scoring."""
    torch.set_num_threads(int(os.environ.get("SCORING_PROBE_THREADS", "1")))
    dtype = DTYPES[dtype_name]
    model = UniTriMModel(UniTriMConfig.from_preset(preset)).eval()
    text = random_text_features(model.config, num_texts, dtype=dtype)
    visual = random_visual_features(model.config, num_visuals, dtype=dtype)
    gc.collect()
    before_kib = _proc_status_kib("VmRSS")
    method = "VmHWM after clear_refs" if _reset_peak_rss() and before_kib is not None else "ru_maxrss"
    if before_kib is None:
        before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.inference_mode():
        model.similarity(text, visual)
    peak_kib = _proc_status_kib("VmHWM") if method.startswith("VmHWM") else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"rss_before_mib": before_kib / 1024, "peak_growth_mib": (peak_kib - before_kib) / 1024, "method": method}


def cpu_peak_memory(preset: str, num_texts: int, num_visuals: int, dtype_name: str, threads: int) -> dict[str, Any]:
    """`memory_probe` in a subprocess (so earlier allocations of this process do not hide the peak)."""
    command = [sys.executable, os.path.abspath(__file__), "--memory-probe", preset, str(num_texts), str(num_visuals),
               "--dtype", dtype_name]
    environment = dict(os.environ, SCORING_PROBE_THREADS=str(threads))
    completed = subprocess.run(command, capture_output=True, text=True, env=environment)
    if completed.returncode != 0:
        raise RuntimeError(f"memory probe of {preset} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def cuda_peak_memory(model: UniTriMModel, text: UniTriMTextFeatures, visual: UniTriMVisualFeatures) -> dict[str, Any]:
    device = text.sentence_embeds.device
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode():
        model.similarity(text, visual)
    torch.cuda.synchronize(device)
    return {"peak_growth_mib": (torch.cuda.max_memory_allocated(device) - before) / MEBIBYTE,
            "method": "torch.cuda.max_memory_allocated"}


# ---------------------------------------------------------------------------------------------- measurement


def measured_shape(size: int, args: argparse.Namespace) -> tuple[int, int, bool]:
    """(texts, videos, extrapolated) actually scored for a size x size gallery."""
    if args.extrapolate and size * size > args.extrapolate_texts * args.extrapolate_videos:
        return min(size, args.extrapolate_texts), min(size, args.extrapolate_videos), True
    return size, size, False


def run(args: argparse.Namespace) -> dict[str, Any]:
    threads = set_torch_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    models = {preset: build_model(preset, device, args.compile) for preset in args.presets}
    xclip, clip4clip = reference_preset(args.presets, "xclip"), reference_preset(args.presets, "clip4clip-meanp")
    warmup = max(args.warmup, 2) if args.compile else args.warmup

    results: dict[str, Any] = {
        "benchmark": "scoring_speed",
        "machine": machine_info(threads) | ({"cuda_device": torch.cuda.get_device_name(device)} if device.type == "cuda" else {}),
        "settings": {
            "presets": list(args.presets), "sizes": list(args.sizes), "device": str(device), "dtype": args.dtype,
            "compile": args.compile, "repeats": args.repeats, "warmup": warmup, "extrapolate": args.extrapolate,
            "extrapolate_texts": args.extrapolate_texts, "extrapolate_videos": args.extrapolate_videos,
            "features": "seeded random unit vectors; 32 tokens (8-20 real words), 4 triplet slots (1-3 real), "
                        "12 real frames, K selected patches per frame",
        },
        "scoring": [],
        "breakdown": None,
    }
    measured: dict[tuple[int, int], dict[str, Timing]] = {}
    probed: dict[tuple[str, int, int], dict[str, Any]] = {}
    for size in args.sizes:
        num_texts, num_visuals, extrapolated = measured_shape(size, args)
        scale = size * size / (num_texts * num_visuals)
        features = {
            preset: (random_text_features(model.config, num_texts, dtype=dtype).to(device),
                     random_visual_features(model.config, num_visuals, dtype=dtype).to(device))
            for preset, model in models.items()
        }
        if (num_texts, num_visuals) not in measured:
            functions = {
                preset: synchronized(lambda m=model, f=features[preset]: m.similarity(*f), device)
                for preset, model in models.items()
            }
            with torch.inference_mode():
                measured[(num_texts, num_visuals)] = time_interleaved(functions, args.repeats, warmup)
        timings = measured[(num_texts, num_visuals)]
        for preset, model in models.items():
            text, visual = features[preset]
            plan = tile_plan(model, text, visual)
            element_size = text.sentence_embeds.element_size()
            row: dict[str, Any] = {
                "size": size, "preset": preset, "measured_texts": num_texts, "measured_videos": num_visuals,
                "extrapolated": extrapolated, "scale": scale,
                "median_seconds": timings[preset].median_seconds * scale,
                "min_seconds": timings[preset].min_seconds * scale,
                "measured": timings[preset].as_dict(),
                "tile_plan": plan,
                "largest_tile_mib": plan["largest_tile_elements"] * element_size / MEBIBYTE,
                "output_mib": size * size * (1 + len(model.config.alignments)) * element_size / MEBIBYTE,
                "feature_mib": (feature_bytes(text) + feature_bytes(visual)) * size / max(num_texts, num_visuals) / MEBIBYTE,
            }
            for name, reference in (("xclip", xclip), ("clip4clip", clip4clip)):
                if reference is not None:
                    row[f"ratio_to_{name}"] = timings[preset].median_seconds / timings[reference].median_seconds
                    row[f"min_ratio_to_{name}"] = timings[preset].min_seconds / timings[reference].min_seconds
            if args.memory:
                if device.type == "cuda":
                    row["peak_memory"] = cuda_peak_memory(model, text, visual)
                else:
                    key = (preset, num_texts, num_visuals)
                    if key not in probed:  # an extrapolated size reuses the probe of its measured shape
                        probed[key] = cpu_peak_memory(preset, num_texts, num_visuals, args.dtype, threads)
                    row["peak_memory"] = dict(probed[key])
                row["peak_memory"]["measured_at"] = f"{num_texts}x{num_visuals}"
            results["scoring"].append(row)
        del features
        gc.collect()

    if args.breakdown_size:
        results["breakdown"] = run_breakdown(models, args.breakdown_size, dtype, device, args.repeats, warmup)
    if args.compare_compile:
        results["compile"] = run_compile_comparison(models, args.compare_compile, dtype, device, args.repeats)
    return results


def run_breakdown(
    models: dict[str, UniTriMModel], size: int, dtype: torch.dtype, device: torch.device, repeats: int, warmup: int
) -> dict[str, Any]:
    """Each alignment of the presets alone at size x size, timed round-robin, with the model that has it."""
    owners: dict[str, str] = {}
    for preset, model in models.items():
        for name in model.config.alignments:
            owners.setdefault(name, preset)
    features = {
        preset: (random_text_features(models[preset].config, size, dtype=dtype).to(device),
                 random_visual_features(models[preset].config, size, dtype=dtype).to(device))
        for preset in set(owners.values())
    }
    functions = {}
    for name, owner in owners.items():
        model, (text, visual) = models[owner], features[owner]
        scorer = model.scorer.only(name)
        functions[name] = synchronized(lambda s=scorer, m=model, t=text, v=visual: s.similarity(t, v, m.exp_logit_scale()), device)
        with torch.inference_mode():
            functions[f"matmul: {name}"] = synchronized(bare_matmul(scorer, text, visual), device)

    with torch.inference_mode():
        timings = time_interleaved(functions, repeats, warmup)
    breakdown: dict[str, Any] = {"size": size, "alignments": {}}
    for name, owner in owners.items():
        matmul = timings[f"matmul: {name}"]
        breakdown["alignments"][name] = timings[name].as_dict() | {
            "model": owner, "bare_matmul": matmul.as_dict(),
            "ratio_to_matmul": timings[name].median_seconds / matmul.median_seconds,
            "min_ratio_to_matmul": timings[name].min_seconds / matmul.min_seconds,
        }
    for preset, model in models.items():
        names = model.config.alignments
        breakdown.setdefault("sum_per_preset", {})[preset] = {
            "median_seconds": sum(timings[name].median_seconds for name in names),
            "min_seconds": sum(timings[name].min_seconds for name in names),
        }
    return breakdown


def run_compile_comparison(
    models: dict[str, UniTriMModel], size: int, dtype: torch.dtype, device: torch.device, repeats: int
) -> dict[str, Any]:
    """Each preset's scoring with eager and with `torch.compile`d tiles, same features, round-robin (after two
    warm-up rounds, which include the compilation); says whether compiling pays on this device."""
    functions = {}
    for preset, model in models.items():
        text = random_text_features(model.config, size, dtype=dtype).to(device)
        visual = random_visual_features(model.config, size, dtype=dtype).to(device)
        for compiled in (False, True):
            scorer = MGSAScorer(model.config.alignments, model.config.aggregation_temperature, compile=compiled)
            functions[(preset, compiled)] = synchronized(
                lambda s=scorer, m=model, t=text, v=visual: s.similarity(t, v, m.exp_logit_scale()), device
            )
    with torch.inference_mode():
        timings = time_interleaved({f"{p} {'compiled' if c else 'eager'}": f for (p, c), f in functions.items()},
                                   repeats, warmup=2)
    rows = {}
    for preset in models:
        eager, compiled = timings[f"{preset} eager"], timings[f"{preset} compiled"]
        rows[preset] = {"eager": eager.as_dict(), "compiled": compiled.as_dict(),
                        "compiled_over_eager": compiled.median_seconds / eager.median_seconds,
                        "min_compiled_over_eager": compiled.min_seconds / eager.min_seconds}
    return {"size": size, "rows": rows}


# ---------------------------------------------------------------------------------------------- report


def print_report(results: dict[str, Any]) -> None:
    settings, machine = results["settings"], results["machine"]
    print(
        f"torch {machine['torch']}, device {settings['device']}"
        + (f" ({machine['cuda_device']})" if "cuda_device" in machine else "")
        + f", {machine['torch_threads']} threads of {machine['available_cores']} cores, dtype {settings['dtype']}"
        + (", compiled scoring" if settings["compile"] else "")
        + f"; median and min of {settings['repeats']} repeats after {settings['warmup']} warm-up.\n"
    )
    rows = []
    for row in results["scoring"]:
        memory = row.get("peak_memory")
        rows.append([
            f"{row['size']}x{row['size']}", row["preset"],
            f"extrapolated x{row['scale']:.0f} from {row['measured_texts']}x{row['measured_videos']}" if row["extrapolated"] else "measured",
            row["median_seconds"], row["min_seconds"], row.get("ratio_to_xclip"), row.get("min_ratio_to_xclip"),
            row.get("ratio_to_clip4clip"), row.get("min_ratio_to_clip4clip"),
            None if memory is None else f"{memory['peak_growth_mib']:.0f} (at {memory['measured_at']})",
            row["largest_tile_mib"], row["output_mib"],
        ])
    print("Scoring (`similarity`, all enabled alignments), seconds; ratios median/median and min/min")
    print(markdown_table(
        ["gallery", "preset", "how", "median s", "min s", "x xclip", "x xclip (min)", "x clip4clip", "x clip4clip (min)",
         "peak memory growth MiB", "largest tile MiB", "outputs MiB"], rows) + "\n")
    breakdown = results["breakdown"]
    if breakdown:
        print(f"Per-alignment breakdown, {breakdown['size']}x{breakdown['size']}, each alignment alone")
        rows = [[name, entry["model"], entry["median_seconds"] * 1e3, entry["min_seconds"] * 1e3,
                 entry["bare_matmul"]["median_seconds"] * 1e3, entry["ratio_to_matmul"], entry["min_ratio_to_matmul"]]
                for name, entry in breakdown["alignments"].items()]
        rows += [[f"sum of {preset}'s", preset, entry["median_seconds"] * 1e3, entry["min_seconds"] * 1e3,
                  None, None, None]
                 for preset, entry in breakdown["sum_per_preset"].items()]
        print(markdown_table(["alignment", "model", "median ms", "min ms", "bare matmul median ms", "x matmul",
                              "x matmul (min)"], rows) + "\n")
    comparison = results.get("compile")
    if comparison:
        print(f"Eager vs torch.compile'd tiles, {comparison['size']}x{comparison['size']} (compiled after 2 warm-up rounds)")
        print(markdown_table(["preset", "eager median s", "compiled median s", "compiled / eager", "(min/min)"], [
            [preset, row["eager"]["median_seconds"], row["compiled"]["median_seconds"], row["compiled_over_eager"],
             row["min_compiled_over_eager"]] for preset, row in comparison["rows"].items()]) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=DEFAULT_PRESETS, help="preset names; -tiny ones for a smoke run")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 10000], help="gallery sizes N (N texts x N videos)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:index] (default cpu)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="feature dtype (default float32)")
    parser.add_argument("--compile", action="store_true", help="always compile (model.compile_similarity()); default: the scorer's automatic choice")
    parser.add_argument("--extrapolate", action=argparse.BooleanOptionalAction, default=None,
                        help="measure large sizes on a part and scale (default: on for CPU, off for CUDA)")
    parser.add_argument("--extrapolate-texts", type=int, default=1000, help="texts measured when extrapolating")
    parser.add_argument("--extrapolate-videos", type=int, default=1000, help="videos measured when extrapolating")
    parser.add_argument("--breakdown-size", type=int, default=1000, help="N of the per-alignment breakdown (0: skip)")
    parser.add_argument("--compare-compile", type=int, default=0, metavar="N",
                        help="also time eager vs torch.compile'd tiles per preset at N x N (0: skip, the default)")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True, help="measure peak memory")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all available cores)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds before timing (default 1; 2 with --compile)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--memory-probe", nargs=3, metavar=("PRESET", "TEXTS", "VIDEOS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        return args
    for name in ("repeats", "extrapolate_texts", "extrapolate_videos"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0 or args.breakdown_size < 0 or args.compare_compile < 0:
        parser.error("--warmup and --breakdown-size must be >= 0")
    if any(size < 1 for size in args.sizes):
        parser.error(f"--sizes must be >= 1, got {args.sizes}")
    if len(set(args.presets)) != len(args.presets):
        parser.error(f"--presets lists a name twice: {args.presets}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available on this machine (torch {torch.__version__}); use --device cpu")
    if args.extrapolate is None:
        args.extrapolate = device.type == "cpu"
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.memory_probe:
        preset, texts, videos = args.memory_probe
        print(json.dumps(memory_probe(preset, int(texts), int(videos), args.dtype)))
        return {}
    results = run(args)
    return report(results, print_report, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
