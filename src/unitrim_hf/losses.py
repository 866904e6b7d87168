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


# Fields the scoring function reads; the others (disentangler internals, patch indices) stay local. A tuple:
# every process must gather them in the same order.
_SCORED_FIELDS = (
    "sentence_embeds", "word_mask", "word_embeds", "triplet_embeds", "triplet_mask", "combined_embeds", "spatial_embeds",
    "video_embeds", "frame_embeds", "video_mask", "patch_embeds",
)


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
    values = {name: None for name in features.__dataclass_fields__ if isinstance(getattr(features, name), torch.Tensor)}
    for position, name in enumerate(names):
        values[name] = _gather_padded(getattr(features, name), shapes[:, position])
    offset = int(shapes[:rank, 0, 0].sum())
    return type(features)(**{**features.__dict__, **values}), offset


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


def contrastive_terms(
    score: ScoreFunction, text_features: UniTriMTextFeatures, visual_features: UniTriMVisualFeatures
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """
    Symmetric InfoNCE of paired texts and visuals (row i of each is a positive pair), over the global batch.

    Returns:
        the loss, the logits of the local texts against all visuals (local batch, global batch), and the shard
        weight (local batch * world size / global batch; 1 on one process).
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
        return symmetric_info_nce(logits_per_text, logits_per_text.t(), targets), logits_per_text, 1.0
    all_texts, offset = gather_features(text_features)
    all_visuals, _ = gather_features(visual_features)
    logits_per_text = score(text_features, all_visuals)
    logits_per_visual = score(all_texts, visual_features).t()
    targets = torch.arange(local_batch, device=logits_per_text.device) + offset
    shard_weight = local_batch * world_size / logits_per_text.shape[1]
    return symmetric_info_nce(logits_per_text, logits_per_visual, targets, shard_weight), logits_per_text, shard_weight


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
        shard_weight = 1.0
        if video_features is not None:
            losses["text_video"], logits_per_text_video, shard_weight = contrastive_terms(
                score, text_features, video_features
            )
            total = total + losses["text_video"]
        if image_features is not None:
            losses["text_image"], logits_per_text_image, shard_weight = contrastive_terms(
                score, text_features, image_features
            )
            total = total + self.image_loss_weight * losses["text_image"]
        if text_features.reconstructed_embeds is not None:
            # Neither term reaches the text tower (see disentanglement.py): they cannot collapse the text features.
            losses["reconstruction"] = reconstruction_loss(text_features.reconstructed_embeds, text_features.combined_embeds)
            losses["orthogonality"] = orthogonality_loss(text_features.spatial_embeds, text_features.temporal_embeds)
            total = total + shard_weight * (
                self.reconstruction_loss_weight * losses["reconstruction"]
                + self.orthogonality_loss_weight * losses["orthogonality"]
            )
        return total, losses, logits_per_text_video, logits_per_text_image
