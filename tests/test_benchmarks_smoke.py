"""Smoke test of benchmarks/parameter_counts.py and benchmarks/inference_speed.py on the tiny presets: each runs as
a script, writes its JSON, and the JSON holds every preset with consistent counts and positive timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TINY_PRESETS = ["unitrim-tiny", "xclip-tiny", "clip4clip-meanp-tiny"]


def run_script(name: str, *arguments: str) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *arguments], capture_output=True, text=True, timeout=120
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
