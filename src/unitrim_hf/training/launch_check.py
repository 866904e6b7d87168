"""Warn when `accelerate launch` was asked for several processes but this run has only one.

On CPU, `accelerate launch --num_processes 2 train.py` without `--multi_gpu` starts a single process that trains
alone; the only trace of what was asked is the launcher's command line (the parent process).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def requested_num_processes(launcher_command: list[str]) -> int | None:
    """`--num_processes N` (or `--num_processes=N`) of an `accelerate launch` command line, else None."""
    if not any(Path(word).name == "accelerate" or word.endswith("accelerate.commands.launch") for word in launcher_command):
        return None
    for position, word in enumerate(launcher_command):
        value = None
        if word == "--num_processes" and position + 1 < len(launcher_command):
            value = launcher_command[position + 1]
        elif word.startswith("--num_processes="):
            value = word.split("=", 1)[1]
        if value is not None:
            return int(value) if value.isdigit() else None
    return None


def parent_command_line() -> list[str]:
    """The command line of the parent process (Linux /proc), or [] where it cannot be read."""
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return []
    return [word.decode(errors="replace") for word in raw.split(b"\0") if word]


def warn_if_fewer_processes_than_requested() -> int | None:
    """Log a warning when the launcher asked for more processes than `WORLD_SIZE`; returns the number asked."""
    requested = requested_num_processes(parent_command_line())
    running = int(os.environ.get("WORLD_SIZE", "1"))
    if requested is not None and requested > running:
        logger.warning(
            "accelerate launch was asked for %d processes but this run has %d: it trains in %s. On CPU add "
            "--multi_gpu (with ACCELERATE_USE_CPU=true); on GPUs check that %d are visible.",
            requested, running, "one process" if running == 1 else f"{running} processes", requested,
        )
    return requested
