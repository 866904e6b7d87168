"""Sinkhorn-Knopp scaling of a score matrix towards a doubly stochastic one, in the log domain.

`exp(log_kernel)` is scaled as `diag(a) exp(log_kernel) diag(b)`, alternating `a = 1 / (K b)` and `b = 1 / (a K)`
from `b = 1 / colsum(K)`, the recursion (and the default of 4 iterations) of UCoFiA's SK-norm. Working with
log-sum-exp instead of products keeps it finite where `exp` of ~100-scaled logits under- or overflows, and gives
the same numbers where the product form does not. Used by the evaluation's SK-norm (a bias per gallery item
computed from a bank of training queries) and usable in training: everything here is differentiable.
"""

from __future__ import annotations

import torch

DEFAULT_SINKHORN_ITERATIONS = 4


def sinkhorn_log_scalings(log_kernel: torch.Tensor, num_iterations: int = DEFAULT_SINKHORN_ITERATIONS) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Log of the Sinkhorn-Knopp row and column scalings of `exp(log_kernel)`.

    Args:
        log_kernel: (N, M) finite scores (e.g. logits), the log of the matrix to scale.
        num_iterations: row-then-column updates, >= 1. After each one every column of the scaled matrix sums to 1;
            the rows approach 1 as the iterations grow (for a square matrix with positive entries).

    Returns:
        `(log_a, log_b)`, (N,) and (M,): `exp(log_a[:, None] + log_kernel + log_b[None, :])` is the scaled matrix.
    """
    if log_kernel.dim() != 2 or log_kernel.shape[0] == 0 or log_kernel.shape[1] == 0:
        raise ValueError(f"log_kernel must be a non-empty (N, M) matrix, got shape {tuple(log_kernel.shape)}")
    if num_iterations < 1:
        raise ValueError(f"num_iterations must be >= 1, got {num_iterations}")
    # Shifted by the maximum as the product form does (exp(kernel - max) <= 1); the shift comes back in log_b.
    shift = log_kernel.max()
    shifted = log_kernel - shift
    log_b = -torch.logsumexp(shifted, dim=0)
    for _ in range(num_iterations):
        log_a = -torch.logsumexp(shifted + log_b[None, :], dim=1)
        log_b = -torch.logsumexp(shifted + log_a[:, None], dim=0)
    return log_a, log_b - shift


def sinkhorn_biases(log_kernel: torch.Tensor, num_iterations: int = DEFAULT_SINKHORN_ITERATIONS) -> tuple[torch.Tensor, torch.Tensor]:
    """
    The row and column log-scalings normalized to log-probabilities (`log_softmax`), as UCoFiA's `sinkhorn_knopp`
    returns them: the scalings are only defined up to a constant factor, this picks one.

    Args:
        log_kernel: (N, M) finite scores.
        num_iterations: as `sinkhorn_log_scalings`.

    Returns:
        `(row_bias, column_bias)`, (N,) and (M,), each `logsumexp` 0. UCoFiA adds the column bias of a (training
        captions x test videos) matrix to every row of the test (captions x videos) logits.
    """
    log_a, log_b = sinkhorn_log_scalings(log_kernel, num_iterations)
    return torch.log_softmax(log_a, dim=0), torch.log_softmax(log_b, dim=0)


def sinkhorn_log_plan(log_kernel: torch.Tensor, num_iterations: int = DEFAULT_SINKHORN_ITERATIONS) -> torch.Tensor:
    """
    Log of the scaled matrix `diag(a) exp(log_kernel) diag(b)` itself.

    Args:
        log_kernel: (N, M) finite scores.
        num_iterations: as `sinkhorn_log_scalings`.

    Returns:
        (N, M): columns of its `exp` sum to 1; for a square `log_kernel` its rows approach 1 too (doubly stochastic).
    """
    log_a, log_b = sinkhorn_log_scalings(log_kernel, num_iterations)
    return log_a[:, None] + log_kernel + log_b[None, :]
