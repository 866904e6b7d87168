"""Training of UniTriM with accelerate: arguments, data, optimisation, atomic checkpoints, the loop, Hub push.

Names load lazily, so that `unitrim-train --help` and argument errors do not wait for torch to import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DataArguments": "arguments",
    "ModelArguments": "arguments",
    "TrainingArguments": "arguments",
    "TrainingArgumentError": "arguments",
    "parse_arguments": "arguments",
    "CheckpointError": "checkpointing",
    "TrainerState": "checkpointing",
    "resolve_checkpoint": "checkpointing",
    "save_checkpoint": "checkpointing",
    "NonFiniteLossError": "loop",
    "Trainer": "loop",
    "TrainingResult": "loop",
    "create_optimizer": "optimization",
    "create_scheduler": "optimization",
    "parameter_groups": "optimization",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = sorted(_EXPORTS)
