"""UCoFiA's interactive similarity aggregation (ISA): its three alignment levels and the learnable matrices they
carry.

UCoFiA (Wang et al., ICCV 2023) scores a (text, video) pair at three levels and averages them:

| alignment | level | score |
|---|---|---|
| `sentence_video_bilinear` | video-sentence | `logit_scale * (s @ G) . (v @ G')` |
| `sentence_frame_isa` | frame-sentence | `logit_scale * isa(y)`, `y_f = s . g_f` over the T frame slots |
| `word_token_isa` | patch-word | two ISA poolings of `S_ip = (w_i @ Lm) . (p_p @ Lm')` (no logit scale) |

ISA pools a similarity vector `y` with weights that are themselves a softmax of mixed softmax weights:
`isa(y) = sum_j y_j softmax_j((softmax(y / tau) @ M)_j / tau)`, M a learnable (n, n) matrix, identity-initialized.
(X-CLIP's AOSM uses `softmax(y / tau) @ M` itself as the weights; ISA's second softmax makes them a distribution
again.) The patch-word level pools S (L words x P tokens) both ways, as X-CLIP's word-frame score: over the words
then the tokens, and over the tokens then the words, and averages the two. Its tokens p are the [CLS] and the top-K
selected patch tokens of every frame (`token_selection`), P = T (1 + K), *not* L2-normalized (UCoFiA's code
normalizes the words only), and its score is not multiplied by the logit scale.

The matrices, with UCoFiA's names:

| name | shape | role |
|---|---|---|
| `global_mat_weight`, `global_mat_weight_1` | (D, D) | G on the sentence, G' on the video embedding |
| `frame_logit_weight` | (T, T) | the frame-sentence ISA |
| `local_mat_weight`, `local_mat_weight1` | (D, D) | Lm on the words, Lm' on the tokens |
| `word_mat_weight`, `pixel_mat_weight` | (L, L), (P, P) | first poolings, over words / over tokens |
| `pixel_mat_weight2`, `word_mat_weight2` | (P, P), (L, L) | second poolings, over tokens / over words |

UCoFiA's evaluation code leaves `local_mat_weight1` out (its training code multiplies the tokens by it): with
`apply_token_transform_in_eval=False` the module does the same outside training. Imports only torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .pooling import additive_mask

# The matrices of each alignment, by role.
ISA_ALIGNMENT_MATRICES: dict[str, dict[str, str]] = {
    "sentence_video_bilinear": {"text_transform": "global_mat_weight", "visual_transform": "global_mat_weight_1"},
    "sentence_frame_isa": {"visual_first": "frame_logit_weight"},
    "word_token_isa": {
        "text_transform": "local_mat_weight",
        "visual_transform": "local_mat_weight1",
        "text_first": "word_mat_weight",
        "visual_first": "pixel_mat_weight",
        "visual_second": "pixel_mat_weight2",
        "text_second": "word_mat_weight2",
    },
}
# The role UCoFiA's evaluation code skips (see `ISAWeights`).
EVAL_OPTIONAL_ROLE = ("word_token_isa", "visual_transform")


def isa_matrix_sizes(projection_dim: int, max_words: int, max_frames: int, tokens_per_frame: int) -> dict[str, int]:
    """Each ISA matrix's size: D, L, T or P = T x `tokens_per_frame` (1 + K)."""
    tokens = max_frames * tokens_per_frame
    return {
        "global_mat_weight": projection_dim, "global_mat_weight_1": projection_dim,
        "local_mat_weight": projection_dim, "local_mat_weight1": projection_dim,
        "frame_logit_weight": max_frames,
        "word_mat_weight": max_words, "word_mat_weight2": max_words,
        "pixel_mat_weight": tokens, "pixel_mat_weight2": tokens,
    }


class ISAWeights(nn.Module):
    """
    The ISA matrices of the enabled UCoFiA alignments, identity-initialized (the model's `_init_weights`).

    Args:
        alignments: the enabled alignments; those without ISA matrices are ignored.
        projection_dim: D. max_words: L. max_frames: T. tokens_per_frame: 1 + K, the kept tokens of a frame.
        apply_token_transform_in_eval: whether `local_mat_weight1` multiplies the tokens outside training too
            (UCoFiA's evaluation code: no).
    """

    def __init__(
        self,
        alignments: list[str],
        projection_dim: int,
        max_words: int,
        max_frames: int,
        tokens_per_frame: int,
        apply_token_transform_in_eval: bool = False,
    ) -> None:
        super().__init__()
        self.apply_token_transform_in_eval = apply_token_transform_in_eval
        sizes = isa_matrix_sizes(projection_dim, max_words, max_frames, tokens_per_frame)
        for alignment in alignments:
            for name in ISA_ALIGNMENT_MATRICES.get(alignment, {}).values():
                self.register_parameter(name, nn.Parameter(torch.eye(sizes[name])))

    def mixing_for(self, alignment: str) -> "ISAMixing | None":
        """The matrices of `alignment`, None for an alignment without ISA matrices."""
        roles = ISA_ALIGNMENT_MATRICES.get(alignment)
        if roles is None:
            return None
        missing = [name for name in roles.values() if not hasattr(self, name)]
        if missing:
            raise ValueError(f"The ISA matrices {missing} of alignment {alignment!r} were not built.")
        return ISAMixing(self, roles, alignment)


