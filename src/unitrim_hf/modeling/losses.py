"""Training objective: symmetric InfoNCE on text-video and text-keyframe logits, plus the disentangler terms.

The model scores its features with `contrastive_logits` and hands the loss the logits (and the text features for
the disentangler terms). Features are gathered from all processes with an autograd-aware all-gather, and each
process scores its local texts against all videos and all texts against its local videos, so the cost per process
grows with the global batch, not with its square. The gather's backward sums, for each shard, the
gradients that every process's loss sends it; with DDP averaging the parameter gradients, training on W processes
follows the gradient of the single-process loss on the global batch exactly. (Gathering with a gradient for the
local shard only would drop the terms where a shard serves as another process's negatives.) A step that scores its
texts against videos and keyframes gathers the texts once (`contrastive_logits` takes both modalities).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence, TypeVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .alignment_table import SCORED_TEXT_FIELDS, SCORED_VISUAL_FIELDS
from .disentanglement import orthogonality_loss, reconstruction_loss
from .mgsa_scorer import MGSAScorer
from .modeling_outputs import UniTriMTextFeatures, UniTriMVisualFeatures

Features = TypeVar("Features", UniTriMTextFeatures, UniTriMVisualFeatures)


def distributed_world() -> tuple[int, int]:
    """(rank, world_size) of the default process group, (0, 1) when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _AllGatherWithGradient(torch.autograd.Function):
    """All-gather whose backward sums each shard's gradient over all processes and returns it to its owner."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        ctx.rank = dist.get_rank()
        shards = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(shards, tensor.contiguous())
        return torch.stack(shards)

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
        gradient = gradient.contiguous()
        dist.all_reduce(gradient)
        return gradient[ctx.rank]


def _gathered_shapes(tensors: list[torch.Tensor]) -> torch.Tensor:
    """(world_size, num_tensors, max_dims) shapes of `tensors` on every process, exchanged in one collective."""
    max_dims = max(tensor.dim() for tensor in tensors)
    shapes = torch.zeros(len(tensors), max_dims, dtype=torch.long, device=tensors[0].device)
    for row, tensor in enumerate(tensors):
        shapes[row, : tensor.dim()] = torch.tensor(tensor.shape)
    all_shapes = [torch.zeros_like(shapes) for _ in range(dist.get_world_size())]
    dist.all_gather(all_shapes, shapes)
    return torch.stack(all_shapes)


def _gather_padded(tensor: torch.Tensor, shapes_of_ranks: torch.Tensor) -> torch.Tensor:
    """Zero-pad `tensor` to the largest shape of any process, gather, and trim each shard to its batch size."""
    max_shape = shapes_of_ranks.max(dim=0).values[: tensor.dim()].tolist()
    original_dtype = tensor.dtype
    transport = tensor.to(torch.uint8) if original_dtype == torch.bool else tensor
    padding = []
    for size, target in zip(reversed(transport.shape), reversed(max_shape)):
        padding += [0, target - size]
    padded = F.pad(transport, padding)
    if padded.is_floating_point():
        shards = _AllGatherWithGradient.apply(padded)
    else:
        shards = [torch.zeros_like(padded) for _ in range(shapes_of_ranks.shape[0])]
        dist.all_gather(shards, padded.contiguous())
    batch_sizes = shapes_of_ranks[:, 0].tolist()
    gathered = torch.cat([shard[:size] for shard, size in zip(shards, batch_sizes)], dim=0)
    return gathered.bool() if original_dtype == torch.bool else gathered


# Fields the scorer's alignments declare they read; the others (disentangler internals, patch indices) stay
# local. A tuple: every process must gather them in the same order. Text and visual features share a field name
# (`pooler_output`), listed once.
# EERCF's text-gated interaction block also reads the encoded frames (`text_gated_interaction`).
TEXT_GATED_FIELDS = ("encoded_frame_embeds",)
_SCORED_FIELDS = tuple(dict.fromkeys(SCORED_TEXT_FIELDS + SCORED_VISUAL_FIELDS + TEXT_GATED_FIELDS))


def gather_features(features: Features) -> tuple[Features, int]:
    """
    Gather the scored fields of a feature batch from all processes, with gradient (see `_AllGatherWithGradient`).

    Processes may differ in batch size and in the other dims (e.g. text length): shards are zero-padded to the
    largest shape (zero means "invalid" in the masks), gathered, and trimmed back to their batch sizes.

    Returns:
        the gathered features (unscored fields set to None) and the offset of the local rows in them.
    """
    rank, world_size = distributed_world()
    if world_size == 1:
        return features, 0
    names = [name for name in _SCORED_FIELDS if isinstance(getattr(features, name, None), torch.Tensor)]
    shapes = _gathered_shapes([getattr(features, name) for name in names])
    gathered = {name: _gather_padded(getattr(features, name), shapes[:, position]) for position, name in enumerate(names)}
    offset = int(shapes[:rank, 0, 0].sum())
    return replace(features, **{name: gathered.get(name) for name in features.tensor_field_names()}), offset


def symmetric_info_nce(
    logits_per_text: torch.Tensor, logits_per_visual: torch.Tensor, targets: torch.Tensor, shard_weight: float = 1.0
) -> torch.Tensor:
    """
    Mean of the text-to-visual and visual-to-text cross-entropies.

    Args:
        logits_per_text: (local texts, all visuals).
        logits_per_visual: (local visuals, all texts).
        targets: (local batch,) index of each local pair in the gathered batch.
        shard_weight: local batch * world size / global batch; with DDP averaging the processes' gradients,
            this weights every row of the global batch equally when shards differ in size.
    """
    per_direction = F.cross_entropy(logits_per_text, targets) + F.cross_entropy(logits_per_visual, targets)
    return shard_weight * per_direction / 2


@dataclass
class ContrastiveLogits:
    """
    Logits of paired texts and visuals (row i of each is a positive pair) over the global batch.

    Args:
        per_text (`(local batch, global batch)`): the local texts against all visuals.
        per_visual (`(local batch, global batch)`): the local visuals against all texts.
        targets (`(local batch,)`): index of each local pair in the gathered batch.
        shard_weight: local batch * world size / global batch (1 on one process).
    """

    per_text: torch.Tensor
    per_visual: torch.Tensor
    targets: torch.Tensor
    shard_weight: float = 1.0


def contrastive_logits(
    scorer: MGSAScorer, logit_scale: torch.Tensor, text_features: UniTriMTextFeatures,
    visual_features: Sequence[UniTriMVisualFeatures | None],
) -> list[ContrastiveLogits | None]:
    """
    Score paired texts and visuals for the contrastive loss, gathering the other processes' features.

    Args:
        text_features: the local batch of B texts.
        visual_features: one local batch of B visuals per modality (videos, keyframes; None for an absent one).
            The texts are gathered once, whatever the number of modalities.

    Returns:
        one `ContrastiveLogits` per modality (None where its visuals are None).
    """
    for visuals in visual_features:
        if visuals is not None and text_features.batch_size != visuals.batch_size:
            raise ValueError(
                f"The contrastive loss pairs row i of the texts with row i of the visuals: got "
                f"{text_features.batch_size} texts and {visuals.batch_size} visuals."
            )
    all_texts, offset = gather_features(text_features)  # the identity on one process
    return [None if visuals is None else _paired_logits(scorer, logit_scale, text_features, all_texts, offset, visuals)
            for visuals in visual_features]


def _paired_logits(
    scorer: MGSAScorer, logit_scale: torch.Tensor, text_features: UniTriMTextFeatures,
    all_texts: UniTriMTextFeatures, offset: int, visual_features: UniTriMVisualFeatures,
) -> ContrastiveLogits:
    """`ContrastiveLogits` of the local texts and visuals, given the gathered texts and the local rows' offset."""
    _, world_size = distributed_world()
    local_batch = text_features.batch_size
    if world_size == 1:
        per_text = _batch_logits(scorer, logit_scale, text_features, visual_features)
        return ContrastiveLogits(per_text, per_text.t(), torch.arange(local_batch, device=per_text.device))
    all_visuals, _ = gather_features(visual_features)
    per_text = _batch_logits(scorer, logit_scale, text_features, all_visuals)
    per_visual = _batch_logits(scorer, logit_scale, all_texts, visual_features).t()
    targets = torch.arange(local_batch, device=per_text.device) + offset
    return ContrastiveLogits(per_text, per_visual, targets, local_batch * world_size / per_text.shape[1])


