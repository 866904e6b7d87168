"""Training diagnostics of a comparison run: the ln(batch) plateau and the spread of the text features.

A contrastive loss stuck at ln(batch) means the logits do not tell the pairs apart; text features whose mean
pairwise cosine approaches 1 have collapsed onto one direction (every caption looks the same).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..modeling.modeling_outputs import UniTriMOutput
from ..modeling.pooling import l2_normalize

# A step is "on the plateau" when its text-video loss is within this fraction of ln(batch) (or above it).
PLATEAU_TOLERANCE = 0.02


def mean_pairwise_cosine(features: torch.Tensor) -> float:
    """Mean cosine similarity of the distinct rows of `features` (batch, dim); 1.0 when all point the same way."""
    batch_size = features.shape[0]
    if batch_size < 2:
        return float("nan")
    normalized = l2_normalize(features.detach().float())
    gram = normalized @ normalized.t()
    return float((gram.sum() - gram.diagonal().sum()) / (batch_size * (batch_size - 1)))


class TextFeatureProbe:
    """Records, for every training forward pass, the mean pairwise cosine of the sentence features and of the
    combined text feature `t` (when the model computes one).

    Append `record` to a `Trainer`'s `step_observers`; it is called with each training step's `UniTriMOutput`.
    """

    def __init__(self) -> None:
        self.sentence_cosine: list[float] = []
        self.combined_cosine: list[float] = []

    def record(self, output: UniTriMOutput) -> None:
        features = output.text_features
        if features is None:
            return
        self.sentence_cosine.append(mean_pairwise_cosine(features.sentence_embeds))
        if features.combined_embeds is not None:
            self.combined_cosine.append(mean_pairwise_cosine(features.combined_embeds))

    def summary(self) -> dict[str, float]:
        """Mean, maximum and last value of each recorded series (NaN when nothing was recorded)."""
        values: dict[str, float] = {}
        for name, series in (("sentence_cosine", self.sentence_cosine), ("combined_cosine", self.combined_cosine)):
            finite = [value for value in series if math.isfinite(value)]
            values[f"{name}_mean"] = sum(finite) / len(finite) if finite else float("nan")
            values[f"{name}_max"] = max(finite) if finite else float("nan")
            values[f"{name}_last"] = finite[-1] if finite else float("nan")
        return values


def plateau_statistics(log_history: list[dict[str, Any]], batch_size: int, loss_key: str = "train/loss_text_video") -> dict[str, float]:
    """
    How long the text-video contrastive loss sat at its chance value ln(batch_size).

    Args:
        log_history: the trainer's log rows (`{"step": s, "train/loss_text_video": ...}`), one per logged step.
        batch_size: the contrastive batch (all processes together).

    Returns:
        `plateau_fraction` (logged steps whose loss is >= (1 - PLATEAU_TOLERANCE) * ln(batch)) and
        `steps_to_leave_plateau` (first logged step below that line; the last step + 1 when it never leaves).
    """
    rows = [row for row in log_history if loss_key in row]
    if not rows or batch_size < 2:
        return {"plateau_fraction": float("nan"), "steps_to_leave_plateau": float("nan")}
    line = (1 - PLATEAU_TOLERANCE) * math.log(batch_size)
    on_plateau = [row[loss_key] >= line for row in rows]
    leaving = next((row["step"] for row, flag in zip(rows, on_plateau) if not flag), rows[-1]["step"] + 1)
    return {"plateau_fraction": sum(on_plateau) / len(on_plateau), "steps_to_leave_plateau": float(leaving)}
