"""TS2-Net's token selection: per frame, a scorer rates every patch token against the frame's [CLS] token, a
perturbed top-K picks K patches, and the frame keeps [CLS] plus those K (in their spatial order).

The perturbed top-K (Berthet et al.'s perturbed optimizer, as TS2-Net uses it) adds Gaussian noise σ·ε to the
scores, takes the hard top-K of each of S noisy copies, sorts the K picked positions, and averages the S one-hot
selections: slot k of a frame is a convex combination of patches. Its gradient is TS2-Net's estimator (below).
Without noise (σ → 0) it is the plain top-K, which `hard_top_k_indicators` computes directly.
"""

from __future__ import annotations

import torch
from torch import nn


class TokenScorer(nn.Module):
    """
    Scores of every token of a frame: `tanh(w₂ᵀ GELU(W₁ [h_i ; h_cls]))` with `h = GELU(W₀ LN(x))` (bias-free
    linear layers, hidden width D/2): each token's own features beside the frame's [CLS] features.

    Args:
        embed_dim: D, the width of the (projected) tokens.
    """

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        hidden = embed_dim // 2
        self.input_norm = nn.LayerNorm(embed_dim)
        self.input_proj = nn.Linear(embed_dim, hidden, bias=False)
        self.hidden_proj = nn.Linear(2 * hidden, hidden, bias=False)
        self.score_proj = nn.Linear(hidden, 1, bias=False)
        self.activation = nn.GELU()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(F, N, D) tokens of F frames, [CLS] first -> (F, N) scores in (−1, 1)."""
        hidden = self.activation(self.input_proj(self.input_norm(tokens)))
        with_frame = torch.cat([hidden, hidden[:, :1].expand_as(hidden)], dim=-1)
        return torch.tanh(self.score_proj(self.activation(self.hidden_proj(with_frame)))).squeeze(-1)


class _PerturbedTopK(torch.autograd.Function):
    """Forward: mean over samples of the sorted top-K one-hots of the perturbed scores. Backward (TS2-Net's
    estimator): d scores[p] = Σ_k grad[k, p] · mean_s(onehot_s[k, p] · ε_s[p]) / σ, i.e. only the entries of patch p
    of the usual estimator's Jacobian reach score p."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, k: int, sigma: float, noise: torch.Tensor) -> torch.Tensor:
        frames, num_samples, num_patches = noise.shape
        perturbed = scores[:, None, :] + sigma * noise
        picked = torch.topk(perturbed, k, dim=-1, sorted=False).indices.sort(dim=-1).values  # (F, S, K)
        counts = scores.new_zeros(frames, k, num_patches)
        slots = picked.transpose(1, 2)  # (F, K, S)
        counts.scatter_add_(2, slots, torch.ones_like(slots, dtype=scores.dtype))
        ctx.save_for_backward(picked, noise)
        ctx.sigma = sigma
        return counts / num_samples

    @staticmethod
    def backward(ctx, grad_indicators: torch.Tensor):
        picked, noise = ctx.saved_tensors
        num_samples = noise.shape[1]
        slots = picked.transpose(1, 2)  # (F, K, S)
        noise_at_slots = noise.gather(2, picked).transpose(1, 2)  # ε_s at the k-th picked patch of sample s
        expected = grad_indicators.new_zeros(grad_indicators.shape)
        expected.scatter_add_(2, slots, noise_at_slots.to(grad_indicators.dtype))
        expected = expected / num_samples / ctx.sigma
        return (grad_indicators * expected).sum(dim=1), None, None, None


def perturbed_top_k_indicators(
    scores: torch.Tensor, k: int, num_samples: int, sigma: float, noise: torch.Tensor | None = None
) -> torch.Tensor:
    """
    Args:
        scores (`(F, P)`): patch scores of F frames.
        k, num_samples, sigma: K, S and σ.
        noise (`(F, S, P)`, optional): the standard normal draws ε; drawn from torch's global generator when None.

    Returns:
        `(F, K, P)` indicators: row k is the frequency with which each patch is the k-th picked (in spatial order).
    """
    if noise is None:
        noise = torch.randn(scores.shape[0], num_samples, scores.shape[1], dtype=scores.dtype, device=scores.device)
    elif noise.shape != (scores.shape[0], num_samples, scores.shape[1]):
        raise ValueError(f"noise must have shape {(scores.shape[0], num_samples, scores.shape[1])}, got {tuple(noise.shape)}.")
    return _PerturbedTopK.apply(scores, k, sigma, noise.to(scores.dtype))


def hard_top_k_indicators(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(F, P) scores -> (F, K, P) one-hots of the K best patches in spatial order (the σ → 0 limit)."""
    picked = torch.topk(scores, k, dim=-1, sorted=False).indices.sort(dim=-1).values
    return torch.zeros(*picked.shape, scores.shape[-1], dtype=scores.dtype, device=scores.device).scatter_(
        2, picked[..., None], 1.0
    )


class TokenSelector(nn.Module):
    """
    [CLS] plus K selected patch tokens per frame.

    Args:
        embed_dim: D.
        top_k: K, patches kept besides [CLS] (TS2-Net: 3).
        num_samples, sigma: S and σ of the perturbed top-K (TS2-Net: 500 and 0.05).
        eval_selection: `"perturbed"` (TS2-Net's evaluation: the same sampled selection as in training) or
            `"hard"` (the deterministic σ → 0 limit) outside training.
    """

    def __init__(self, embed_dim: int, top_k: int, num_samples: int, sigma: float, eval_selection: str) -> None:
        super().__init__()
        self.scorer = TokenScorer(embed_dim)
        self.top_k = top_k
        self.num_samples = num_samples
        self.sigma = sigma
        self.eval_selection = eval_selection

    def forward(self, tokens: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            tokens (`(F, N, D)`): projected tokens of F frames, [CLS] first.
            noise (`(F, S, N − 1)`, optional): the perturbation draws (for reproducing a given run).

        Returns:
            `(F, 1 + K, D)`: [CLS], then the K selected (soft-selected in training) patch tokens.
        """
        num_patches = tokens.shape[1] - 1
        if not 0 < self.top_k <= num_patches:
            raise ValueError(
                f"token_selection_top_k={self.top_k} must be between 1 and the {num_patches} patches of a frame."
            )
        scores = self.scorer(tokens)[:, 1:]
        if self.training or self.eval_selection == "perturbed":
            indicators = perturbed_top_k_indicators(scores, self.top_k, self.num_samples, self.sigma, noise)
        else:
            indicators = hard_top_k_indicators(scores, self.top_k)
        selected = torch.einsum("fkp,fpd->fkd", indicators, tokens[:, 1:])
        return torch.cat([tokens[:, :1], selected], dim=1)
