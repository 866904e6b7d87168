"""benchmarks/temporal_order_probe.py: order accuracy, the partners of a temporal-order benchmark, and a run of the
script on a saved model over a folder with a missing and a corrupt video."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor
from unitrim_hf.data.synthetic_writer import write_synthetic_benchmark

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from temporal_order_probe import order_accuracy, partner_positions, top1_recall  # noqa: E402


def test_order_accuracy_counts_own_over_partner_and_ties_half() -> None:
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.5, 0.5, 0.0], [0.2, 0.8, 0.9]])
    targets, partners = torch.tensor([0, 1, 2]), torch.tensor([1, 0, 1])
    assert order_accuracy(scores, targets, partners) == pytest.approx(100 * (1 + 0.5 + 1) / 3)
    # R@1 counts ties against the query: the tied second query is not a hit.
    assert top1_recall(scores, targets) == pytest.approx(200 / 3)


def test_partners_are_the_reversed_scenes_and_missing_ones_are_none(tmp_path: Path) -> None:
    root = write_synthetic_benchmark(tmp_path / "order", num_train=2, num_test=5, scenes="temporal_order")
    ids = ["video2", "video3", "video4", "video6"]  # video5 unreadable, video6 has no partner generated
    assert partner_positions(root, ids) == [1, 0, None, None]
    mixed = write_synthetic_benchmark(tmp_path / "mixed", num_train=2, num_test=2)
    with pytest.raises(ValueError, match="scenes='mixed'; this probe needs a temporal_order benchmark"):
        partner_positions(mixed, ids)


def test_script_probes_a_saved_model_on_a_folder_with_missing_and_corrupt_videos(tmp_path: Path) -> None:
    data_dir = write_synthetic_benchmark(tmp_path / "data", num_train=2, num_test=8, seed=1, scenes="temporal_order")
    (data_dir / "videos" / "all" / "video2.mp4").unlink()  # out of the split: its partner video3 stays, unpaired
    (data_dir / "videos" / "all" / "video5.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video")
    config = UniTriMConfig.from_preset("unitrim-tiny")
    UniTriMModel(config).save_pretrained(tmp_path / "model")
    UniTriMProcessor.for_model_config(config).save_pretrained(tmp_path / "model")
    output = tmp_path / "probe.json"
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "temporal_order_probe.py"), "--model", str(tmp_path / "model"),
         "--data_dir", str(data_dir), "--json", str(output)],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    (run,) = json.loads(output.read_text())["runs"]
    results = run["results"]
    assert results["num_queries"] == 6 and results["num_paired"] == 4  # video3 and video4 lost their partners
    assert set(results["order_accuracy"]) == {"logits", *config.alignments}
    assert all(0.0 <= value <= 100.0 for value in results["order_accuracy"].values())
    assert set(results["reweighted_R1"]) == {"0.4", "0.6", "0.8", "1.0"}
    assert set(results["order_accuracy_by_event"]) <= {"motion", "size", "visibility"}
    assert "| model | 1 |" in completed.stdout and "re-scored" in completed.stdout
