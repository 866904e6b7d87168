"""TS2-Net's token shift: in chosen layers of the CLIP vision tower, some whole patch tokens of each frame are
exchanged with the same tokens of the neighbouring frames before self-attention.

The shift is applied by forward pre-hooks on the attention modules of the named `CLIPEncoderLayer`s, so the vision
tower keeps transformers' CLIP modules and weight names: a model without `token_shift_layers` has no hooks and
computes CLIP's features, and CLIP checkpoints load unchanged. The shift acts on the attention's input (the
layer-normed hidden states), not on the residual stream, and needs to know how many consecutive rows of the frame
batch form one video: `TemporalTokenShift.frames(num_frames)` says so for the duration of a call. Outside such a
call (a still image through the plain tower) the hooks do nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

# Token positions (counted from the [CLS] token at 0) whose first member takes the previous frame's token and the
# next frame's token; both repeat every `len(tokens) // divisor` positions.
FROM_PREVIOUS_FRAME_START = 1
FROM_NEXT_FRAME_START = 4


def shift_tokens(hidden_states: torch.Tensor, num_frames: int, divisor: int) -> torch.Tensor:
    """
    Exchange whole tokens between neighbouring frames of each video.

    With `stride = N // divisor` (N tokens per frame, [CLS] included), the tokens at positions 1, 1 + stride,
    1 + 2·stride, ... of frame t are replaced by those of frame t − 1 (frame 0 keeps its own), then the tokens at
    positions 4, 4 + stride, ... by those of frame t + 1 (the last frame keeps its own). The [CLS] token never moves.
    Where the two position sets overlap (small strides) the second replacement wins.

    Args:
        hidden_states (`(B·T, N, C)`): token states of B videos of `num_frames` consecutive frames each.
        num_frames (`int`): T.
        divisor (`int`): the number of position groups (TS2-Net: 7, i.e. a stride of 7 for ViT-B/32's 50 tokens).

    Returns:
        `(B·T, N, C)` the shifted states (a new tensor; the input is not modified).
    """
    rows, num_tokens, channels = hidden_states.shape
    if num_frames < 1 or rows % num_frames:
        raise ValueError(
            f"Token shift needs whole videos: {rows} frames in the batch is not a multiple of {num_frames} frames "
            "per video."
        )
    stride = num_tokens // divisor
    if stride < 1:
        raise ValueError(f"Token shift: {num_tokens} tokens per frame is fewer than token_shift_divisor={divisor}.")
    videos = hidden_states.reshape(rows // num_frames, num_frames, num_tokens, channels)
    shifted = videos.clone()
    from_previous = torch.arange(FROM_PREVIOUS_FRAME_START, num_tokens, stride, device=hidden_states.device)
    from_next = torch.arange(FROM_NEXT_FRAME_START, num_tokens, stride, device=hidden_states.device)
    shifted[:, 1:, from_previous] = videos[:, :-1, from_previous]
    shifted[:, :-1, from_next] = videos[:, 1:, from_next]
    return shifted.reshape(rows, num_tokens, channels)


class TemporalTokenShift:
    """
    Token shift hooked into the attention of chosen layers of a CLIP vision tower (`CLIPVisionModel`).

    Args:
        vision_tower: the tower; its `encoder.layers[i].self_attn` get the hooks.
        layers: indices of the encoder layers whose attention input is shifted (TS2-Net: 10 and 11 of 12).
        divisor: see `shift_tokens`.
    """

    def __init__(self, vision_tower: nn.Module, layers: Sequence[int], divisor: int) -> None:
        encoder_layers = vision_tower.encoder.layers
        bad = [index for index in layers if not 0 <= index < len(encoder_layers)]
        if bad:
            raise ValueError(
                f"token_shift_layers {list(layers)}: {bad} out of range for a vision tower of {len(encoder_layers)} layers."
            )
        self.layers = tuple(layers)
        self.divisor = divisor
        self.num_frames: int | None = None
        for index in self.layers:
            encoder_layers[index].self_attn.register_forward_pre_hook(self._shift_attention_input, with_kwargs=True)

    @contextmanager
    def frames(self, num_frames: int) -> Iterator[None]:
        """Within this context, every `num_frames` consecutive rows of the tower's batch are one video."""
        previous, self.num_frames = self.num_frames, num_frames
        try:
            yield
        finally:
            self.num_frames = previous

    def _shift_attention_input(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        if self.num_frames is None:
            return None
        if args:
            return (shift_tokens(args[0], self.num_frames, self.divisor), *args[1:]), kwargs
        kwargs = {**kwargs, "hidden_states": shift_tokens(kwargs["hidden_states"], self.num_frames, self.divisor)}
        return args, kwargs
