"""Experiment trackers for `Accelerator(log_with=...)`: tensorboard when installed, and always a JSON-lines log."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from accelerate.tracking import GeneralTracker, on_main_process

from .output_layout import TRAINING_CONFIG_FILE, TRAINING_LOG_FILE


class JsonLinesTracker(GeneralTracker):
    """Appends `{"step": ..., **values}` to `<logging_dir>/training_log.jsonl`.

    Made on every process; only the main one creates the folder and writes (accelerate's `main_process_only`).
    """

    name = "jsonl"
    requires_logging_directory = True
    main_process_only = True

    def __init__(self, run_name: str, logging_dir: str | Path) -> None:
        super().__init__()
        self.run_name = run_name
        self.path = Path(logging_dir) / TRAINING_LOG_FILE

    @on_main_process
    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def tracker(self) -> Path:
        return self.path

    @on_main_process
    def store_init_configuration(self, values: dict[str, Any]) -> None:
        (self.path.parent / TRAINING_CONFIG_FILE).write_text(json.dumps(values, indent=1, default=str))

    @on_main_process
    def log(self, values: dict[str, Any], step: int | None = None, **kwargs: Any) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"step": step, **values}) + "\n")


def select_trackers(report_to: str, logging_dir: str | Path) -> list:
    """Trackers for `report_to`: "auto" (tensorboard if installed, plus jsonl), "none", or comma-separated names."""
    choice = report_to.strip().lower()
    if choice == "none":
        return []
    trackers: list = [JsonLinesTracker("unitrim", logging_dir)]
    if choice == "auto":
        if importlib.util.find_spec("tensorboard") is not None or importlib.util.find_spec("tensorboardX") is not None:
            trackers.append("tensorboard")
        return trackers
    if choice == "all":
        return trackers + ["all"]
    return trackers + [name.strip() for name in choice.split(",") if name.strip() and name.strip() != "jsonl"]
