"""X-CLIP's learnable attention over similarity matrices (AOSM): the eight matrices of its similarity head, and the
pooling they enter.

X-CLIP (Ma et al., ACM MM 2022) scores a (text, video) pair at four levels and, at each, multiplies a level's
features or its softmax attention weights by a learnable matrix, all initialized to the identity (where they change
nothing) and trained with the new modules:

| alignment | matrix | shape | where it acts |
|---|---|---|---|
| `sentence_video` | `global_mat_weight` | (D, D) | `(s @ G) . v` |
| `word_video` | `word_logit_weight` | (L, L) | the softmax weights over the L word positions |
| `sentence_frame` | `frame_logit_weight` | (T, T) | the softmax weights over the T frame slots |
| `word_frame` | `local_mat_weight` | (D, D) | `(w @ G_local) . f` |
| | `frame_mat_weight`, `word_mat_weight` | (T, T), (L, L) | the first pooling, over frames / over words |
| | `frame_mat_weight2`, `word_mat_weight2` | (T, T), (L, L) | the second pooling, over frames / over words |

A matrix over positions mixes the attention weights: `w'_j = sum_i w_i M_ij`, and the pooled score is
`sum_j w'_j s_j`. The (L, L) and (T, T) matrices tie a model to `max_words` and `max_frames`: the model pads its
inputs to those lengths (`UniTriMModel`). UniTriM's own alignments (`triplet_frame`, `word_patch`) have no matrix.
Imports only torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .pooling import additive_mask

# The matrices of each alignment, by role (see `AlignmentMixing`).
AOSM_ALIGNMENT_MATRICES: dict[str, dict[str, str]] = {
    "sentence_video": {"text_transform": "global_mat_weight"},
    "word_video": {"text_first": "word_logit_weight"},
    "sentence_frame": {"visual_first": "frame_logit_weight"},
    "word_frame": {
        "text_transform": "local_mat_weight",
        "visual_first": "frame_mat_weight",
        "text_first": "word_mat_weight",
        "visual_second": "frame_mat_weight2",
        "text_second": "word_mat_weight2",
    },
}
# Each matrix's size: the joint embedding size D, the word positions L or the frame slots T.
AOSM_MATRIX_SIZES = {
    "global_mat_weight": "projection_dim",
    "local_mat_weight": "projection_dim",
    "word_logit_weight": "max_words",
    "word_mat_weight": "max_words",
    "word_mat_weight2": "max_words",
    "frame_logit_weight": "max_frames",
    "frame_mat_weight": "max_frames",
    "frame_mat_weight2": "max_frames",
}


class AOSMWeights(nn.Module):
    """
    The AOSM matrices of the enabled alignments (all eight with X-CLIP's four), identity-initialized (the model's
    `_init_weights`), named as in X-CLIP's code.

    Args:
        alignments: the enabled alignments; those without AOSM matrices are ignored.
        projection_dim: D. max_words: L, the text positions. max_frames: T, the frame slots.
    """

    def __init__(self, alignments: list[str], projection_dim: int, max_words: int, max_frames: int) -> None:
        super().__init__()
        sizes = {"projection_dim": projection_dim, "max_words": max_words, "max_frames": max_frames}
        for alignment in alignments:
            for name in AOSM_ALIGNMENT_MATRICES.get(alignment, {}).values():
                self.register_parameter(name, nn.Parameter(torch.eye(sizes[AOSM_MATRIX_SIZES[name]])))

    def reset_to_identity(self) -> None:
        """Set every matrix to the identity (X-CLIP's initialization)."""
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.eye(parameter.shape[0], dtype=parameter.dtype, device=parameter.device))

    def mixing_for(self, alignment: str) -> "AlignmentMixing | None":
        """The matrices of `alignment`, None for an alignment X-CLIP has no matrix for."""
        roles = AOSM_ALIGNMENT_MATRICES.get(alignment)
        if roles is None:
            return None
        missing = [name for name in roles.values() if not hasattr(self, name)]
        if missing:
            raise ValueError(f"The AOSM matrices {missing} of alignment {alignment!r} were not built.")
        return AlignmentMixing(self, roles)


