"""Smoke test of benchmarks/triplet_parser_speed.py and benchmarks/keyframe_choice.py: each runs as a script and
writes consistent JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *arguments: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *arguments], capture_output=True, text=True, timeout=180
    )
    assert completed.returncode == 0, f"{name} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed.stdout


def test_triplet_parser_speed_script(tmp_path: Path) -> None:
    output = tmp_path / "speed.json"
    stdout = run_script("triplet_parser_speed.py", "--passes", "1", "--repeats", "1", "--json", str(output))
    result = json.loads(output.read_text())
    assert result["captions_per_second_median"] > 0
    for name in ("dev", "holdout", "shapes_holdout"):
        assert 0.0 <= result[name]["f1"] <= 1.0 and f"{name} P / R / F1" in stdout


def test_keyframe_choice_script(tmp_path: Path) -> None:
    output = tmp_path / "choice.json"
    stdout = run_script("keyframe_choice.py", "--num-clips", "3", "--frames", "4", "--features", "pixels",
                        "--json", str(output))
    result = json.loads(output.read_text())["pixels"]
    assert result["clips"] == 3 and sum(result["self_attention_frame_counts"].values()) == 3
    assert 0.0 <= result["self_attention_equals_middle"] <= 1.0 and "| pixels | 3 |" in stdout
