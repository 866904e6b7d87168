"""Atomic training checkpoints: `accelerator.save_state` into a temporary folder, renamed into place when complete.

Layout under `<output_dir>/checkpoints/`:

    checkpoint-000120/            accelerate state (model, optimizer, scheduler, RNG of every process)
    checkpoint-000120/trainer_state.json   written last: its presence marks a complete checkpoint
    .tmp-checkpoint-000130/       a save in progress (or one that crashed); never taken for "latest"

A crash during a save leaves at most a `.tmp-*` folder, so "latest" is always the newest complete checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from ..errors import UniTriMError

CHECKPOINT_FOLDER = "checkpoints"
STATE_FILE_NAME = "trainer_state.json"
_CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(UniTriMError):
    """A checkpoint to resume from is missing or incomplete."""


@dataclass
class TrainerState:
    """What the loop needs to continue: the optimizer step reached and the best evaluation so far."""

    global_step: int = 0
    epoch: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    log_history: list[dict[str, Any]] = field(default_factory=list)

    def save(self, folder: Path) -> None:
        (folder / STATE_FILE_NAME).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, folder: Path) -> "TrainerState":
        return cls(**json.loads((folder / STATE_FILE_NAME).read_text()))


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / CHECKPOINT_FOLDER


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints (with their state file), oldest first."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        match = _CHECKPOINT_PATTERN.match(folder.name)
        if match and (folder / STATE_FILE_NAME).is_file():
            found.append((int(match.group(1)), folder))
    return [folder for _, folder in sorted(found)]


def resolve_checkpoint(output_dir: str | Path, which: str) -> Path:
    """`which` = "latest" (the newest complete checkpoint of `output_dir`) or a checkpoint folder."""
    if which == "latest":
        checkpoints = complete_checkpoints(output_dir)
        if not checkpoints:
            raise CheckpointError(f"--resume_from_checkpoint latest: no complete checkpoint in {checkpoint_root(output_dir)}.")
        return checkpoints[-1]
    folder = Path(which)
    if not (folder / STATE_FILE_NAME).is_file():
        raise CheckpointError(f"{folder} is not a complete checkpoint ({STATE_FILE_NAME} is missing).")
    return folder


# What a fresh run writes into its output folder; an earlier run's copies are deleted by --overwrite_output_dir.
RUN_OUTPUTS = (
    CHECKPOINT_FOLDER, "best_model", "final_model", "logs/training_log.jsonl", "debug", "metrics.json", "metrics.md", "skipped_training_videos.json",
)


def prepare_fresh_output_dir(accelerator: Accelerator, output_dir: str | Path, overwrite: bool) -> None:
    """
    Before a fresh (not resumed) run: refuse an `output_dir` holding an earlier run's checkpoints (its own new
    checkpoints would be pruned as older than those, and `latest` would resume the earlier run), or, with
    `overwrite`, delete that run's checkpoints and models. Call on every process.
    """
    output_dir = Path(output_dir)
    earlier = complete_checkpoints(output_dir)
    if earlier and not overwrite:
        raise CheckpointError(
            f"{output_dir} already holds checkpoints of an earlier run ({earlier[-1].name} is the newest). Pass "
            "--resume_from_checkpoint latest to continue it, --overwrite_output_dir to start over (deleting them), "
            "or choose another --output_dir."
        )
    if overwrite and accelerator.is_main_process:
        for name in RUN_OUTPUTS:
            path = output_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    accelerator.wait_for_everyone()


def save_checkpoint(accelerator: Accelerator, output_dir: str | Path, state: TrainerState, total_limit: int) -> Path:
    """
    Save the accelerate state and `state` as `checkpoint-<global_step>`, atomically; keep the newest `total_limit`.
    Call on every process (each saves its own RNG state).
    """
    root = checkpoint_root(output_dir)
    name = f"checkpoint-{state.global_step:06d}"
    temporary, final = root / f".tmp-{name}", root / name
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if temporary.exists():
            shutil.rmtree(temporary)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state.save(temporary)
        _fsync_folder(temporary)
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
        for old in complete_checkpoints(output_dir)[: -max(total_limit, 1)]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Accelerator, folder: Path) -> TrainerState:
    """Restore the accelerate state of `folder` and return its trainer state."""
    accelerator.load_state(str(folder))
    return TrainerState.load(folder)


def _fsync_folder(folder: Path) -> None:
    """Flush the files of `folder` so that the rename cannot expose a half-written checkpoint after a power loss."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
