"""Names of everything a training run writes into `--output_dir` (one definition, used by every writer)."""

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

# What a fresh run writes; --overwrite_output_dir deletes an earlier run's copies.
RUN_OUTPUTS = (
    CHECKPOINT_FOLDER, BEST_MODEL_FOLDER, FINAL_MODEL_FOLDER, f"{LOGS_FOLDER}/{TRAINING_LOG_FILE}", DEBUG_FOLDER,
    METRICS_FILE, METRICS_MARKDOWN_FILE, SKIPPED_VIDEOS_FILE,
)


def debug_dump_name(process_index: int) -> str:
    """`rank<r>.json`: the per-process debug dump under `debug/`."""
    return f"rank{process_index}.json"


__all__ = [
    "BEST_MODEL_FOLDER", "CHECKPOINT_FOLDER", "DEBUG_FOLDER", "FINAL_MODEL_FOLDER", "LOGS_FOLDER", "METRICS_FILE",
    "METRICS_MARKDOWN_FILE", "RUN_OUTPUTS", "SKIPPED_VIDEOS_FILE", "TRAINING_CONFIG_FILE", "TRAINING_DATA_FILE",
    "TRAINING_LOG_FILE", "debug_dump_name",
]