@dataclass(frozen=True, eq=False)
class AlignmentMixing:
    """
    The AOSM matrices of one alignment, read from the module at every use (so they follow training and `.to()`).

    Roles: `text_transform` (D, D) multiplies the text units before the similarity; `visual_first` / `text_first`
    mix the weights of the first softmax pooling over the visual / text units (the only pooling when the other side
    has one unit); `visual_second` / `text_second` mix the weights of the second pooling.
    """

    weights: AOSMWeights
    roles: dict[str, str]

    def matrix(self, role: str) -> torch.Tensor | None:
        name = self.roles.get(role)
        return None if name is None else getattr(self.weights, name)


def mixed_softmax_pool(
    scaled: torch.Tensor, mask: torch.Tensor | None, dim: int, mixing: torch.Tensor | None
) -> torch.Tensor:
    """
    `sum_j w'_j * scaled_j` along `dim`, with `w = softmax(scaled)` over the valid entries and `w' = w @ mixing`
    (no mixing: `w' = w`); invalid entries get weight 0 after mixing too.

    Args:
        scaled: (..., n, ...) similarities divided by the temperature.
        mask: boolean broadcastable to `scaled`, true for valid entries; None when all are valid.
        dim: the pooled dimension, of length n.
        mixing: (n, n) or None.

    Returns:
        `scaled` with `dim` reduced (multiply by the temperature for the pooled similarity).
    """
    logits = scaled if mask is None else scaled + additive_mask(mask, scaled.dtype)
    weights = torch.softmax(logits, dim=dim).to(scaled.dtype)
    if mixing is not None:
        if mixing.shape[0] != scaled.shape[dim]:
            raise ValueError(
                f"An AOSM matrix of size {mixing.shape[0]} cannot pool {scaled.shape[dim]} positions; inputs must be "
                "padded to the config's max_words / max_frames."
            )
        weights = (weights.movedim(dim, -1) @ mixing.to(weights.dtype)).movedim(-1, dim)
        if mask is not None:
            weights = weights * mask.to(weights.dtype)
    return (weights * scaled).sum(dim)


def mixed_fine_grained_scores(
    text_units: torch.Tensor,
    text_mask: torch.Tensor | None,
    visual_units: torch.Tensor,
    visual_mask: torch.Tensor | None,
    temperature: float,
    mixing: AlignmentMixing,
) -> torch.Tensor:
    """
    X-CLIP's scoring of (text, visual) pairs with AOSM matrices: (texts, n_t, D) x (visuals, n_v, D) -> (texts,
    visuals). With one unit on one side, the single pooling over the other; else the mean of the two orders
    (visual first, then text; text first, then visual), as `pooling.pool_scaled_similarity`.

    Args:
        text_units: (num_texts, n_t, D) L2-normalized; text_mask: (num_texts, n_t) bool or None.
        visual_units: (num_visuals, n_v, D) L2-normalized; visual_mask: (num_visuals, n_v) bool or None.
        temperature: the softmax temperature (X-CLIP's 1e-2).
        mixing: the alignment's matrices.
    """
    transform = mixing.matrix("text_transform")
    if transform is not None:
        text_units = text_units @ transform.to(text_units.dtype)
    num_texts, text_length, dim = text_units.shape
    num_visuals, visual_length, _ = visual_units.shape
    scaled = ((text_units / temperature).reshape(-1, dim) @ visual_units.reshape(-1, dim).t()).view(
        num_texts, text_length, num_visuals, visual_length
    )
    text_mask_4d = None if text_mask is None else text_mask.bool()[:, :, None, None]
    visual_mask_4d = None if visual_mask is None else visual_mask.bool()[None, None]
    if text_length == 1 and visual_length == 1:
        return scaled[:, 0, :, 0] * temperature
    if visual_length == 1:
        pooled = mixed_softmax_pool(scaled[..., 0], None if text_mask is None else text_mask_4d[..., 0], 1, mixing.matrix("text_first"))
        return pooled * temperature
    first_over_visual = mixed_softmax_pool(scaled, visual_mask_4d, -1, mixing.matrix("visual_first"))
    if text_length == 1:
        return first_over_visual[:, 0] * temperature
    text_to_visual = mixed_softmax_pool(
        first_over_visual, None if text_mask is None else text_mask_4d[..., 0], 1, mixing.matrix("text_second")
    )
    first_over_text = mixed_softmax_pool(scaled, text_mask_4d, 1, mixing.matrix("text_first"))
    visual_to_text = mixed_softmax_pool(
        first_over_text, None if visual_mask is None else visual_mask.bool()[None], -1, mixing.matrix("visual_second")
    )
    return (text_to_visual + visual_to_text) / 2 * temperature
