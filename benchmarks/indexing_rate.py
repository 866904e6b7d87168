"""Files per second of the whole `unitrim index` command over a generated collection: one process on one core,
two processes under `accelerate launch`, and two Ray workers (`--engine ray` on a local Ray instance).

The collection: `--videos` mp4 clips (`--frames` frames of 64x64 moving noise at 6 fps) and `--images` 64x48 PNG
images (default 500 + 500), written once. Each engine builds a fresh index of it with a freshly initialized
`--preset` model (default the tiny one: the library's cost per file, not CLIP's) saved to a folder. Every process
gets one torch thread (`OMP_NUM_THREADS=1`); the one-process run is pinned to one core (`taskset -c 0`, where
available). Reported per engine: the command's wall seconds (model loading, the Ray start-up included), the
indexing seconds the command prints (scan, decoding, encoding, fragment writes, the commit), and files/s of both.

    python benchmarks/indexing_rate.py [--videos 500] [--images 500] [--engines one accelerate ray] [--json rate.json]
    python benchmarks/indexing_rate.py --videos 6 --images 6 --engines one ray     # smoke run
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _timing import machine_info, markdown_table, report

ENGINES = ("one", "accelerate", "ray")
# "indexed 1000 new or changed files in 12.3 s (81.2 files/s)..." printed by `unitrim index`.
SUMMARY = re.compile(r"indexed (\d+) new or changed files in ([0-9.]+) s")


def write_collection(folder: Path, num_videos: int, num_images: int, num_frames: int) -> None:
    """`num_videos` mp4 clips of 64x64 moving noise and `num_images` 64x48 PNG images, seeded."""
    from PIL import Image

    from unitrim_hf.media.video_writer import write_video

    rng = np.random.default_rng(0)
    for index in range(num_videos):
        base = rng.integers(0, 255, (64, 64, 3))
        frames = [(base + 9 * step) % 255 for step in range(num_frames)]
        write_video(folder / f"clip_{index:05d}.mp4", np.stack(frames).astype(np.uint8), fps=6)
    for index in range(num_images):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / f"image_{index:05d}.png")


def save_model(folder: Path, preset: str, num_frames: int) -> None:
    import torch

    from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor

    torch.manual_seed(0)
    config = UniTriMConfig.from_preset(preset, max_frames=num_frames)
    UniTriMModel(config).save_pretrained(folder)
    UniTriMProcessor.for_model_config(config, frame_sampler_config={"num_frames": num_frames}).save_pretrained(folder)


def engine_command(engine: str, folder: Path, model: Path, index: Path, batch_size: int, port: int) -> list[str]:
    """The command line of one engine's `unitrim index` run."""
    arguments = ["index", str(folder), "--model", str(model), "--index", str(index), "--no-progress",
                 "--batch-size", str(batch_size)]
    if engine == "one":
        pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
        return pin + [sys.executable, "-m", "unitrim_hf.search.cli", *arguments]
    if engine == "accelerate":
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
                str(port), "-m", "unitrim_hf.search.cli", *arguments]
    return [sys.executable, "-m", "unitrim_hf.search.cli", *arguments, "--engine", "ray", "--workers", "2"]


def run_engine(engine: str, folder: Path, model: Path, root: Path, batch_size: int, expected: int) -> dict[str, Any]:
    index = root / f"index_{engine}"
    command = engine_command(engine, folder, model, index, batch_size, 29500 + os.getpid() % 1000)
    environment = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "true",
                                "LANCE_CPU_THREADS": "1", "RAY_DEDUP_LOGS": "0"}
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=root)
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(f"{engine}: unitrim index failed:\n{completed.stdout[-2000:]}\n{completed.stderr[-4000:]}")
    found = SUMMARY.search(completed.stdout)
    if found is None or int(found.group(1)) != expected:
        raise RuntimeError(f"{engine}: expected {expected} files indexed, the command printed:\n{completed.stdout}")
    seconds = float(found.group(2))
    shutil.rmtree(index, ignore_errors=True)
    return {"command": command, "files": expected, "wall_seconds": wall, "indexing_seconds": seconds,
            "files_per_second_wall": expected / wall, "files_per_second_indexing": expected / seconds}


def print_report(results: dict[str, Any]) -> None:
    settings = results["settings"]
    print(f"unitrim index over {settings['videos']} videos ({settings['frames']} frames of 64x64) + "
          f"{settings['images']} images, {settings['preset']} model, batch size {settings['batch_size']}, one torch "
          "thread per process\n")
    labels = {"one": "1 process, 1 core", "accelerate": "accelerate launch, 2 processes",
              "ray": "--engine ray, 2 workers (local Ray)"}
    rows = [[labels[name], entry["files"], entry["wall_seconds"], entry["files_per_second_wall"],
             entry["indexing_seconds"], entry["files_per_second_indexing"]]
            for name, entry in results["engines"].items()]
    print(markdown_table(["engine", "files", "command s", "files/s (command)", "indexing s", "files/s (indexing)"],
                         rows))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=500, help="videos in the collection (default 500)")
    parser.add_argument("--images", type=int, default=500, help="images in the collection (default 500)")
    parser.add_argument("--frames", type=int, default=12, help="frames per video, and sampled (default 12)")
    parser.add_argument("--preset", default="unitrim-tiny", help="model preset (default unitrim-tiny)")
    parser.add_argument("--batch-size", type=int, default=8, help="items per forward pass (default 8)")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES), help="engines to time")
    parser.add_argument("--work-dir", default=None, help="folder for the collection and indexes (default temporary)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.videos < 0 or args.images < 0 or args.videos + args.images < 1:
        parser.error("--videos and --images must be >= 0, and at least one file in all")
    if args.frames < 1 or args.batch_size < 1:
        parser.error("--frames and --batch-size must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    root = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="indexing_rate_"))
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"benchmark": "indexing_rate", "machine": machine_info(1), "engines": {},
                               "settings": {key: value for key, value in vars(args).items() if key != "json"}}
    try:
        folder, model = root / "collection", root / "model"
        folder.mkdir(exist_ok=True)
        write_collection(folder, args.videos, args.images, args.frames)
        save_model(model, args.preset, args.frames)
        for engine in args.engines:
            results["engines"][engine] = run_engine(engine, folder, model, root, args.batch_size,
                                                    args.videos + args.images)
            print(f"  {engine} measured", file=sys.stderr, flush=True)
    finally:
        if not args.work_dir:
            shutil.rmtree(root, ignore_errors=True)
    return report(results, print_report, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
