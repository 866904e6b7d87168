"""Training of UniTriM with accelerate: arguments, data, optimisation, atomic checkpoints, the loop, Hub push."""

from .arguments import DataArguments, ModelArguments, TrainingArguments, parse_arguments
from .checkpointing import CheckpointError, TrainerState, resolve_checkpoint, save_checkpoint
from .loop import NonFiniteLossError, Trainer, TrainingResult
from .optimization import create_optimizer, create_scheduler, parameter_groups

__all__ = [
    "CheckpointError",
    "DataArguments",
    "ModelArguments",
    "NonFiniteLossError",
    "Trainer",
    "TrainerState",
    "TrainingArguments",
    "TrainingResult",
    "create_optimizer",
    "create_scheduler",
    "parameter_groups",
    "parse_arguments",
    "resolve_checkpoint",
    "save_checkpoint",
]
