"""EERCF's training objective on the TIB scores of a square batch (row b of the texts paired with row b of the
videos): the inter-feature contrastive loss of a weak and a strong score, plus the intra-feature Pearson
constraint at the video and the frame level.

* weak = 0.5·`sentence_video` + 0.5·`sentence_frame_weak` + 0.05·`sentence_patch_weak`,
  strong = 1·`sentence_frame_strong` + 0·`sentence_patch_strong` (logit-scaled);
* inter = 0.8·InfoNCE(weak) + 0.2·InfoNCE(strong), each InfoNCE symmetric (mean of both directions);
* intra = Pearson(s, v) + Pearson(s, v_frame) + 0·Pearson(s, v_patch), s the normalized sentences, v the video
  embeddings, v_frame and v_patch the paired text-gated features;
* loss = inter + `pearson_loss_weight` · intra (EERCF: 0.001).

The weights are EERCF's defaults (its released script keeps them). Imports only torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .pearson_constraint import pearson_constraint_loss

EERCF_WEAK_WEIGHTS = {"sentence_video": 0.5, "sentence_frame_weak": 0.5, "sentence_patch_weak": 0.05}
EERCF_STRONG_WEIGHTS = {"sentence_frame_strong": 1.0, "sentence_patch_strong": 0.0}
EERCF_INTER_WEIGHTS = {"weak": 0.8, "strong": 0.2}
EERCF_PEARSON_LEVEL_WEIGHTS = {"video": 1.0, "frame": 1.0, "patch": 0.0}
EERCF_PEARSON_LOSS_WEIGHT = 0.001


def weighted_sum(scores: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    return sum(weight * scores[name] for name, weight in weights.items())


def square_info_nce(logits: torch.Tensor) -> torch.Tensor:
    """Mean of the row and column cross-entropies of a (B, B) logits matrix whose diagonal holds the pairs."""
    targets = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def eercf_loss(
    scores: dict[str, torch.Tensor],
    logit_scale: torch.Tensor,
    sentence_embeds: torch.Tensor,
    paired_visual: dict[str, torch.Tensor],
    pearson_loss_weight: float = EERCF_PEARSON_LOSS_WEIGHT,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """
    Args:
        scores: the paired (training) TIB scores, `(B, B)` each, cosine scale (`TextGatedInteraction`).
        logit_scale: `()` the exponentiated logit scale.
        sentence_embeds (`(B, D)`): the normalized sentences.
        paired_visual: {`video`, `frame`, `patch`: `(B, D)`} from `TextGatedInteraction` with `paired=True`.
        pearson_loss_weight: the weight of the intra-feature term.

    Returns:
        the total loss and its parts: `weak`, `strong` (the two InfoNCE terms), `inter`, `pearson_video`,
        `pearson_frame`, `pearson_patch`, `intra`.
    """
    if sentence_embeds.shape[0] != paired_visual["video"].shape[0]:
        raise ValueError(
            f"EERCF's loss pairs row b of the texts with row b of the videos: got {sentence_embeds.shape[0]} texts "
            f"and {paired_visual['video'].shape[0]} videos."
        )
    parts = {
        "weak": square_info_nce(logit_scale * weighted_sum(scores, EERCF_WEAK_WEIGHTS)),
        "strong": square_info_nce(logit_scale * weighted_sum(scores, EERCF_STRONG_WEIGHTS)),
    }
    parts["inter"] = weighted_sum(parts, EERCF_INTER_WEIGHTS)
    for level in EERCF_PEARSON_LEVEL_WEIGHTS:
        parts[f"pearson_{level}"] = pearson_constraint_loss(sentence_embeds, paired_visual[level])
    parts["intra"] = sum(weight * parts[f"pearson_{level}"] for level, weight in EERCF_PEARSON_LEVEL_WEIGHTS.items())
    return parts["inter"] + pearson_loss_weight * parts["intra"], parts