def _batch_logits(
    scorer: MGSAScorer, logit_scale: torch.Tensor, text_features: UniTriMTextFeatures,
    visual_features: UniTriMVisualFeatures,
) -> torch.Tensor:
    """(num_texts, num_visuals) logits of a training batch, in one differentiable block."""
    return scorer.similarity(text_features, visual_features, logit_scale, max_block_elements=None).logits


def contrastive_loss(logits: ContrastiveLogits) -> torch.Tensor:
    """Symmetric InfoNCE of one modality's `ContrastiveLogits`."""
    return symmetric_info_nce(logits.per_text, logits.per_visual, logits.targets, logits.shard_weight)


class UniTriMLoss(nn.Module):
    """
    `L = InfoNCE(text, video) + w_image * InfoNCE(text, keyframe) + lambda_rec * L_rec + lambda_orth * L_orth`.

    Holds no parameters: it receives the text features and the logits the model's scorer computed.
    """

    def __init__(self, image_loss_weight: float, reconstruction_loss_weight: float, orthogonality_loss_weight: float):
        super().__init__()
        self.image_loss_weight = image_loss_weight
        self.reconstruction_loss_weight = reconstruction_loss_weight
        self.orthogonality_loss_weight = orthogonality_loss_weight

    def forward(
        self,
        text_features: UniTriMTextFeatures,
        video_logits: ContrastiveLogits | None = None,
        image_logits: ContrastiveLogits | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """
        Args:
            text_features: the local texts' features (for the disentangler terms).
            video_logits, image_logits: `contrastive_logits` of the texts with their videos and keyframes (None
                for an absent modality).

        Returns:
            total loss and its unweighted components.
        """
        if video_logits is None and image_logits is None:
            raise ValueError("The loss needs pixel_values_videos, pixel_values or both next to the texts.")
        losses: dict[str, torch.Tensor] = {}
        total = text_features.sentence_embeds.new_zeros(())
        shard_weight = 1.0
        if video_logits is not None:
            losses["text_video"] = contrastive_loss(video_logits)
            total = total + losses["text_video"]
            shard_weight = video_logits.shard_weight
        if image_logits is not None:
            losses["text_image"] = contrastive_loss(image_logits)
            total = total + self.image_loss_weight * losses["text_image"]
            shard_weight = image_logits.shard_weight
        if text_features.reconstructed_embeds is not None:
            # Neither term reaches the text tower (see disentanglement.py): they cannot collapse the text features.
            losses["reconstruction"] = reconstruction_loss(text_features.reconstructed_embeds, text_features.combined_embeds)
            losses["orthogonality"] = orthogonality_loss(text_features.spatial_embeds, text_features.temporal_embeds)
            total = total + shard_weight * (
                self.reconstruction_loss_weight * losses["reconstruction"]
                + self.orthogonality_loss_weight * losses["orthogonality"]
            )
        return total, losses
