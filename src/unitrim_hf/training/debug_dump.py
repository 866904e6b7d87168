"""Per-process debug dumps (`--debug_dump_parameters`): `debug/rank<r>.json` with a hash of the final parameters
and the shapes of the first contrastive logits, to check that processes stay identical and see gathered batches.

The loop calls `record_step` and `write` unconditionally; without the flag they are the no-ops of
`NoDebugRecorder`, so the training path itself carries no debug branches.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from .output_layout import DEBUG_FOLDER, debug_dump_name

RECORDED_STEPS = 4


def parameter_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter (name order, float32 bytes): equal digests mean bit-identical parameters."""
    digest = hashlib.sha256()
    for name, parameter in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(parameter.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class NoDebugRecorder:
    """What the loop calls when no debug dump was asked for: nothing."""

    def record_step(self, output: Any) -> None:
        pass

    def write(self, output_dir: Path, model: torch.nn.Module, process_index: int, num_processes: int,
              per_device_batch_size: int, global_step: int) -> None:
        pass


class DebugRecorder(NoDebugRecorder):
    """Records the (local texts, gathered videos) shape of the first `RECORDED_STEPS` text-video logits."""

    def __init__(self) -> None:
        self.logits_shapes: list[list[int]] = []

    def record_step(self, output: Any) -> None:
        if len(self.logits_shapes) < RECORDED_STEPS:
            self.logits_shapes.append(list(output.logits_per_text_video.shape))

    def write(self, output_dir: Path, model: torch.nn.Module, process_index: int, num_processes: int,
              per_device_batch_size: int, global_step: int) -> None:
        """Write `output_dir/debug/rank<process_index>.json` (each process its own file)."""
        folder = Path(output_dir) / DEBUG_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        record = {
            "process_index": process_index,
            "num_processes": num_processes,
            "per_device_batch_size": per_device_batch_size,
            "parameter_sha256": parameter_digest(model),
            "logits_per_text_video_shapes": self.logits_shapes,
            "global_step": global_step,
        }
        (folder / debug_dump_name(process_index)).write_text(json.dumps(record, indent=1))


def debug_recorder(enabled: bool) -> NoDebugRecorder:
    return DebugRecorder() if enabled else NoDebugRecorder()
