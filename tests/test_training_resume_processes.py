"""Resuming under `accelerate launch` with two CPU processes: the main process chooses the checkpoint, every
process loads that one, and a checkpoint one process cannot load stops all of them with the same error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from unitrim_hf.training import cli
from unitrim_hf.training.checkpointing import complete_checkpoints

from test_training_runs import CPU_LAUNCH, FAST_RUN, _environment, _free_port

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")
LAUNCHED_SCRIPT = Path(__file__).with_name("two_process_resume.py")


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory) -> tuple[Path, Path]:
    """(data folder, a single-process run stopped at step 2 with checkpoints at steps 1 and 2)."""
    root = tmp_path_factory.mktemp("resume_processes")
    data_dir = root / "data"
    cli.run(["--output_dir", str(root / "run"), "--data_dir", str(data_dir), *FAST_RUN, "--max_steps", "3",
             "--save_steps", "1", "--stop_after_steps", "2"])
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    assert [folder.name for folder in complete_checkpoints(root / "run")] == ["checkpoint-000001", "checkpoint-000002"]
    return data_dir, root / "run"


def _resume_with_two_processes(scenario: str, stopped: Path, data_dir: Path, output_dir: Path) -> subprocess.CompletedProcess:
    import shutil

    shutil.copytree(stopped, output_dir)
    environment = _environment()
    environment["ACCELERATE_USE_CPU"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", *CPU_LAUNCH, "--main_process_port", str(_free_port()),
         str(LAUNCHED_SCRIPT), scenario, "--output_dir", str(output_dir), "--data_dir", str(data_dir), *FAST_RUN,
         "--max_steps", "3", "--save_steps", "1", "--resume_from_checkpoint", "latest", "--ddp_timeout", "60"],
        cwd=output_dir, env=environment, capture_output=True, text=True, timeout=240,
    )


@pytest.mark.timeout(300)
def test_every_process_resumes_from_the_checkpoint_the_main_process_chose(stopped_run, tmp_path) -> None:
    data_dir, stopped = stopped_run
    output_dir = tmp_path / "resumed"
    # Process 1 alone does not see the newest checkpoint yet: it must not resume from an older one by itself.
    completed = _resume_with_two_processes("newest_unseen_on_rank1", stopped, data_dir, output_dir)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Resumed from" in completed.stdout and "checkpoint-000002 at optimizer step 2" in completed.stdout
    digests = [json.loads((output_dir / "debug" / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert digests[0]["global_step"] == digests[1]["global_step"] == 3
    assert digests[0]["parameter_sha256"] == digests[1]["parameter_sha256"]


@pytest.mark.timeout(300)
def test_a_checkpoint_one_process_cannot_load_stops_every_process_with_the_same_error(stopped_run, tmp_path) -> None:
    data_dir, stopped = stopped_run
    output_dir = tmp_path / "resumed"
    completed = _resume_with_two_processes("load_fails_on_rank1", stopped, data_dir, output_dir)
    assert completed.returncode != 0
    errors = [(output_dir / f"error_rank{rank}.txt") for rank in (0, 1)]
    assert all(path.is_file() for path in errors), completed.stderr[-3000:]
    messages = [path.read_text() for path in errors]
    assert messages[0] == messages[1]
    assert messages[0].startswith("CheckpointError: ")
    assert "checkpoint-000002" in messages[0] and "process 1" in messages[0] and "Input/output error" in messages[0]