@dataclass(frozen=True, eq=False)
class ISAMixing:
    """
    An alignment's ISA matrices, read from the module at every use (so they follow training, `.train()` /
    `.eval()` and `.to()`). Roles: `text_transform` / `visual_transform` (D, D) multiply the text / visual units
    before the similarity; `visual_first` / `text_first` are the matrices of the first pooling over the visual /
    text units, `visual_second` / `text_second` of the second.
    """

    weights: ISAWeights
    roles: dict[str, str]
    alignment: str

    def matrix(self, role: str) -> torch.Tensor | None:
        weights = self.weights
        if (self.alignment, role) == EVAL_OPTIONAL_ROLE and not (weights.training or weights.apply_token_transform_in_eval):
            return None
        name = self.roles.get(role)
        return None if name is None else getattr(weights, name)


def isa_pool(
    similarity: torch.Tensor, dim: int, mixing: torch.Tensor, temperature: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """
    `sum_j y_j softmax_j((softmax(y / tau) @ M)_j / tau)` along `dim`: ISA's pooling of a similarity vector.

    Args:
        similarity: (..., n, ...) similarities y.
        dim: the pooled dimension, of length n.
        mixing: (n, n) M.
        temperature: tau (UCoFiA: 1e-2).
        mask: boolean broadcastable to `similarity`, true for valid entries (both softmaxes skip the others); None
            when all are valid (UCoFiA's computation: every word position, frame slot and token).

    Returns:
        `similarity` with `dim` reduced.
    """
    if mixing.shape[0] != similarity.shape[dim]:
        raise ValueError(
            f"An ISA matrix of size {mixing.shape[0]} cannot pool {similarity.shape[dim]} positions; inputs must be "
            "padded to the config's max_words / max_frames (and keep 1 + token_selection_top_k tokens per frame)."
        )
    bias = None if mask is None else additive_mask(mask, similarity.dtype)
    first = similarity / temperature
    weights = torch.softmax(first if bias is None else first + bias, dim=dim)
    mixed = (weights.movedim(dim, -1) @ mixing.to(weights.dtype)).movedim(-1, dim) / temperature
    weights = torch.softmax(mixed if bias is None else mixed + bias, dim=dim)
    return (weights * similarity).sum(dim)


def _transformed(units: torch.Tensor, matrix: torch.Tensor | None) -> torch.Tensor:
    return units if matrix is None else units @ matrix.to(units.dtype)


def bilinear_sentence_video_scores(
    sentence: torch.Tensor, video: torch.Tensor, mixing: ISAMixing
) -> torch.Tensor:
    """(num_texts, D) x (num_videos, D) normalized -> (num_texts, num_videos) `(s @ G) . (v @ G')`."""
    text = _transformed(sentence, mixing.matrix("text_transform"))
    return text @ _transformed(video, mixing.matrix("visual_transform")).t()


def sentence_frame_isa_scores(
    sentence: torch.Tensor,
    frames: torch.Tensor,
    frame_mask: torch.Tensor | None,
    temperature: float,
    mixing: ISAMixing,
) -> torch.Tensor:
    """
    Args:
        sentence (`(num_texts, D)`): L2-normalized sentence features.
        frames (`(num_videos, T, D)`): L2-normalized frame features.
        frame_mask (`(num_videos, T)` bool, optional): None: every slot counts (UCoFiA).

    Returns:
        `(num_texts, num_videos)` ISA-pooled frame-sentence similarities.
    """
    similarity = torch.einsum("td,vfd->tvf", sentence, frames)
    mask = None if frame_mask is None else frame_mask.bool()[None]
    return isa_pool(similarity, -1, mixing.matrix("visual_first"), temperature, mask)


def word_token_isa_scores(
    words: torch.Tensor,
    word_mask: torch.Tensor | None,
    tokens: torch.Tensor,
    token_mask: torch.Tensor | None,
    temperature: float,
    mixing: ISAMixing,
) -> torch.Tensor:
    """
    UCoFiA's patch-word score: `S_ip = (w_i @ Lm) . (p_p @ Lm')`, pooled over words then tokens and over tokens
    then words (each by ISA), the mean of the two.

    Args:
        words (`(num_texts, L, D)`): L2-normalized word features; word_mask (`(num_texts, L)` bool) or None.
        tokens (`(num_videos, P, D)`): the kept tokens (not normalized); token_mask (`(num_videos, P)`) or None.
        temperature: tau; mixing: the alignment's matrices.

    Returns:
        `(num_texts, num_videos)` scores.
    """
    words = _transformed(words, mixing.matrix("text_transform"))
    tokens = _transformed(tokens, mixing.matrix("visual_transform"))
    num_texts, num_words, dim = words.shape
    num_videos, num_tokens, _ = tokens.shape
    similarity = (words.reshape(-1, dim) @ tokens.reshape(-1, dim).t()).view(num_texts, num_words, num_videos, num_tokens)
    word_mask_4d = None if word_mask is None else word_mask.bool()[:, :, None, None]
    token_mask_4d = None if token_mask is None else token_mask.bool()[None, None]
    per_token = isa_pool(similarity, 1, mixing.matrix("text_first"), temperature, word_mask_4d)  # (texts, videos, P)
    per_word = isa_pool(similarity, -1, mixing.matrix("visual_first"), temperature, token_mask_4d)  # (texts, L, videos)
    words_then_tokens = isa_pool(
        per_token, -1, mixing.matrix("visual_second"), temperature, None if token_mask is None else token_mask.bool()[None]
    )
    tokens_then_words = isa_pool(
        per_word, 1, mixing.matrix("text_second"), temperature, None if word_mask is None else word_mask.bool()[:, :, None]
    )
    return (words_then_tokens + tokens_then_words) / 2
