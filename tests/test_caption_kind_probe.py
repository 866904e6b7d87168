"""benchmarks/text_image_by_caption_kind.py: its ceilings, and a run of the script on a saved model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor
from unitrim_hf.data.synthetic_writer import write_synthetic_benchmark

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from text_image_by_caption_kind import oracle_ceilings  # noqa: E402


def test_ceiling_is_the_mean_chance_of_picking_the_right_one_among_equals() -> None:
    # Two queries share their names (each found first half of the time), one is unique.
    assert oracle_ceilings([("red circle",), ("red circle",), ("blue square",)]) == pytest.approx(200 / 3)
    assert oracle_ceilings([("a",), ("b",)]) == 100.0


@pytest.mark.parametrize(
    "faulty", [pytest.param(False, marks=pytest.mark.slow), True], ids=["intact", "missing-and-corrupt-videos"]
)
def test_script_probes_a_saved_model_with_each_caption_kind(tmp_path: Path, faulty: bool) -> None:
    data_dir = write_synthetic_benchmark(tmp_path / "data", num_train=2, num_test=8 if faulty else 6, seed=1)
    if faulty:  # one test video missing (out of the split), one corrupt (left out of the evaluation): 6 remain
        (data_dir / "videos" / "all" / "video2.mp4").unlink()
        (data_dir / "videos" / "all" / "video3.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video")
    config = UniTriMConfig.from_preset("unitrim-tiny")
    UniTriMModel(config).save_pretrained(tmp_path / "model")
    UniTriMProcessor.for_model_config(config).save_pretrained(tmp_path / "model")
    output = tmp_path / "probe.json"
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "text_image_by_caption_kind.py"), "--model", str(tmp_path / "model"),
         "--data_dir", str(data_dir), "--json", str(output)],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(output.read_text())
    (run,) = result["runs"]
    for kind in ("combined", "spatial"):
        assert run["results"][kind]["num_queries"] == 6
        assert 0.0 <= run["results"][kind]["R1"] <= run["results"][kind]["R5"] <= 100.0
    assert 100 / 6 <= result["ceilings"]["colour+shape"] <= result["ceilings"]["objects as named"] <= 100.0
    assert "| model | 1 |" in completed.stdout and "Ceilings" in completed.stdout


def test_script_refuses_a_folder_that_is_not_a_synthetic_benchmark(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "text_image_by_caption_kind.py"), "--model", str(tmp_path),
         "--data_dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 2 and "synthetic_trim.json not found" in completed.stderr


def test_runs_of_several_folders_are_labelled_by_folder(tmp_path: Path) -> None:
    from _trained_runs import finished_runs

    for folder in ("from-clip", "from-random"):
        run = tmp_path / folder / "unitrim-seed1"
        (run / "final_model").mkdir(parents=True)
        (run / "comparison_run.json").write_text(json.dumps({"variant": "unitrim", "seed": 1, "argv": []}))
    labels = sorted(label for label, *_ in finished_runs([tmp_path / "from-clip", tmp_path / "from-random"]))
    assert labels == ["unitrim (from-clip)", "unitrim (from-random)"]
    assert [label for label, *_ in finished_runs([tmp_path / "from-clip"])] == ["unitrim"]
