"""Names of everything a training run writes into `--output_dir` (one definition, used by every writer), and the
listing of an earlier run's checkpoints there (light: the command line checks it before torch loads)."""

from __future__ import annotations

import re
from pathlib import Path

from ..evaluation.report import METRICS_JSON as METRICS_FILE
from ..evaluation.report import METRICS_MARKDOWN as METRICS_MARKDOWN_FILE
from ..evaluation.training_overlap import TRAINING_DATA_FILE

CHECKPOINT_FOLDER = "checkpoints"
BEST_MODEL_FOLDER = "best_model"
FINAL_MODEL_FOLDER = "final_model"
LOGS_FOLDER = "logs"
TRAINING_LOG_FILE = "training_log.jsonl"
TRAINING_CONFIG_FILE = "training_config.json"
DEBUG_FOLDER = "debug"
SKIPPED_VIDEOS_FILE = "skipped_training_videos.json"
# `--do_eval_only` writes its evaluation here, never over the training run's `metrics.json`.
EVAL_ONLY_METRICS_STEM = "eval_metrics"
# A checkpoint is complete when its state file (written last) is there.
STATE_FILE_NAME = "trainer_state.json"
_CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")

# What a fresh run writes; --overwrite_output_dir deletes an earlier run's copies.
RUN_OUTPUTS = (
    CHECKPOINT_FOLDER, BEST_MODEL_FOLDER, FINAL_MODEL_FOLDER, f"{LOGS_FOLDER}/{TRAINING_LOG_FILE}", DEBUG_FOLDER,
    METRICS_FILE, METRICS_MARKDOWN_FILE, SKIPPED_VIDEOS_FILE,
)


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


def earlier_run_message(output_dir: str | Path, newest: Path) -> str:
    """Why a fresh run refuses an `--output_dir` holding checkpoints, and the flags that resolve it."""
    return (
        f"--output_dir {output_dir} already holds checkpoints of an earlier run ({newest.name} is the newest). Pass "
        "--resume_from_checkpoint latest to continue it, --overwrite_output_dir to start over (deleting them), "
        "or choose another --output_dir."
    )


def debug_dump_name(process_index: int) -> str:
    """`rank<r>.json`: the per-process debug dump under `debug/`."""
    return f"rank{process_index}.json"


__all__ = [
    "BEST_MODEL_FOLDER", "CHECKPOINT_FOLDER", "DEBUG_FOLDER", "EVAL_ONLY_METRICS_STEM", "FINAL_MODEL_FOLDER",
    "LOGS_FOLDER", "METRICS_FILE", "METRICS_MARKDOWN_FILE", "RUN_OUTPUTS", "SKIPPED_VIDEOS_FILE", "STATE_FILE_NAME",
    "TRAINING_CONFIG_FILE", "TRAINING_DATA_FILE", "TRAINING_LOG_FILE", "checkpoint_root", "complete_checkpoints",
    "debug_dump_name", "earlier_run_message",
]
