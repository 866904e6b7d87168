"""Shape checks of the model inputs: a wrong input fails here with its name and expected shape, not deep in torch."""

from __future__ import annotations

from typing import Any

import torch


def _describe(tensor: torch.Tensor) -> str:
    return f"shape {tuple(tensor.shape)}"


def check_tensor(name: str, tensor: torch.Tensor | None, expected: str, num_dims: int) -> torch.Tensor:
    """Raise `ValueError` unless `tensor` is a tensor with `num_dims` dims; `expected` names the dims."""
    if tensor is None:
        raise ValueError(f"`{name}` is required, a tensor of shape {expected}.")
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"`{name}` must be a torch.Tensor of shape {expected}, got {type(tensor).__name__}.")
    if tensor.dim() != num_dims:
        raise ValueError(f"`{name}` must have shape {expected} ({num_dims} dims), got {_describe(tensor)}.")
    return tensor


def check_same_leading_dims(name: str, tensor: torch.Tensor, reference_name: str, reference: torch.Tensor, dims: int) -> None:
    """Raise `ValueError` unless the first `dims` sizes of `tensor` equal those of `reference`."""
    if tensor.shape[:dims] != reference.shape[:dims]:
        raise ValueError(
            f"`{name}` ({_describe(tensor)}) must match `{reference_name}` ({_describe(reference)}) "
            f"in its first {dims} dim(s)."
        )


def check_text_inputs(
    input_ids: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    triplet_input_ids: torch.Tensor | None,
    triplet_attention_mask: torch.Tensor | None,
    triplet_mask: torch.Tensor | None,
    use_triplets: bool,
    max_triplets: int,
) -> torch.Tensor:
    """Validate the text inputs; returns the attention mask (all ones when None)."""
    check_tensor("input_ids", input_ids, "(batch_size, sequence_length)", 2)
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    check_tensor("attention_mask", attention_mask, "(batch_size, sequence_length)", 2)
    check_same_leading_dims("attention_mask", attention_mask, "input_ids", input_ids, 2)
    if not bool(attention_mask[:, 0].all()):
        raise ValueError("`attention_mask` must be 1 at the first (SOT) position of every caption.")
    if use_triplets:
        triplet_shape = "(batch_size, max_triplets, triplet_length)"
        check_tensor("triplet_input_ids", triplet_input_ids, triplet_shape, 3)
        check_tensor("triplet_attention_mask", triplet_attention_mask, triplet_shape, 3)
        check_tensor("triplet_mask", triplet_mask, "(batch_size, max_triplets)", 2)
        check_same_leading_dims("triplet_input_ids", triplet_input_ids, "input_ids", input_ids, 1)
        check_same_leading_dims("triplet_attention_mask", triplet_attention_mask, "triplet_input_ids", triplet_input_ids, 3)
        check_same_leading_dims("triplet_mask", triplet_mask, "triplet_input_ids", triplet_input_ids, 2)
        if triplet_input_ids.shape[1] > max_triplets:
            raise ValueError(
                f"`triplet_input_ids` has {triplet_input_ids.shape[1]} triplets per caption; the model takes at most "
                f"config.max_triplets={max_triplets}."
            )
    return attention_mask


def check_video_inputs(pixel_values_videos: torch.Tensor | None, video_mask: torch.Tensor | None) -> torch.Tensor:
    """Validate a video batch; returns the boolean frame mask (all true when None)."""
    check_tensor("pixel_values_videos", pixel_values_videos, "(batch_size, num_frames, 3, height, width)", 5)
    if video_mask is None:
        video_mask = torch.ones(pixel_values_videos.shape[:2], dtype=torch.bool, device=pixel_values_videos.device)
    check_tensor("video_mask", video_mask, "(batch_size, num_frames)", 2)
    check_same_leading_dims("video_mask", video_mask, "pixel_values_videos", pixel_values_videos, 2)
    video_mask = video_mask.bool()
    empty = (~video_mask.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"`video_mask` has no valid frame for video(s) at batch index {empty}: every video needs at least one "
            "frame (a video that failed to decode must be left out, not passed as all padding)."
        )
    holes = (video_mask[:, 1:] & ~video_mask[:, :-1]).any(dim=1).nonzero().flatten().tolist()
    if holes:
        raise ValueError(
            f"`video_mask` of video(s) at batch index {holes} has padding before a real frame: real frames come "
            "first (frame positions count from the first frame), padding after them."
        )
    return video_mask


def check_keyword_arguments(
    kwargs: dict[str, Any], accepted: tuple[str, ...], ignored: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The `accepted` keyword arguments of `kwargs` (`ignored` ones dropped); any other raises `ValueError`
    naming it, rather than being passed on and silently unused."""
    unexpected = sorted(set(kwargs) - set(accepted) - set(ignored))
    if unexpected:
        raise ValueError(f"Unexpected inputs {unexpected}; besides the tensors, the model takes {list(accepted)}.")
    return {name: value for name, value in kwargs.items() if name in accepted}


def check_image_inputs(pixel_values: torch.Tensor | None) -> torch.Tensor:
    """Validate an image batch."""
    return check_tensor("pixel_values", pixel_values, "(batch_size, 3, height, width)", 4)


def check_same_batch_size(sizes: dict[str, int]) -> None:
    """Raise `ValueError` when the named batch sizes differ (texts and visuals are paired row by row)."""
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name}: {size}" for name, size in sizes.items())
        raise ValueError(f"Paired inputs must have the same batch size; got {listed}.")


def pad_to_fixed_length(
    values: torch.Tensor,
    mask: torch.Tensor,
    length: int,
    name: str,
    config_field: str,
    fixed_by: str = "this model's AOSM matrices are sized for",
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Pad `values` (B, n, ...) and its mask (B, n) with zeros to `length` positions along dim 1, for a model whose
    weights are sized for exactly `length` (X-CLIP's AOSM matrices) or that computes on exactly `length` slots
    (TS2-Net's token shift); more than `length` raises `ValueError` naming `name`, the config field and
    `fixed_by` (what ties the model to that length).
    """
    current = values.shape[1]
    if current > length:
        raise ValueError(
            f"`{name}` has {current} positions but {fixed_by} "
            f"config.{config_field}={length}: pass at most {length} (e.g. the processor's max_length / num_frames)."
        )
    if current == length:
        return values, mask
    padding = length - current
    padded_values = torch.cat([values, values.new_zeros(values.shape[0], padding, *values.shape[2:])], dim=1)
    padded_mask = torch.cat([mask, mask.new_zeros(mask.shape[0], padding)], dim=1)
    return padded_values, padded_mask
