"""Atomic, verifiable training checkpoints in safetensors and JSON (see `state_files`): nothing is unpickled.

Layout under `<output_dir>/checkpoints/`:

    checkpoint-000120/            model, optimizer, scheduler, scaler, random generators of every process
    checkpoint-000120/trainer_state.json   written last: the loop's state and the size and SHA-256 of every file
    .tmp-checkpoint-000130/       a save in progress (or one that crashed); never taken for "latest"

A crash during a save leaves at most a `.tmp-*` folder. A complete checkpoint damaged later (a truncated or
changed file, a file missing) fails its check on resume: `--resume_from_checkpoint latest` reports it in one line
and falls back to the newest earlier checkpoint that passes. Files the trainer did not write (e.g. accelerate's
`*.pkl`) are never read.

With several processes the main process alone chooses the checkpoint and every process loads that one
(`resume_from_checkpoint`): processes listing the folder by themselves could choose different checkpoints (one
renamed into place between their listings, a file damaged in one process's view of a shared file system).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, gather_object

from ..errors import CheckpointError
from .output_layout import (  # noqa: F401 (CHECKPOINT_FOLDER: callers import it from here)
    CHECKPOINT_FOLDER,
    RUN_OUTPUTS,
    STATE_FILE_NAME,
    checkpoint_root,
    complete_checkpoints,
    earlier_run_message,
)
from .state_files import (
    SCALER_FILE,
    SCHEDULER_FILE,
    load_json_state,
    load_model_parameters,
    load_optimizer,
    load_rng_state,
    save_json_state,
    save_model_parameters,
    save_optimizer,
    save_rng_state,
)

_HASH_CHUNK_BYTES = 1 << 22

logger = logging.getLogger(__name__)




@dataclass
class TrainerState:
    """What the loop needs to continue: the optimizer step reached and the best evaluation so far.

    `files` ({file name: {"size", "sha256"}}) lists what the checkpoint holds; `accelerator_step` is accelerate's
    count of batches (it decides when gradients are synchronised under accumulation).
    """

    global_step: int = 0
    epoch: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    accelerator_step: int = 0
    log_history: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        (folder / STATE_FILE_NAME).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, folder: Path) -> "TrainerState":
        """The state of `folder`; `CheckpointError` when the file is missing, truncated or not a state."""
        path = folder / STATE_FILE_NAME
        try:
            values = json.loads(path.read_text())
            known = {item.name for item in fields(cls)}
            return cls(**{key: value for key, value in values.items() if key in known})
        except (OSError, ValueError, TypeError) as error:
            raise CheckpointError(f"{path} cannot be read ({type(error).__name__}: {error})") from None


def file_digest(path: Path) -> dict[str, Any]:
    """{"size": bytes, "sha256": hex} of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def verify_checkpoint(folder: Path) -> TrainerState:
    """The trainer state of `folder` after checking every file it lists; `CheckpointError` naming the first
    problem (missing state, no file list, a file missing, truncated or changed)."""
    state = TrainerState.load(folder)
    if not state.files:
        raise CheckpointError(
            f"{folder} lists no files in {STATE_FILE_NAME} (written by an older version of the trainer, whose "
            "pickled files are not loaded)"
        )
    for name, expected in sorted(state.files.items()):
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"{folder}: {name} is missing")
        size = path.stat().st_size
        if size != expected["size"]:
            raise CheckpointError(f"{folder}: {name} has {size} bytes, {expected['size']} were written (truncated?)")
        if file_digest(path)["sha256"] != expected["sha256"]:
            raise CheckpointError(f"{folder}: {name} differs from what was written (SHA-256 mismatch)")
    return state


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


def find_resumable_checkpoint(output_dir: str | Path, which: str) -> tuple[Path, TrainerState]:
    """The checkpoint to resume from and its verified state.

    "latest": the newest complete checkpoint that passes `verify_checkpoint`; each damaged newer one is reported
    in one warning line and skipped. A named folder must pass the check itself.
    """
    if which != "latest":
        folder = resolve_checkpoint(output_dir, which)
        return folder, verify_checkpoint(folder)
    candidates = complete_checkpoints(output_dir)
    if not candidates:
        raise CheckpointError(f"--resume_from_checkpoint latest: no complete checkpoint in {checkpoint_root(output_dir)}.")
    problems = []
    for folder in reversed(candidates):
        try:
            return folder, verify_checkpoint(folder)
        except CheckpointError as error:
            problems.append(str(error))
            logger.warning("Checkpoint %s is damaged and is skipped: %s", folder.name, error)
    raise CheckpointError(f"--resume_from_checkpoint latest: no usable checkpoint in {checkpoint_root(output_dir)} ({'; '.join(problems)}).")


