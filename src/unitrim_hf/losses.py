"""Training objective: symmetric InfoNCE on text-video and text-keyframe logits, plus the disentangler terms.

Features are gathered from all processes before the contrastive terms with an autograd-aware all-gather, and
each process scores its local texts against all videos and all texts against its local videos, so the cost per
process grows with the global batch, not with its square. The gather's backward sums, for each shard, the
gradients that every process's loss sends it; with DDP averaging the parameter gradients, training on W processes
follows the gradient of the single-process loss on the global batch exactly. (Gathering with a gradient for the
local shard only would drop the terms where a shard serves as another process's negatives.)
"""

from __future__ import annotations

from typing import Callable, TypeVar

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as distributed_autograd
import torch.nn.functional as F
from torch import nn

from .disentanglement import orthogonality_loss, reconstruction_loss
from .modeling_outputs import UniTriMTextFeatures, UniTriMVisualFeatures

Features = TypeVar("Features", UniTriMTextFeatures, UniTriMVisualFeatures)
ScoreFunction = Callable[[UniTriMTextFeatures, UniTriMVisualFeatures], torch.Tensor]


def distributed_world() -> tuple[int, int]:
    """(rank, world_size) of the default process group, (0, 1) when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_gradient(tensor: torch.Tensor) -> tuple[torch.Tensor, int]:
    """
    Concatenate `tensor` from all processes along dim 0; floating-point tensors keep their autograd graph (the
    backward returns to each process the sum of the gradients of all processes' losses for its shard).

    Processes may differ in batch size and in the other dims (e.g. text length); every shard is zero-padded to
    the largest shape (zero means "invalid" in the masks), gathered, and trimmed back to its batch size.

    Returns:
        the gathered tensor (sum of batch sizes, *max other dims) and the offset of the local rows in it.
    """
    rank, world_size = distributed_world()
    if world_size == 1:
        return tensor, 0
    device = tensor.device
    shape = torch.tensor(tensor.shape, device=device, dtype=torch.long)
    all_shapes = [torch.zeros_like(shape) for _ in range(world_size)]
    dist.all_gather(all_shapes, shape)
    max_shape = torch.stack(all_shapes).max(dim=0).values.tolist()

    original_dtype = tensor.dtype
    transport = tensor.to(torch.uint8) if original_dtype == torch.bool else tensor
    padding = []
    for size, target in zip(reversed(transport.shape), reversed(max_shape)):
        padding += [0, target - size]
    padded = F.pad(transport, padding)
    if padded.is_floating_point():
        shards = list(distributed_autograd.all_gather(padded))
    else:
        shards = [torch.zeros_like(padded) for _ in range(world_size)]
        dist.all_gather(shards, padded.contiguous())
    batch_sizes = [int(shape_of_rank[0]) for shape_of_rank in all_shapes]
    gathered = torch.cat([shard[:size] for shard, size in zip(shards, batch_sizes)], dim=0)
    if original_dtype == torch.bool:
        gathered = gathered.bool()
    return gathered, sum(batch_sizes[:rank])


def gather_features(features: Features) -> tuple[Features, int]:
    """Gather every tensor field of a feature batch across processes; returns the features and the local offset."""
    offsets = []

    def gather(tensor: torch.Tensor) -> torch.Tensor:
        gathered, offset = gather_with_gradient(tensor)
        offsets.append(offset)
        return gathered

    gathered = features.map_tensors(gather)
    return gathered, offsets[0]


def symmetric_info_nce(logits_per_text: torch.Tensor, logits_per_visual: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """
    Mean of the text-to-visual and visual-to-text cross-entropies.

    Args:
        logits_per_text: (local texts, all visuals).
        logits_per_visual: (local visuals, all texts).
        targets: (local batch,) index of each local pair in the gathered batch.
    """
    return (F.cross_entropy(logits_per_text, targets) + F.cross_entropy(logits_per_visual, targets)) / 2


def contrastive_terms(
    score: ScoreFunction, text_features: UniTriMTextFeatures, visual_features: UniTriMVisualFeatures
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Symmetric InfoNCE of paired texts and visuals (row i of each is a positive pair), over the global batch.

    Returns:
        the loss and the logits of the local texts against all visuals (local batch, global batch).
    """
    if text_features.batch_size != visual_features.batch_size:
        raise ValueError(
            f"The contrastive loss pairs row i of the texts with row i of the visuals: got {text_features.batch_size} "
            f"texts and {visual_features.batch_size} visuals."
        )
    _, world_size = distributed_world()
    local_batch = text_features.batch_size
    if world_size == 1:
        logits_per_text = score(text_features, visual_features)
        targets = torch.arange(local_batch, device=logits_per_text.device)
        return symmetric_info_nce(logits_per_text, logits_per_text.t(), targets), logits_per_text
    all_texts, offset = gather_features(text_features)
    all_visuals, _ = gather_features(visual_features)
    logits_per_text = score(text_features, all_visuals)
    logits_per_visual = score(all_texts, visual_features).t()
    targets = torch.arange(local_batch, device=logits_per_text.device) + offset
    return symmetric_info_nce(logits_per_text, logits_per_visual, targets), logits_per_text


class UniTriMLoss(nn.Module):
    """
    `L = InfoNCE(text, video) + w_image * InfoNCE(text, keyframe) + lambda_rec * L_rec + lambda_orth * L_orth`.

    Holds no parameters: the scoring function (with the model's logit scale) is passed in.
    """

    def __init__(self, image_loss_weight: float, reconstruction_loss_weight: float, orthogonality_loss_weight: float):
        super().__init__()
        self.image_loss_weight = image_loss_weight
        self.reconstruction_loss_weight = reconstruction_loss_weight
        self.orthogonality_loss_weight = orthogonality_loss_weight

    def forward(
        self,
        score: ScoreFunction,
        text_features: UniTriMTextFeatures,
        video_features: UniTriMVisualFeatures | None = None,
        image_features: UniTriMVisualFeatures | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None, torch.Tensor | None]:
        """
        Returns:
            total loss, its unweighted components, text-video logits and text-image logits (local texts against
            the gathered visuals; None for an absent modality).
        """
        if video_features is None and image_features is None:
            raise ValueError("The loss needs pixel_values_videos, pixel_values or both next to the texts.")
        losses: dict[str, torch.Tensor] = {}
        total = text_features.sentence_embeds.new_zeros(())
        logits_per_text_video = logits_per_text_image = None
        if video_features is not None:
            losses["text_video"], logits_per_text_video = contrastive_terms(score, text_features, video_features)
            total = total + losses["text_video"]
        if image_features is not None:
            losses["text_image"], logits_per_text_image = contrastive_terms(score, text_features, image_features)
            total = total + self.image_loss_weight * losses["text_image"]
        if text_features.reconstructed_embeds is not None:
            losses["reconstruction"] = reconstruction_loss(
                text_features.reconstructed_embeds, text_features.combined_embeds
            )
            losses["orthogonality"] = orthogonality_loss(text_features.spatial_embeds, text_features.temporal_embeds)
            total = (
                total
                + self.reconstruction_loss_weight * losses["reconstruction"]
                + self.orthogonality_loss_weight * losses["orthogonality"]
            )
        return total, losses, logits_per_text_video, logits_per_text_image
