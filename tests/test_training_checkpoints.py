"""Checkpoints hold only safetensors and JSON, never run planted code, and damaged ones are skipped on resume."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
from pathlib import Path

import pytest

from unitrim_hf.training import cli
from unitrim_hf.training.checkpointing import (
    STATE_FILE_NAME,
    CheckpointError,
    complete_checkpoints,
    verify_checkpoint,
)

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

# 16 videos, batch 4: 4 optimizer steps per epoch; 6 steps with a checkpoint every 2.
FAST_RUN = [
    "--preset", "clip4clip-meanp-tiny", "--synthetic_num_train", "16", "--synthetic_num_test", "8",
    "--num_frames", "2", "--max_length", "16", "--per_device_train_batch_size", "4", "--report_to", "none",
    "--do_eval", "false", "--debug_dump_parameters", "--max_steps", "6", "--save_steps", "2",
]
# What accelerate's save_state writes (and its load_state unpickles): a checkpoint must never load any of them.
ACCELERATE_PICKLES = ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "scheduler.bin", "pytorch_model.bin")


def _run(output_dir: Path, data_dir: Path, *extra: str):
    return cli.run(["--output_dir", str(output_dir), "--data_dir", str(data_dir), *FAST_RUN, *extra])


def _parameters(output_dir: Path) -> str:
    return json.loads((output_dir / "debug" / "rank0.json").read_text())["parameter_sha256"]


class CreatesMarkerWhenUnpickled:
    """Unpickling this opens (creates) the marker file: the proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _reset_accelerate() -> None:
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, str, Path]:
    """(data folder, final parameters of the uninterrupted 6-step run, a run stopped at step 4 with checkpoints at
    steps 2 and 4). Tests resume copies of the stopped run."""
    root = tmp_path_factory.mktemp("runs")
    _run(root / "uninterrupted", root / "data")
    _reset_accelerate()
    assert _run(root / "stopped", root / "data", "--stop_after_steps", "4").global_step == 4
    _reset_accelerate()
    assert [folder.name for folder in complete_checkpoints(root / "stopped")] == ["checkpoint-000002", "checkpoint-000004"]
    return root / "data", _parameters(root / "uninterrupted"), root / "stopped"


def _copy_of_stopped_run(runs, tmp_path: Path) -> Path:
    output_dir = tmp_path / "stopped"
    shutil.copytree(runs[2], output_dir)
    return output_dir


def test_a_checkpoint_is_safetensors_and_json_with_every_file_listed(runs) -> None:
    folder = complete_checkpoints(runs[2])[-1]
    names = sorted(path.name for path in folder.iterdir())
    assert all(name.endswith((".safetensors", ".json")) for name in names), names
    state = verify_checkpoint(folder)
    assert sorted(state.files) == sorted(name for name in names if name != STATE_FILE_NAME)
    assert {"model.safetensors", "optimizer.safetensors", "optimizer.json", "scheduler.json", "rng_state_0.safetensors",
            "rng_state_0.json"} <= set(state.files)


def test_planted_pickles_are_never_loaded_and_the_resume_is_exact(tmp_path, runs, caplog) -> None:
    data_dir, expected, _ = runs
    output_dir = _copy_of_stopped_run(runs, tmp_path)
    marker = tmp_path / "pickle-was-loaded"
    latest = complete_checkpoints(output_dir)[-1]
    for name in ACCELERATE_PICKLES:
        (latest / name).write_bytes(pickle.dumps(CreatesMarkerWhenUnpickled(marker)))
    with caplog.at_level(logging.WARNING):
        result = _run(output_dir, data_dir, "--resume_from_checkpoint", "latest")
    assert not marker.exists()
    assert result.global_step == 6 and _parameters(output_dir) == expected
    assert any("never loaded" in record.getMessage() and "custom_checkpoint_0.pkl" in record.getMessage()
               for record in caplog.records)


def test_a_checkpoint_without_a_file_list_is_refused_unread(tmp_path, runs) -> None:
    """A checkpoint in accelerate's layout (its state file lists no files; pickles beside it) is not loaded."""
    output_dir = _copy_of_stopped_run(runs, tmp_path)
    marker = tmp_path / "pickle-was-loaded"
    latest = complete_checkpoints(output_dir)[-1]
    state = json.loads((latest / STATE_FILE_NAME).read_text())
    del state["files"]
    (latest / STATE_FILE_NAME).write_text(json.dumps(state))
    for name in ACCELERATE_PICKLES:
        (latest / name).write_bytes(pickle.dumps(CreatesMarkerWhenUnpickled(marker)))
    with pytest.raises(CheckpointError, match="lists no files"):
        _run(output_dir, runs[0], "--resume_from_checkpoint", str(latest))
    assert not marker.exists()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip_last_byte, Path.unlink], ids=["truncated", "changed", "missing"])
@pytest.mark.parametrize(
    "name", ["model.safetensors", "optimizer.safetensors", "optimizer.json", "scheduler.json", "rng_state_0.safetensors",
             "rng_state_0.json", STATE_FILE_NAME],
)
def test_every_damaged_file_is_detected(tmp_path, runs, name, damage) -> None:
    folder = tmp_path / "checkpoint-000004"
    shutil.copytree(complete_checkpoints(runs[2])[-1], folder)
    damage(folder / name)
    with pytest.raises(CheckpointError) as raised:
        verify_checkpoint(folder)
    assert "\n" not in str(raised.value)


def test_a_truncated_latest_checkpoint_falls_back_and_ends_bit_identical(tmp_path, runs, caplog) -> None:
    data_dir, expected, _ = runs
    output_dir = _copy_of_stopped_run(runs, tmp_path)
    _truncate(complete_checkpoints(output_dir)[-1] / "optimizer.safetensors")
    with caplog.at_level(logging.WARNING):
        result = _run(output_dir, data_dir, "--resume_from_checkpoint", "latest")
    damaged = [record.getMessage() for record in caplog.records if "is damaged" in record.getMessage()]
    assert len(damaged) == 1 and "checkpoint-000004" in damaged[0] and "optimizer.safetensors" in damaged[0]
    assert "\n" not in damaged[0]
    assert result.global_step == 6 and _parameters(output_dir) == expected
    # The resumed run rewrote the damaged step-4 checkpoint on its way.
    verify_checkpoint(output_dir / "checkpoints" / "checkpoint-000004")