def prepare_fresh_output_dir(accelerator: Accelerator, output_dir: str | Path, overwrite: bool) -> None:
    """
    Before a fresh (not resumed) run: refuse an `output_dir` holding an earlier run's checkpoints (its own new
    checkpoints would be pruned as older than those, and `latest` would resume the earlier run), or, with
    `overwrite`, delete that run's checkpoints and models. Call on every process.
    """
    output_dir = Path(output_dir)
    earlier = complete_checkpoints(output_dir)
    if earlier and not overwrite:
        raise CheckpointError(earlier_run_message(output_dir, earlier[-1]))
    if overwrite and accelerator.is_main_process:
        for name in RUN_OUTPUTS:
            path = output_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    accelerator.wait_for_everyone()


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: str | Path,
    state: TrainerState,
    total_limit: int,
    model: Any,
    optimizer: Any,
    scheduler: Any,
) -> Path:
    """
    Save model, optimizer, scheduler (and loss scaler) from the main process and each process's random generators
    as `checkpoint-<global_step>`, atomically; keep the newest `total_limit`. Call on every process.
    """
    root = checkpoint_root(output_dir)
    name = f"checkpoint-{state.global_step:06d}"
    temporary, final = root / f".tmp-{name}", root / name
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if temporary.exists():
            shutil.rmtree(temporary)
        temporary.mkdir()
    accelerator.wait_for_everyone()
    save_rng_state(temporary, accelerator.process_index)
    if accelerator.is_main_process:
        save_model_parameters(accelerator.unwrap_model(model), temporary)
        save_optimizer(optimizer, temporary)
        save_json_state(scheduler, temporary / SCHEDULER_FILE)
        if accelerator.scaler is not None:
            save_json_state(accelerator.scaler, temporary / SCALER_FILE)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state.accelerator_step = accelerator.step
        state.files = {path.name: file_digest(path) for path in sorted(temporary.iterdir()) if path.is_file()}
        state.save(temporary)
        _fsync_folder(temporary)
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
        for old in complete_checkpoints(output_dir)[: -max(total_limit, 1)]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def choose_checkpoint(accelerator: Accelerator, output_dir: str | Path, which: str) -> tuple[Path, TrainerState]:
    """`find_resumable_checkpoint` on the main process, its answer (or its error) given to every process.

    Every process returns the main process's folder and verified state, or raises the same `CheckpointError`.
    Call on every process.
    """
    decision: list[dict[str, Any] | None] = [None]
    if accelerator.is_main_process:
        try:
            folder, state = find_resumable_checkpoint(output_dir, which)
            decision = [{"folder": str(folder), "state": asdict(state)}]
        except CheckpointError as error:
            decision = [{"error": str(error)}]
        except Exception as error:  # the others wait for the decision: never leave them waiting
            decision = [{"error": f"--resume_from_checkpoint {which}: {checkpoint_root(output_dir)} cannot be "
                                  f"searched ({type(error).__name__}: {error})"}]
    broadcast_object_list(decision)
    chosen = decision[0]
    if "error" in chosen:
        raise CheckpointError(chosen["error"])
    return Path(chosen["folder"]), TrainerState(**chosen["state"])


def resume_from_checkpoint(
    accelerator: Accelerator, output_dir: str | Path, which: str, model: Any, optimizer: Any, scheduler: Any
) -> tuple[Path, TrainerState]:
    """
    Choose the checkpoint on the main process (`choose_checkpoint`), check it on every other process (its files
    must match the main process's digests), and load it everywhere. When any process fails, every process raises
    the same `CheckpointError` naming the checkpoint and each process's problem. Call on every process.
    """
    folder, state = choose_checkpoint(accelerator, output_dir, which)
    problem = None
    try:
        if not accelerator.is_main_process and verify_checkpoint(folder).files != state.files:
            raise CheckpointError(f"{folder} holds other files here than on the main process")
        load_checkpoint(accelerator, folder, state, model, optimizer, scheduler)
    except Exception as error:  # the others wait for this process's answer: never leave them waiting
        problem = f"{type(error).__name__}: {error}"
        logger.error("Loading %s failed on process %d.", folder, accelerator.process_index, exc_info=True)
    problems = gather_object([problem])
    failed = [f"process {rank}: {message}" for rank, message in enumerate(problems) if message is not None]
    if failed:
        raise CheckpointError(
            f"Cannot resume from {folder}: it could not be loaded on every process ({'; '.join(failed)}). No process "
            "continues; check that every process sees the same complete checkpoint, or name another one."
        )
    return folder, state


def load_checkpoint(accelerator: Accelerator, folder: Path, state: TrainerState, model: Any, optimizer: Any, scheduler: Any) -> None:
    """Restore what `save_checkpoint` wrote into the (prepared) model, optimizer, scheduler and this process's
    generators. `state` is the verified state of `folder` (`find_resumable_checkpoint`)."""
    unexpected = sorted(path.name for path in folder.iterdir() if path.name not in state.files and path.name != STATE_FILE_NAME)
    if unexpected and accelerator.is_main_process:
        logger.warning("%s holds files the trainer did not write; they are ignored (never loaded): %s", folder, unexpected)
    load_model_parameters(accelerator.unwrap_model(model), folder)
    load_optimizer(optimizer, folder)
    load_json_state(scheduler, folder / SCHEDULER_FILE)
    if accelerator.scaler is not None and SCALER_FILE in state.files:
        load_json_state(accelerator.scaler, folder / SCALER_FILE)
    if not load_rng_state(folder, accelerator.process_index):
        logger.warning("%s holds no random state for process %d (saved with fewer processes); continuing without it.",
                       folder, accelerator.process_index)
    accelerator.step = state.accelerator_step


def _fsync_folder(folder: Path) -> None:
    """Flush the files of `folder` so that the rename cannot expose a half-written checkpoint after a power loss."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
