"""AdamW with two learning-rate groups (CLIP parameters vs new modules) and a cosine schedule with warm-up."""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import get_cosine_schedule_with_warmup


def _decays(name: str, parameter: nn.Parameter) -> bool:
    """Weight decay on matrices only: not on biases, norms, embeddings of scale 1 or the logit scale."""
    return parameter.ndim >= 2 and "logit_scale" not in name


def parameter_groups(
    model: nn.Module, learning_rate: float, clip_learning_rate: float, weight_decay: float
) -> list[dict]:
    """
    Up to four AdamW groups: {CLIP, new} x {decay, no decay}. Each group carries a `name` ("clip_decay", ...).

    Args:
        model: a `UniTriMModel` (its `clip_parameter_names()` split the groups); any other model (e.g. a plain
            `CLIPModel` being pre-trained) has only CLIP parameters.
        learning_rate: rate of the new modules (temporal encoder, patch scorer, disentangler).
        clip_learning_rate: rate of the CLIP towers, projections and logit scale.
    """
    names = getattr(model, "clip_parameter_names", None)
    clip_names = names() if names is not None else {name for name, _ in model.named_parameters()}
    buckets: dict[str, list[nn.Parameter]] = {"clip_decay": [], "clip_no_decay": [], "new_decay": [], "new_no_decay": []}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        origin = "clip" if name in clip_names else "new"
        buckets[f"{origin}_{'decay' if _decays(name, parameter) else 'no_decay'}"].append(parameter)
    groups = []
    for group_name, parameters in buckets.items():
        if not parameters:
            continue
        groups.append({
            "name": group_name,
            "params": parameters,
            "lr": clip_learning_rate if group_name.startswith("clip") else learning_rate,
            "weight_decay": weight_decay if group_name.endswith("_decay") and "no_decay" not in group_name else 0.0,
        })
    return groups


def create_optimizer(
    model: nn.Module,
    learning_rate: float,
    clip_learning_rate: float,
    weight_decay: float = 0.2,
    betas: tuple[float, float] = (0.9, 0.98),
    epsilon: float = 1e-6,
) -> torch.optim.AdamW:
    """AdamW over `parameter_groups` (CLIP's betas and epsilon by default)."""
    return torch.optim.AdamW(
        parameter_groups(model, learning_rate, clip_learning_rate, weight_decay), betas=betas, eps=epsilon
    )


def warmup_steps_for(total_steps: int, warmup_steps: int | None, warmup_ratio: float) -> int:
    """`warmup_steps` when given, else `ceil(warmup_ratio * total_steps)`."""
    if warmup_steps is not None:
        return int(warmup_steps)
    return int(math.ceil(warmup_ratio * total_steps))


def create_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up to each group's rate, then cosine decay to zero at `total_steps` (optimizer steps)."""
    return get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps)
