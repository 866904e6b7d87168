"""Index build rate and two-stage query latency (p50/p95) over 10k-1M items, exact vs FAISS coarse stage.

1. **Index build rate**: `--build-videos` small mp4 clips (`--build-frames` frames of 64x64 at 6 fps, written with
   `unitrim_hf.video_writer.write_video`) and `--build-images` PNG images are indexed with
   `unitrim_hf.search.index_folder` (decoding, frame sampling, CLIP transform, encoding, fp16 shards) by a freshly
   initialised `--build-preset` model (default the tiny one: this is the library overhead, not CLIP's cost).
   Reported: items per second of the whole run.
2. **Query latency** for each `--sizes` N, on one core (`torch.set_num_threads(1)`, `faiss.omp_set_num_threads(1)`):
   - the coarse stage holds N random unit video embeddings, stored fp16 as in an index and handed to
     `unitrim_hf.search.coarse_stage.build_coarse_index` as float32 (as `Searcher` does): `exact` (matrix product
     + sort) and FAISS factories (`--faiss-factories`, e.g. `Flat` exact, `IVF256,Flat` with `--nprobe`);
   - the `--candidates` best are rescored with `model.similarity` of a full-size `--rerank-preset` model (D=512)
     on their full MGSA features (12 frames, 6 patches per frame, fp16 -> float32 as `Searcher` does). Full
     features of 1M items would be 87 GB, so they come from a pool of `--pool-size` random items: item i uses
     pool row i mod pool size (the rescoring cost depends on the shapes, not on which rows);
   - each query is a random caption feature (8-20 real words, 1-3 triplets); its text encoding is not in the
     query latency and is timed separately (`--rerank-preset` text tower, 1 caption x 32 tokens + 4 triplet phrases
     x 16 tokens, all real: the upper bound).
   Reported per backend: build seconds, p50/p95/mean of coarse, rescoring and total milliseconds over `--queries`
   queries (after 3 warm-up queries), and the coarse recall of the exact top-`--candidates` (1.0 for exact ones).

    python benchmarks/search_latency.py [--sizes 10000 100000 1000000] [--faiss-factories Flat IVF256,Flat]
        [--nprobe 8] [--queries 100] [--json search.json]
    python benchmarks/search_latency.py --sizes 2000 --queries 5 --rerank-preset unitrim-tiny --build-videos 2 \
        --build-images 2 --faiss-factories Flat        # smoke run
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _timing import available_cores, machine_info, markdown_table, report
from scoring_speed import random_text_features, random_visual_features, unit_vectors

from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor
from unitrim_hf.modeling_outputs import UniTriMVisualFeatures
from unitrim_hf.search import index_folder
from unitrim_hf.search.coarse_stage import FAISS_INSTALL_HINT, build_coarse_index
from unitrim_hf.video_writer import write_video

WARMUP_QUERIES = 3
LATENCY_GOAL_MS = 50.0


def faiss_module():
    """The faiss module, or None when it is not installed."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def set_threads(count: int) -> None:
    torch.set_num_threads(count)
    faiss = faiss_module()
    if faiss is not None:
        faiss.omp_set_num_threads(count)


def percentile(values: list[float], fraction: float) -> float:
    return float(np.percentile(np.asarray(values), 100 * fraction))


def latency_summary(milliseconds: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(milliseconds, 0.50), "p95_ms": percentile(milliseconds, 0.95),
            "mean_ms": statistics.fmean(milliseconds), "min_ms": min(milliseconds)}


# ---------------------------------------------------------------------------------------------- index build


