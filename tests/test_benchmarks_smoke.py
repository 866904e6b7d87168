"""Smoke test of benchmarks/parameter_counts.py and benchmarks/inference_speed.py on the tiny presets: each runs as
a script, writes its JSON, and the JSON holds every preset with consistent counts and positive timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TINY_PRESETS = ["unitrim-tiny", "xclip-tiny", "clip4clip-meanp-tiny"]


def run_script(name: str, *arguments: str) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *arguments], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, f"{name} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed


def test_parameter_counts_script(tmp_path: Path) -> None:
    output = tmp_path / "counts.json"
    completed = run_script("parameter_counts.py", "--presets", *TINY_PRESETS, "--json", str(output))
    counts = json.loads(output.read_text())["presets"]
    assert list(counts) == TINY_PRESETS
    for preset, entry in counts.items():
        assert entry["total"] == entry["clip"] + entry["new"] > 0
        assert entry["new"] >= entry["patch_selector"] + entry["temporal_encoder"] + entry["disentangler"]
        assert 0 < entry["trainable"] <= entry["total"]
        assert f"| {preset} |" in completed.stdout
    assert counts["clip4clip-meanp-tiny"]["new"] == 0
    assert counts["unitrim-tiny"]["clip"] == counts["xclip-tiny"]["clip"] == counts["clip4clip-meanp-tiny"]["clip"]
    assert counts["unitrim-tiny"]["total"] > counts["xclip-tiny"]["total"] > counts["clip4clip-meanp-tiny"]["total"]


def test_inference_speed_script(tmp_path: Path) -> None:
    output = tmp_path / "speed.json"
    completed = run_script(
        "inference_speed.py", "--presets", *TINY_PRESETS, "--repeats", "2", "--warmup", "1", "--threads", "1",
        "--frames", "3", "--batch-size", "2", "--num-captions", "5", "--gallery-size", "7", "--json", str(output),
    )
    results = json.loads(output.read_text())
    assert results["machine"]["torch_threads"] == 1
    assert results["settings"]["baseline_preset"] == "clip4clip-meanp-tiny"
    assert set(results["video_encoding"]) == {"clip-frames", *TINY_PRESETS}
    for section in ("video_encoding", "text_encoding", "scoring"):
        for preset in TINY_PRESETS:
            entry = results[section][preset]
            assert len(entry["repeat_seconds"]) == 2
            assert 0 < entry["min_seconds"] <= entry["median_seconds"]
            assert entry["ratio_to_baseline"] > 0 and entry["min_ratio_to_baseline"] > 0
        assert results[section]["clip4clip-meanp-tiny"]["ratio_to_baseline"] == 1.0
    for preset in TINY_PRESETS:
        assert results["video_encoding"][preset]["ratio_to_clip_frames"] > 0
    assert "unitrim-tiny video encoding / CLIP frame encoding" in completed.stdout


def test_inference_speed_rejects_bad_arguments() -> None:
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "inference_speed.py"), "--presets", "unitrim-tiny", "--repeats", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode != 0
    assert "--repeats must be >= 1" in completed.stderr


# ------------------------------------------------------------------ scoring_speed.py, search_latency.py, gpu.py


def test_scoring_speed_script_measures_extrapolates_and_breaks_down(tmp_path: Path) -> None:
    output = tmp_path / "scoring.json"
    completed = run_script(
        "scoring_speed.py", "--presets", *TINY_PRESETS, "--sizes", "12", "30", "--extrapolate",
        "--extrapolate-texts", "12", "--extrapolate-videos", "12", "--repeats", "2", "--warmup", "0",
        "--breakdown-size", "12", "--no-memory", "--threads", "1", "--json", str(output),
    )
    results = json.loads(output.read_text())
    rows = {(row["size"], row["preset"]): row for row in results["scoring"]}
    assert set(rows) == {(size, preset) for size in (12, 30) for preset in TINY_PRESETS}
    for preset in TINY_PRESETS:
        small, large = rows[(12, preset)], rows[(30, preset)]
        assert not small["extrapolated"] and small["scale"] == 1.0
        assert large["extrapolated"] and large["measured_texts"] == large["measured_videos"] == 12
        assert abs(large["median_seconds"] - small["median_seconds"] * 30 * 30 / 144) < 1e-12
        assert 0 < small["min_seconds"] <= small["median_seconds"]
        assert small["tile_plan"]["largest_tile_elements"] <= 2**22
        assert large["output_mib"] > small["output_mib"] > 0
    assert rows[(12, "xclip-tiny")]["ratio_to_xclip"] == 1.0
    assert rows[(12, "clip4clip-meanp-tiny")]["ratio_to_clip4clip"] == 1.0
    breakdown = results["breakdown"]
    assert set(breakdown["alignments"]) == {
        "sentence_video", "sentence_frame", "triplet_frame", "word_frame", "word_patch", "word_video"}
    unitrim_sum = breakdown["sum_per_preset"]["unitrim-tiny"]["median_seconds"]
    assert unitrim_sum == sum(breakdown["alignments"][name]["median_seconds"] for name in (
        "sentence_video", "sentence_frame", "triplet_frame", "word_frame", "word_patch"))
    for entry in breakdown["alignments"].values():  # each alignment next to the bare matmul of its tiles
        assert entry["bare_matmul"]["median_seconds"] > 0 and entry["ratio_to_matmul"] > 0
    assert "extrapolated x6 from 12x12" in completed.stdout
    assert "| word_patch | unitrim-tiny |" in completed.stdout


def test_scoring_memory_probe_reports_growth() -> None:
    completed = run_script("scoring_speed.py", "--memory-probe", "unitrim-tiny", "64", "64")
    probe = json.loads(completed.stdout.strip().splitlines()[-1])
    assert probe["peak_growth_mib"] > 0 and probe["rss_before_mib"] > 0
    assert probe["method"] in ("VmHWM after clear_refs", "ru_maxrss")


def test_random_features_have_realistic_masks() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from scoring_speed import random_text_features, random_visual_features
    finally:
        sys.path.remove(str(BENCHMARKS))
    from unitrim_hf import UniTriMConfig

    config = UniTriMConfig.from_preset("unitrim-tiny")
    text = random_text_features(config, 50)
    visual = random_visual_features(config, 5000)
    real_words = text.word_mask.sum(dim=1)
    assert not text.word_mask[:, 0].any() and real_words.min() >= 8 and real_words.max() <= 20
    assert 1 <= text.triplet_mask.sum(dim=1).min() and text.triplet_mask.sum(dim=1).max() <= 3
    assert text.word_embeds.shape == (50, 32, config.projection_dim)
    assert visual.patch_embeds.shape == (5000, 12, config.patch_top_k, config.projection_dim)
    assert visual.video_mask.all()
    for tensor in (text.word_embeds, visual.frame_embeds, visual.video_embeds, visual.patch_embeds[-1]):
        assert abs(tensor.norm(dim=-1) - 1).max() < 1e-5


def test_search_latency_script(tmp_path: Path) -> None:
    output = tmp_path / "search.json"
    completed = run_script(
        "search_latency.py", "--sizes", "300", "--queries", "4", "--rerank-preset", "unitrim-tiny",
        "--build-videos", "2", "--build-images", "2", "--build-frames", "4", "--clusters", "10", "--json", str(output),
    )
    results = json.loads(output.read_text())
    assert results["index_build"]["items"] == 4 and results["index_build"]["items_per_second"] > 0
    assert results["query_encoding"]["p50_ms"] > 0
    entry = results["store_scale"]["sizes"]["300"]
    assert entry["build"]["vector_index"] == "none (exact)" and entry["build"]["disk_bytes"] > 0
    [measured] = entry["settings"].values()
    assert measured["timed_queries"] == 4
    assert measured["recall_of_exact_top"] == 1.0  # a flat search is exact
    assert 0 < measured["total"]["p50_ms"] <= measured["total"]["p95_ms"]
    assert "| 300 |" in completed.stdout and "exact (flat)" in completed.stdout


@pytest.mark.slow  # three `unitrim index` commands, one of them starting Ray
def test_indexing_rate_script(tmp_path: Path) -> None:
    output = tmp_path / "rate.json"
    completed = run_script("indexing_rate.py", "--videos", "2", "--images", "3", "--frames", "4", "--json", str(output))
    engines = json.loads(output.read_text())["engines"]
    assert list(engines) == ["one", "accelerate", "ray"]
    for entry in engines.values():
        assert entry["files"] == 5 and 0 < entry["indexing_seconds"] < entry["wall_seconds"]
    assert "| --engine ray, 2 workers (local Ray) | 5 |" in completed.stdout


@pytest.mark.slow
def test_gpu_script_quick_runs_on_cpu(tmp_path: Path) -> None:
    output = tmp_path / "gpu.json"
    completed = run_script("gpu.py", "--device", "cpu", "--quick", "--repeats", "1", "--warmup", "0", "--json", str(output))
    results = json.loads(output.read_text())
    assert results["settings"]["presets"] == TINY_PRESETS
    for key in ("anchor", "anchor_end"):  # the bare-CLIP anchor, eager (compiled only with --compile or CUDA)
        assert set(results[key]["rows"]) == {"eager"} and results[key]["rows"]["eager"]["median_seconds"] > 0
    for section in ("video_encoding", "scoring", "training"):
        assert all(row["x_anchor"] > 0 for row in results[section]["rows"].values())
    assert results["search"]["total"]["p50_x_anchor"] > 0
    assert {"unitrim-tiny eager", "xclip-tiny eager"} <= set(results["scoring"]["rows"])
    assert set(results["video_encoding"]["rows"]) == {"clip-frames", *TINY_PRESETS}
    assert results["video_encoding"]["rows"]["clip-frames"]["ratio_to_reference"] == 1.0
    assert {"unitrim-tiny", "xclip-tiny", "alone: word_patch"} <= set(results["scoring"]["rows"])
    assert results["search"]["total"]["p50_ms"] > 0
    assert set(results["training"]["rows"]) == {"unitrim-tiny", "xclip-tiny"}
    assert len(results["goals"]) == 3
    assert "4. Training step" in completed.stdout and "0. Bare-CLIP anchor" in completed.stdout


def test_gpu_script_explains_missing_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        return
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu.py")], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode != 0
    assert "CUDA is not available" in completed.stderr and "Traceback" not in completed.stderr


@pytest.mark.slow
def test_import_time_script(tmp_path: Path) -> None:
    output = tmp_path / "import.json"
    completed = run_script("import_time.py", "--repeats", "1", "--warmup", "0", "--json", str(output))
    results = json.loads(output.read_text())
    assert set(results["rows"]) == {
        "python -c pass", "import unitrim_hf", "from transformers import PreTrainedModel",
        "from unitrim_hf import UniTriMModel", "unitrim --help", "unitrim-train --help",
    }
    assert all(row["median_seconds"] > 0 for row in results["rows"].values())
    assert results["rows"]["from transformers import PreTrainedModel"]["ratio_to_pretrained_model_import"] == 1.0
    assert set(results["goals"]) == {
        "import_no_slower_than_pretrained_model", "unitrim_help_under_2s", "unitrim_train_help_under_2s"}
    assert "| import unitrim_hf |" in completed.stdout


def test_scoring_speed_compares_eager_and_compiled_tiles(tmp_path: Path) -> None:
    output = tmp_path / "compile.json"
    completed = run_script(
        "scoring_speed.py", "--presets", "clip4clip-meanp-tiny", "--sizes", "8", "--breakdown-size", "0",
        "--compare-compile", "8", "--no-memory", "--repeats", "1", "--threads", "1", "--json", str(output),
    )
    row = json.loads(output.read_text())["compile"]["rows"]["clip4clip-meanp-tiny"]
    assert row["eager"]["median_seconds"] > 0 and row["compiled"]["median_seconds"] > 0
    assert row["compiled_over_eager"] > 0
    assert "Eager vs torch.compile'd tiles" in completed.stdout
