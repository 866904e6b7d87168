"""Index build rate and two-stage query latency (p50/p95) on the Lance index store over 10k-1M items, with the
recall of the exact top-100.

1. **Index build rate**: `--build-videos` small mp4 clips (`--build-frames` frames of 64x64 at 6 fps, written with
   `unitrim_hf.media.video_writer.write_video`) and `--build-images` PNG images are indexed with
   `unitrim_hf.search.index_folder` (decoding, frame sampling, CLIP transform, encoding, Lance commits) by a freshly
   initialized `--build-preset` model (default the tiny one: this is the library overhead, not CLIP's cost).
   Reported: items per second of the whole run.
2. **Store scale** for each `--sizes` N: an index (`unitrim_hf.search.IndexStore`, as `unitrim index` writes it)
   of N rows built through `IndexStore.upsert` (merge_insert commits of `--commit-rows` rows). Coarse vectors
   are clustered, as real embeddings are (uniform random vectors are the worst case for any ANN index):
   `--clusters` random unit centres, each item a centre plus Gaussian noise (`--noise` per dimension, relative
   to 1/sqrt(D)), normalized. Every row holds full rescoring features of `--stored-frames` frames and
   `--stored-patches` patches (fp16, D of `--rerank-preset`; the default 4 x 2 keeps 1M rows near 15 GB on disk,
   where 12 x 6 would take 87 GB). Tables of `VECTOR_INDEX_MIN_ROWS` rows or more get the IVF-PQ index that
   `unitrim index` builds (sqrt(N) partitions, D/8 sub-vectors); smaller ones are searched exactly.
   Reported: rows-written seconds, vector-index seconds, disk size.
3. **Query latency** on one core (`torch.set_num_threads(1)`, `LANCE_CPU_THREADS=1` unless set): each query is
   a random caption feature (8-20 real words, 1-3 triplets) whose sentence vector is a cluster centre plus noise;
   `Searcher.search` runs the coarse stage (`--nprobes` values, refine factor `--refine-factor`) and rescores the
   `--candidates` rows it returns (read with their checksums verified) with `model.similarity` of the
   `--rerank-preset` model. Text encoding is timed separately. Reported: p50/p95 of coarse and total
   milliseconds over `--queries` queries (after 3 warm-up queries) and the recall of the exact top-`--candidates`
   (an exhaustive matrix product over all N vectors) among the coarse candidates.

    python benchmarks/search_latency.py [--sizes 10000 100000 1000000] [--nprobes 24 48] [--queries 100]
        [--json search.json]
    python benchmarks/search_latency.py --sizes 2000 --queries 5 --rerank-preset unitrim-tiny --build-videos 2 \
        --build-images 2        # smoke run
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LANCE_CPU_THREADS", "1")

import numpy as np
import torch
from _timing import machine_info, markdown_table, report
from scoring_speed import random_text_features, random_visual_features, unit_vectors

from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor
from unitrim_hf.modeling.modeling_outputs import UniTriMVisualFeatures
from unitrim_hf.search import IndexStore, Searcher, index_folder
from unitrim_hf.search.index_rows import FeatureLayout, StoredFeatures
from unitrim_hf.search.index_table import DEFAULT_REFINE_FACTOR, VECTOR_INDEX_MIN_ROWS
from unitrim_hf.search.model_fingerprint import model_fingerprint
from unitrim_hf.search.query import EncodedQuery
from unitrim_hf.search.indexer import processor_settings
from unitrim_hf.media.video_writer import write_video

WARMUP_QUERIES = 3
LATENCY_GOAL_MS = 50.0
RECALL_GOAL = 0.95


def set_threads(count: int) -> None:
    torch.set_num_threads(count)


def percentile(values: list[float], fraction: float) -> float:
    return float(np.percentile(np.asarray(values), 100 * fraction))


def latency_summary(milliseconds: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(milliseconds, 0.50), "p95_ms": percentile(milliseconds, 0.95),
            "mean_ms": statistics.fmean(milliseconds), "min_ms": min(milliseconds)}


class ExactCoarseIndex:
    """Inner products of a query with every stored vector (N, D), then the top `count`: the exact reference."""

    def __init__(self, video_embeds: torch.Tensor) -> None:
        self.video_embeds = video_embeds.float()

    def search(self, query: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.video_embeds @ query.float().to(self.video_embeds.device)
        top = torch.topk(scores, min(count, len(scores)))
        return top.values, top.indices


class RescoringPool:
    """Full MGSA features of `pool_size` random items, stored fp16; item i is served by row i mod pool_size."""

    def __init__(self, config, pool_size: int, seed: int = 7) -> None:
        self.features = random_visual_features(config, pool_size, seed=seed, dtype=torch.float16)
        self.pool_size = pool_size

    def visual_features(self, item_positions: torch.Tensor) -> UniTriMVisualFeatures:
        """float32 features of the items (as `Searcher.visual_features` turns stored fp16 into model features)."""
        stored = self.features.take(item_positions % self.pool_size)
        return UniTriMVisualFeatures(
            pooler_output=stored.video_embeds.float(), frame_embeds=stored.frame_embeds.float(),
            video_mask=stored.video_mask, patch_embeds=None if stored.patch_embeds is None else stored.patch_embeds.float(),
        )


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


def measure_query_encoding(args: argparse.Namespace, repeats: int = 20) -> dict[str, Any]:
    """One caption (32 tokens, all 4 triplet phrases real) through `get_text_features` on one thread."""
    from inference_speed import text_inputs

    torch.manual_seed(0)
    model = UniTriMModel(UniTriMConfig.from_preset(args.rerank_preset, max_frames=args.stored_frames)).eval()
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


# ---------------------------------------------------------------------------------------------- store scale


def clustered_vectors(count: int, centres: torch.Tensor, noise: float, seed: int) -> torch.Tensor:
    """(count, D) unit vectors: random centres plus Gaussian noise of `noise / sqrt(D)` per dimension."""
    generator = torch.Generator().manual_seed(seed)
    dim = centres.shape[1]
    picks = torch.randint(0, len(centres), (count,), generator=generator)
    vectors = centres[picks] + noise / dim**0.5 * torch.randn(count, dim, generator=generator)
    return torch.nn.functional.normalize(vectors, dim=-1)


def build_store(location: Path, args, model, centres: torch.Tensor, size: int) -> tuple[IndexStore, torch.Tensor, dict]:
    """An index of `size` rows (clustered vectors, random rescoring features); returns it, the fp16-rounded
    vectors (size, D) and the build timings."""
    config = model.config
    layout = FeatureLayout(num_frames=args.stored_frames, top_k=args.stored_patches, embed_dim=config.projection_dim)
    processor = UniTriMProcessor.for_model_config(config)
    reuse = args.reuse_indexes and IndexStore.exists(location)
    store = IndexStore.create(location, model_fingerprint(model), layout, processor_settings(processor))
    if reuse and len(store) != size:
        raise RuntimeError(f"--reuse-indexes: {location} holds {len(store)} rows, not {size}")
    vectors = torch.empty(size, config.projection_dim, dtype=torch.float16)
    rows_seconds = None if reuse else 0.0
    for start in range(0, size, args.commit_rows):
        count = min(args.commit_rows, size - start)
        chunk = clustered_vectors(count, centres, args.noise, seed=size + start).to(torch.float16)
        vectors[start : start + count] = chunk
        if reuse:  # the same seeds wrote these rows: only the vectors are needed for the exact reference
            continue
        visual = random_visual_features(config, count, seed=start, dtype=torch.float16, num_frames=args.stored_frames)
        features = StoredFeatures(
            chunk, visual.frame_embeds, visual.video_mask.to(torch.uint8), torch.zeros(count, args.stored_frames),
            visual.patch_embeds[:, :, : args.stored_patches] if args.stored_patches else None,
            torch.zeros(count, args.stored_frames, args.stored_patches, dtype=torch.long) if args.stored_patches else None,
        )
        entries = [{"path": f"/collection/video_{start + i:08d}.mp4", "kind": "video", "size": 1, "mtime_ns": 1,
                    "num_frames": args.stored_frames} for i in range(count)]
        begin = time.perf_counter()
        store.upsert(entries, features)
        rows_seconds += time.perf_counter() - begin
        del visual, features
    begin = time.perf_counter()
    options = {name: value for name, value in (("num_partitions", args.ivf_partitions),
                                               ("sample_rate", args.ivf_sample_rate)) if value}
    indexed = store.ensure_vector_index(**options)
    index_seconds = time.perf_counter() - begin
    disk = sum(path.stat().st_size for path in location.rglob("*") if path.is_file())
    return store, vectors, {"rows_seconds": rows_seconds, "vector_index": "IVF-PQ" if indexed else "none (exact)",
                            "vector_index_seconds": index_seconds, "disk_bytes": disk,
                            "bytes_per_row": disk / size}


def make_queries(model, centres: torch.Tensor, count: int, noise: float) -> list[EncodedQuery]:
    """Random caption features whose sentence vector lies near a cluster centre (as a matching caption would)."""
    text = random_text_features(model.config, count, seed=11)
    text.pooler_output = clustered_vectors(count, centres, noise, seed=12345)
    return [EncodedQuery("query", text.take(slice(row, row + 1)), torch.zeros(1, dtype=torch.long), [])
            for row in range(count)]


def measure_size(args, model, centres: torch.Tensor, queries: list[EncodedQuery], size: int, root: Path) -> dict:
    set_threads(args.build_threads)
    location = root / f"index_{size}"
    store, vectors, build = build_store(location, args, model, centres, size)
    del store
    set_threads(1)
    exact = ExactCoarseIndex(vectors)
    exact_top = [set(exact.search(query.coarse_vector("video"), args.candidates)[1].tolist()) for query in queries]
    del exact, vectors
    processor = UniTriMProcessor.for_model_config(model.config)
    entry: dict[str, Any] = {"build": build, "settings": {}}
    for nprobes in (args.nprobes if build["vector_index"] != "none (exact)" else [None]):
        searcher = Searcher(location, model, processor, nprobes=nprobes or 1, refine_factor=args.refine_factor)
        coarse_ms, total_ms, recalls = [], [], []
        for index, query in enumerate(queries):
            start = time.perf_counter()
            candidates = searcher.coarse_candidates(query, args.candidates, "video")
            middle = time.perf_counter()
            searcher.search(query, top_k=10, kind="video", num_candidates=args.candidates, explain=False)
            end = time.perf_counter()
            if index < WARMUP_QUERIES:
                continue
            coarse_ms.append(1e3 * (middle - start))
            total_ms.append(1e3 * (end - middle))
            found = {int(item.path[-12:-4]) for item in candidates.items}
            recalls.append(len(found & exact_top[index]) / len(exact_top[index]))
        label = "exact (flat)" if nprobes is None else f"IVF-PQ nprobes={nprobes} refine={args.refine_factor}"
        entry["settings"][label] = {
            "coarse": latency_summary(coarse_ms), "total": latency_summary(total_ms),
            "recall_of_exact_top": statistics.fmean(recalls), "timed_queries": len(total_ms),
        }
        del searcher
        gc.collect()
    if not args.keep_indexes:
        shutil.rmtree(location, ignore_errors=True)
    return entry


def measure_store_scale(args) -> dict[str, Any]:
    torch.manual_seed(0)
    model = UniTriMModel(UniTriMConfig.from_preset(args.rerank_preset, max_frames=args.stored_frames)).eval()
    centres = unit_vectors((args.clusters, model.config.projection_dim), torch.Generator().manual_seed(3))
    queries = make_queries(model, centres, args.queries + WARMUP_QUERIES, args.noise)
    results: dict[str, Any] = {"sizes": {}}
    root = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="search_latency_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        for size in args.sizes:
            results["sizes"][size] = measure_size(args, model, centres, queries, size, root)
            print(f"  {size} items measured", file=sys.stderr, flush=True)
    finally:
        if not args.keep_indexes and not args.work_dir:
            shutil.rmtree(root, ignore_errors=True)
    return results


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
    settings = results["settings"]
    print(f"Store scale and query latency, 1 core, {settings['candidates']} candidates rescored with "
          f"{settings['rerank_preset']} (rows of {settings['stored_frames']} frames x {settings['stored_patches']} "
          f"patches), {settings['queries']} queries (ms)")
    rows = []
    for size, entry in results["store_scale"]["sizes"].items():
        build = entry["build"]
        for label, measured in entry["settings"].items():
            rows.append([
                size, build["rows_seconds"], build["vector_index_seconds"], build["disk_bytes"] / 2**30, label,
                measured["coarse"]["p50_ms"], measured["coarse"]["p95_ms"], measured["total"]["p50_ms"],
                measured["total"]["p95_ms"], measured["recall_of_exact_top"],
            ])
    print(markdown_table(["items", "rows written s", "vector index s", "disk GiB", "coarse stage", "coarse p50",
                          "coarse p95", "search p50", "search p95", f"recall of exact top-{settings['candidates']}"],
                         rows) + "\n")
    for size, entry in results["store_scale"]["sizes"].items():
        if int(size) >= 1_000_000:
            for label, measured in entry["settings"].items():
                p50, recall = measured["total"]["p50_ms"], measured["recall_of_exact_top"]
                verdict = "meets" if p50 <= LATENCY_GOAL_MS and recall >= RECALL_GOAL else "misses"
                print(f"{size} items, {label}: search p50 {p50:.1f} ms, recall {recall:.3f}; {verdict} the goal "
                      f"(<= {LATENCY_GOAL_MS:.0f} ms, recall >= {RECALL_GOAL})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000], help="items in the index")
    parser.add_argument("--nprobes", nargs="+", type=int, default=[24, 48], help="IVF partitions visited (default 24 48)")
    parser.add_argument("--refine-factor", type=int, default=DEFAULT_REFINE_FACTOR, help="exact re-ranking factor")
    parser.add_argument("--candidates", type=int, default=100, help="candidates rescored with MGSA (default 100)")
    parser.add_argument("--queries", type=int, default=100, help="timed queries per setting (default 100)")
    parser.add_argument("--clusters", type=int, default=1000, help="cluster centres of the vectors (default 1000)")
    parser.add_argument("--noise", type=float, default=1.0, help="noise around a centre, relative to 1/sqrt(D)")
    parser.add_argument("--stored-frames", type=int, default=4, help="frames per stored row (default 4)")
    parser.add_argument("--stored-patches", type=int, default=2, help="patches per stored frame (default 2)")
    parser.add_argument("--commit-rows", type=int, default=20_000, help="rows per merge_insert commit")
    parser.add_argument("--rerank-preset", default="unitrim", help="model that rescores (default unitrim, D=512)")
    parser.add_argument("--build-threads", type=int, default=None, help="torch threads while building (default all)")
    parser.add_argument("--build-preset", default="unitrim-tiny", help="model of the index build (default unitrim-tiny)")
    parser.add_argument("--build-videos", type=int, default=24, help="videos indexed in the build-rate test (0: skip)")
    parser.add_argument("--build-images", type=int, default=24, help="images indexed in the build-rate test")
    parser.add_argument("--build-frames", type=int, default=12, help="frames per video (default 12)")
    parser.add_argument("--ivf-partitions", type=int, default=None, help="IVF partitions (default sqrt(N), as indexed)")
    parser.add_argument("--ivf-sample-rate", type=int, default=None, help="k-means training rows per partition")
    parser.add_argument("--reuse-indexes", action="store_true", help="reuse the rows of indexes left in --work-dir")
    parser.add_argument("--work-dir", default=None, help="folder for the indexes (default a temporary folder)")
    parser.add_argument("--keep-indexes", action="store_true", help="keep the built indexes")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    for name in ("refine_factor", "candidates", "queries", "clusters", "stored_frames", "build_frames", "commit_rows"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.build_videos < 0 or args.build_images < 0 or args.stored_patches < 0:
        parser.error("--build-videos, --build-images and --stored-patches must be >= 0")
    if any(size < args.candidates for size in args.sizes) or any(n < 1 for n in args.nprobes):
        parser.error(f"every --sizes value must be >= --candidates ({args.candidates}) and --nprobes >= 1")
    args.build_threads = args.build_threads or (os.cpu_count() or 1)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    results: dict[str, Any] = {"benchmark": "search_latency", "machine": machine_info(1), "settings": {
        key: value for key, value in vars(args).items() if key != "json"} | {
        "lance_cpu_threads": os.environ.get("LANCE_CPU_THREADS"), "vector_index_min_rows": VECTOR_INDEX_MIN_ROWS}}
    set_threads(1)
    results["index_build"] = measure_index_build(args) if args.build_videos + args.build_images else None
    results["query_encoding"] = measure_query_encoding(args)
    results["store_scale"] = measure_store_scale(args)
    return report(results, print_report, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