def write_collection(folder: Path, num_videos: int, num_images: int, num_frames: int) -> None:
    """`num_videos` mp4 clips of 64x64 moving noise and `num_images` 64x48 PNG images, seeded."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for index in range(num_videos):
        base = rng.integers(0, 255, (64, 64, 3))
        frames = [(base + 9 * step) % 255 for step in range(num_frames)]
        write_video(folder / f"clip_{index:04d}.mp4", np.stack(frames).astype(np.uint8), fps=6)
    for index in range(num_images):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / f"image_{index:04d}.png")


def measure_index_build(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(0)
    config = UniTriMConfig.from_preset(args.build_preset)
    model = UniTriMModel(config).eval()
    processor = UniTriMProcessor.for_model_config(config, frame_sampler_config={"num_frames": args.build_frames})
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / "collection"
        folder.mkdir()
        write_collection(folder, args.build_videos, args.build_images, args.build_frames)
        report = index_folder(folder, Path(temporary) / "index", model, processor, batch_size=8, progress=False)
    if report.skipped:
        raise RuntimeError(f"the benchmark collection should index cleanly, skipped: {report.skipped}")
    return {
        "preset": args.build_preset, "videos": args.build_videos, "images": args.build_images,
        "frames_per_video": args.build_frames, "items": len(report.added), "seconds": report.seconds,
        "items_per_second": report.items_per_second,
    }


# ---------------------------------------------------------------------------------------------- queries


class RescoringPool:
    """Full MGSA features of `pool_size` random items, stored fp16; item i is served by row i mod pool_size."""

    def __init__(self, config, pool_size: int, seed: int = 7) -> None:
        self.features = random_visual_features(config, pool_size, seed=seed, dtype=torch.float16)
        self.pool_size = pool_size

    def visual_features(self, item_positions: torch.Tensor) -> UniTriMVisualFeatures:
        """float32 features of the items (as `Searcher.visual_features` turns stored fp16 into model features)."""
        stored = self.features.take(item_positions % self.pool_size)
        return UniTriMVisualFeatures(
            video_embeds=stored.video_embeds.float(), frame_embeds=stored.frame_embeds.float(),
            video_mask=stored.video_mask, patch_embeds=None if stored.patch_embeds is None else stored.patch_embeds.float(),
        )


def measure_backend(coarse, model, queries, pool: RescoringPool, candidates: int, exact_top) -> dict[str, Any]:
    """Latency of coarse search + rescoring + final sort for each query (batch of one)."""
    coarse_ms, rescore_ms, total_ms, recalls = [], [], [], []
    with torch.inference_mode():
        for index, query in enumerate(queries):
            start = time.perf_counter()
            _, positions = coarse.search(query["coarse_vector"], candidates)
            after_coarse = time.perf_counter()
            logits = model.similarity(query["features"], pool.visual_features(positions)).logits[0]
            ranking = positions[torch.sort(logits, descending=True, stable=True).indices]
            end = time.perf_counter()
            if index < WARMUP_QUERIES:
                continue
            coarse_ms.append(1e3 * (after_coarse - start))
            rescore_ms.append(1e3 * (end - after_coarse))
            total_ms.append(1e3 * (end - start))
            if exact_top is not None:
                expected = set(exact_top[index].tolist())
                recalls.append(len(expected & set(ranking.tolist())) / len(expected))
    return {
        "coarse": latency_summary(coarse_ms), "rescoring": latency_summary(rescore_ms), "total": latency_summary(total_ms),
        "coarse_recall": statistics.fmean(recalls) if recalls else None, "timed_queries": len(total_ms),
    }


def measure_query_latency(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(0)
    model = UniTriMModel(UniTriMConfig.from_preset(args.rerank_preset)).eval()
    config = model.config
    pool = RescoringPool(config, args.pool_size)
    text = random_text_features(config, args.queries + WARMUP_QUERIES, seed=11)
    queries = [
        {"features": text.take(slice(row, row + 1)),
         "coarse_vector": torch.nn.functional.normalize(text.sentence_embeds[row].float(), dim=-1)}
        for row in range(text.batch_size)
    ]
    faiss = faiss_module()
    results: dict[str, Any] = {"sizes": {}, "faiss_available": faiss is not None}
    if faiss is None and args.faiss_factories:
        results["faiss_note"] = f"FAISS backends skipped: {FAISS_INSTALL_HINT}"
        print(results["faiss_note"])
    for size in args.sizes:
        stored = unit_vectors((size, config.projection_dim), torch.Generator().manual_seed(size), torch.float16)
        video_embeds = stored.float()
        backends = [("exact", "exact", None)]
        if faiss is not None:
            backends += [(f"faiss {factory}", "faiss", factory) for factory in args.faiss_factories]
        exact_top = None
        per_size: dict[str, Any] = {}
        for label, backend, factory in backends:
            set_threads(args.build_threads)
            start = time.perf_counter()
            coarse = build_coarse_index(video_embeds, backend, factory or "Flat")
            build_seconds = time.perf_counter() - start
            if backend == "faiss" and "IVF" in factory:
                faiss.extract_index_ivf(coarse.index).nprobe = args.nprobe
                label = f"{label} nprobe={args.nprobe}"
            set_threads(1)
            if exact_top is None:
                exact_top = [coarse.search(query["coarse_vector"], args.candidates)[1] for query in queries]
            entry = measure_backend(coarse, model, queries, pool, args.candidates, exact_top)
            entry["build_seconds"] = build_seconds
            per_size[label] = entry
            del coarse
            gc.collect()
        results["sizes"][size] = per_size
        del stored, video_embeds
        gc.collect()
    return results


def measure_query_encoding(args: argparse.Namespace, repeats: int = 20) -> dict[str, Any]:
    """One caption (32 tokens, all 4 triplet phrases real) through `get_text_features` on one thread."""
    from inference_speed import text_inputs

    torch.manual_seed(0)
    model = UniTriMModel(UniTriMConfig.from_preset(args.rerank_preset)).eval()
    inputs = text_inputs(model.config, 1, 32)
    milliseconds = []
    set_threads(1)
    with torch.inference_mode():
        for index in range(repeats + WARMUP_QUERIES):
            start = time.perf_counter()
            model.get_text_features(**inputs)
            if index >= WARMUP_QUERIES:
                milliseconds.append(1e3 * (time.perf_counter() - start))
    return {"preset": args.rerank_preset, "triplets": "all max_triplets real (upper bound)"} | latency_summary(milliseconds)


# ---------------------------------------------------------------------------------------------- report


def print_report(results: dict[str, Any]) -> None:
    build = results["index_build"]
    if build:
        print(f"Index build: {build['items']} items ({build['videos']} videos x {build['frames_per_video']} frames, "
              f"{build['images']} images), {build['preset']} model, {build['seconds']:.2f} s = "
              f"{build['items_per_second']:.1f} items/s\n")
    encoding = results.get("query_encoding")
    if encoding:
        print(f"Query text encoding ({encoding['preset']}, 1 core, {encoding['triplets']}): "
              f"p50 {encoding['p50_ms']:.1f} ms, p95 {encoding['p95_ms']:.1f} ms (not included below)\n")
    latency = results["query_latency"]
    settings = results["settings"]
    print(f"Query latency, 1 core, {settings['candidates']} candidates rescored with {settings['rerank_preset']}, "
          f"{settings['queries']} queries (ms)")
    rows = []
    for size, backends in latency["sizes"].items():
        for label, entry in backends.items():
            rows.append([
                size, label, entry["build_seconds"], entry["coarse"]["p50_ms"], entry["coarse"]["p95_ms"],
                entry["rescoring"]["p50_ms"], entry["rescoring"]["p95_ms"], entry["total"]["p50_ms"],
                entry["total"]["p95_ms"], entry["coarse_recall"],
            ])
    print(markdown_table(["items", "coarse stage", "build s", "coarse p50", "coarse p95", "rescore p50", "rescore p95",
                          "total p50", "total p95", "coarse recall vs exact"], rows) + "\n")
    if latency.get("faiss_note"):
        print(latency["faiss_note"])
    for size, backends in latency["sizes"].items():
        if int(size) >= 1_000_000:
            for label, entry in backends.items():
                if label.startswith("faiss"):
                    verdict = "meets" if entry["total"]["p50_ms"] <= LATENCY_GOAL_MS else "misses"
                    print(f"{size} items, {label}: total p50 {entry['total']['p50_ms']:.1f} ms; {verdict} the goal "
                          f"<= {LATENCY_GOAL_MS:.0f} ms (recall of the exact coarse top-{settings['candidates']}: "
                          f"{entry['coarse_recall']:.3f})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000], help="items in the index")
    parser.add_argument("--faiss-factories", nargs="*", default=["Flat", "IVF256,Flat"], help="FAISS index types")
    parser.add_argument("--nprobe", type=int, default=8, help="IVF lists visited per query (default 8)")
    parser.add_argument("--candidates", type=int, default=100, help="candidates rescored with MGSA (default 100)")
    parser.add_argument("--queries", type=int, default=100, help="timed queries per backend (default 100)")
    parser.add_argument("--pool-size", type=int, default=4096, help="distinct full-feature items (default 4096)")
    parser.add_argument("--rerank-preset", default="unitrim", help="model that rescores (default unitrim, D=512)")
    parser.add_argument("--build-threads", type=int, default=None, help="threads for building coarse indexes (default all)")
    parser.add_argument("--build-preset", default="unitrim-tiny", help="model of the index build (default unitrim-tiny)")
    parser.add_argument("--build-videos", type=int, default=24, help="videos indexed in the build-rate test (0: skip)")
    parser.add_argument("--build-images", type=int, default=24, help="images indexed in the build-rate test")
    parser.add_argument("--build-frames", type=int, default=12, help="frames per video (default 12)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    for name in ("nprobe", "candidates", "queries", "pool_size", "build_frames"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.build_videos < 0 or args.build_images < 0:
        parser.error("--build-videos and --build-images must be >= 0")
    if any(size < args.candidates for size in args.sizes):
        parser.error(f"every --sizes value must be >= --candidates ({args.candidates}), got {args.sizes}")
    args.build_threads = args.build_threads or available_cores()
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    results: dict[str, Any] = {"benchmark": "search_latency", "machine": machine_info(1), "settings": {
        key: value for key, value in vars(args).items() if key != "json"}}
    set_threads(1)
    results["index_build"] = measure_index_build(args) if args.build_videos + args.build_images else None
    results["query_encoding"] = measure_query_encoding(args)
    results["query_latency"] = measure_query_latency(args)
    return report(results, print_report, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
