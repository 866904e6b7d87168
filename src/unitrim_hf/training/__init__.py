"""Training of UniTriM with accelerate: arguments, data, optimization, atomic checkpoints, the loop, Hub push.

Names load lazily, so that `unitrim-train --help` and argument errors do not wait for torch to import.
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "DataArguments": "arguments",
    "ModelArguments": "arguments",
    "TrainingArguments": "arguments",
    "TrainingArgumentError": ".errors",
    "parse_arguments": "command_line",
    "CheckpointError": ".errors",
    "TrainerState": "checkpointing",
    "resolve_checkpoint": "checkpointing",
    "save_checkpoint": "checkpointing",
    "NonFiniteLossError": ".errors",
    "Trainer": "loop",
    "TrainingResult": "loop",
    "create_optimizer": "optimization",
    "create_scheduler": "optimization",
    "parameter_groups": "optimization",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = sorted(_EXPORTS)
