"""Test-time post-processing of a (captions x videos) score matrix: DSL, QB-Norm and SK-norm.

All three re-score a query with knowledge beyond the query itself, so they are reported beside the plain numbers,
never instead of them:

* **DSL** (dual softmax, CAMoE; TS2-Net's `sim * softmax(sim, dim=0)`): each score is multiplied by a softmax over
  the *other* side: for text->video, over all test captions for that video. Transductive: it needs every test query
  at once.
* **QB-Norm** (querybank normalization, Bogolin et al. CVPR 2022): the inverted softmax of a query's scores, each
  video's score divided by the sum of `exp(beta * score)` of a bank of *training* captions for that video; with the
  dynamic inverted softmax (their default) only queries whose top-1 video is the top-k of some bank caption are
  normalized, the others keep their scores.
* **SK-norm** (UCoFiA): Sinkhorn-Knopp scaling of the (bank captions x test videos) logits; the log of each
  video's column scaling is added to its test scores.

Every function takes `sim` as `text_to_video_metrics` does: (num_captions, num_videos), rows are caption queries,
and returns float64 scores to rank the same way (rows for text->video, columns for video->text where stated).
"""

from __future__ import annotations

import math

import torch

from ..modeling.sinkhorn import DEFAULT_SINKHORN_ITERATIONS, sinkhorn_biases
from .metrics import IndexLike, SimilarityLike, _validated_similarity, _validated_targets
from .postprocessing_options import DEFAULT_QB_NORM_BETA


def dual_softmax_text_to_video(
    sim: SimilarityLike,
    temperature: float = 1.0,
    caption_to_video: IndexLike | None = None,
    query_ids: IndexLike | None = None,
) -> torch.Tensor:
    """DSL for text->video: `sim * prior`, the prior a softmax of `sim / temperature` over the caption queries.

    With one distinct caption per video this is exactly `sim * softmax(sim / temperature, dim=0)` (TS2-Net's
    evaluation; CAMoE's scales it by the number of rows, which ranks the same). Two cases where that softmax is
    biased are corrected:

    * several captions per video (MSVD: 19 to 80+): a video's softmax denominator sums over every caption, so videos
      with more captions get a smaller prior. Here each video's caption *group* counts once, as the mean over its
      captions: `prior[q, v] = exp(s[q, v] / T) / sum_g mean_{c in g} exp(s[c, v] / T)`.
    * the same query text several times (`query_ids`): a repeated text would count once per repetition and push
      down the prior of every video it likes (one user sending "boy running" 100 times). Within a group, each
      distinct text counts once.

    Args:
        sim: (num_captions, num_videos) finite scores (logits, ~100 x cosine for CLIP).
        temperature: softmax temperature, > 0 (1 on logits as TS2-Net and EERCF).
        caption_to_video: (num_captions,) each caption's video; None: every caption is its own group.
        query_ids: (num_captions,) an id per distinct query text (equal ids: the same text, whose rows must be
            equal); None: all distinct.

    Returns:
        (num_captions, num_videos) float64 re-weighted scores, ranked along rows.
    """
    _check_temperature(temperature)
    scores = _validated_similarity(sim).to(torch.float64)
    num_captions = scores.shape[0]
    if caption_to_video is None and query_ids is None:
        return scores * torch.softmax(scores / temperature, dim=0)
    rows = torch.arange(num_captions, device=scores.device)
    groups = rows if caption_to_video is None else _validated_targets(scores, caption_to_video, need_every_video=False)
    texts = rows if query_ids is None else _validated_query_ids(scores, query_ids)
    # One entry per distinct (group, text) pair, represented by its first row.
    pairs, pair_of_row = torch.unique(torch.stack([groups, texts], dim=1), dim=0, return_inverse=True)
    first_row = torch.full((pairs.shape[0],), num_captions, dtype=torch.int64, device=scores.device)
    first_row.scatter_reduce_(0, pair_of_row, rows, reduce="amin")
    pair_groups = pairs[:, 0]
    pairs_per_group = torch.bincount(pair_groups)[pair_groups].to(torch.float64)
    log_denominator = torch.logsumexp(scores[first_row] / temperature - pairs_per_group.log()[:, None], dim=0)
    return scores * torch.exp(scores / temperature - log_denominator[None, :])


def dual_softmax_video_to_text(sim: SimilarityLike, temperature: float = 1.0) -> torch.Tensor:
    """DSL for video->text: `sim * softmax(sim / temperature, dim=1)`, the prior over the videos of each caption.

    Rank its columns (each video a query, e.g. with `video_to_text_metrics`). Several captions per video and
    repeated captions need no correction here: each caption's softmax runs over the videos only. (TS2-Net's script
    ranks video->text on the text->video re-weighted matrix instead, whose per-video order is nearly the plain one.)

    Args:
        sim: (num_captions, num_videos) finite scores.
        temperature: softmax temperature, > 0.

    Returns:
        (num_captions, num_videos) float64 re-weighted scores.
    """
    _check_temperature(temperature)
    scores = _validated_similarity(sim).to(torch.float64)
    return scores * torch.softmax(scores / temperature, dim=1)


def querybank_activated_queries(sim: SimilarityLike, bank_sim: SimilarityLike, k: int = 1) -> torch.Tensor:
    """Which queries the dynamic inverted softmax normalizes: those whose top-1 video is among the top-`k` videos
    of at least one bank caption.

    Args:
        sim: (num_captions, num_videos) test scores.
        bank_sim: (num_bank, num_videos) scores of the bank captions against the same videos.
        k: top-k of each bank caption, 1 <= k <= num_videos.

    Returns:
        (num_captions,) boolean.
    """
    scores, bank = _validated_pair(sim, bank_sim)
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k must be between 1 and the {scores.shape[1]} videos, got {k}")
    retrieved = torch.zeros(scores.shape[1], dtype=torch.bool, device=scores.device)
    retrieved[bank.topk(k, dim=1).indices.flatten()] = True
    return retrieved[scores.argmax(dim=1)]


def querybank_normalize(
    sim: SimilarityLike,
    bank_sim: SimilarityLike,
    beta: float = DEFAULT_QB_NORM_BETA,
    k: int = 1,
    dynamic: bool = True,
    refuse_test_queries: bool = True,
) -> torch.Tensor:
    """QB-Norm: the inverted softmax of each query's scores against a bank of training captions, ranked along rows.

    A normalized row is `beta * s[q, v] - logsumexp_b(beta * bank[b, v])`, the log of QB-Norm's
    `exp(beta * s) / sum_b exp(beta * bank)` (the log ranks the same and cannot underflow to ties).

    Args:
        sim: (num_captions, num_videos) test scores on QB-Norm's scale: cosine similarities (beta = 20 there).
        bank_sim: (num_bank, num_videos) scores of the bank captions (the training split's, never the test split's)
            against the same videos, on the same scale.
        beta: inverse temperature, > 0.
        k: dynamic variant: a query is normalized when its top-1 video is the top-`k` of some bank caption.
        dynamic: False: normalize every query (the plain inverted softmax).
        refuse_test_queries: refuse a bank that holds every test query row (False where the caller has checked the
            splits themselves: `evaluate_retrieval` compares their videos, since a short caption may well occur in
            both splits).

    Returns:
        (num_captions, num_videos) float64; rows left out by the dynamic variant keep their `sim` values (a row's
        ranking is all that counts: compare rows, not scores across rows).

    Raises:
        ValueError: empty bank, shape mismatch, non-finite scores, or a bank that holds every test query (the test
            split used as bank: its captions would leak the answers).
    """
    if not beta > 0 or not math.isfinite(beta):
        raise ValueError(f"beta must be positive and finite, got {beta}")
    scores, bank = _validated_pair(sim, bank_sim)
    if refuse_test_queries:
        _refuse_test_queries_in_bank(scores, bank)
    log_normalizer = torch.logsumexp(beta * bank, dim=0)
    normalized = beta * scores - log_normalizer[None, :]
    if not dynamic:
        return normalized
    activated = querybank_activated_queries(scores, bank, k)
    return torch.where(activated[:, None], normalized, scores)


def sinkhorn_normalize(
    sim: SimilarityLike,
    bank_sim: SimilarityLike,
    num_iterations: int = DEFAULT_SINKHORN_ITERATIONS,
    temperature: float = 1.0,
    refuse_test_queries: bool = True,
) -> torch.Tensor:
    """SK-norm as UCoFiA evaluates text->video: `sim / T + column_bias[None, :]`, the column bias the log of the
    Sinkhorn-Knopp scaling (normalized to log-probabilities) of `exp(bank_sim / T)`.

    A video that many bank captions score high (a hub) gets a small scaling and sinks; the bias depends only on the
    bank and the gallery, so each test query is still ranked on its own.

    Args:
        sim: (num_captions, num_videos) test logits.
        bank_sim: (num_bank, num_videos) logits of the training-split bank captions against the same videos.
        num_iterations: Sinkhorn-Knopp iterations (UCoFiA: 4).
        temperature: scores are divided by it first, > 0 (UCoFiA: 1, on logits).
        refuse_test_queries: as `querybank_normalize`.

    Returns:
        (num_captions, num_videos) float64, ranked along rows.
    """
    _check_temperature(temperature)
    scores, bank = _validated_pair(sim, bank_sim)
    if refuse_test_queries:
        _refuse_test_queries_in_bank(scores, bank)
    _, column_bias = sinkhorn_biases(bank / temperature, num_iterations)
    return scores / temperature + column_bias[None, :]


def _check_temperature(temperature: float) -> None:
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be positive and finite, got {temperature}")


def _validated_pair(sim: SimilarityLike, bank_sim: SimilarityLike) -> tuple[torch.Tensor, torch.Tensor]:
    scores = _validated_similarity(sim).to(torch.float64)
    if isinstance(bank_sim, torch.Tensor) and bank_sim.ndim == 2 and bank_sim.shape[0] == 0:
        raise ValueError("the query bank is empty: QB-Norm and SK-norm need the scores of some training captions")
    try:
        bank = _validated_similarity(bank_sim).to(torch.float64)
    except ValueError as error:
        raise ValueError(f"bank_sim (the query bank's scores): {error}") from None
    if bank.shape[1] != scores.shape[1]:
        raise ValueError(
            f"bank_sim has {bank.shape[1]} video columns but sim has {scores.shape[1]}: the bank must be scored "
            "against the same gallery"
        )
    return scores, bank.to(scores.device)


def _refuse_test_queries_in_bank(scores: torch.Tensor, bank: torch.Tensor) -> None:
    """Raise when every test query row also appears, exactly, in the bank (the bank is the test split)."""
    generator = torch.Generator().manual_seed(0)
    direction = torch.randn(scores.shape[1], generator=generator, dtype=torch.float64).to(scores.device)
    fingerprints = (scores * direction).sum(dim=1)
    found = torch.isin(fingerprints, (bank * direction).sum(dim=1))
    if bool(found.all()):
        raise ValueError(
            f"all {scores.shape[0]} test queries are also in the query bank: the bank looks like the test split "
            "itself, which leaks the test captions; build it from the training split"
        )


def _validated_query_ids(scores: torch.Tensor, query_ids: IndexLike) -> torch.Tensor:
    ids = torch.as_tensor(query_ids.detach().cpu() if isinstance(query_ids, torch.Tensor) else query_ids)
    if ids.ndim != 1 or ids.shape[0] != scores.shape[0] or ids.is_floating_point() or ids.dtype == torch.bool:
        raise ValueError(
            f"query_ids must be ({scores.shape[0]},) integers, one per caption row; got {tuple(ids.shape)} {ids.dtype}"
        )
    ids = ids.to(device=scores.device, dtype=torch.int64)
    _, first = torch.unique(ids, return_inverse=True)
    representative = torch.full((int(first.max()) + 1,), scores.shape[0], dtype=torch.int64, device=scores.device)
    representative.scatter_reduce_(0, first, torch.arange(scores.shape[0], device=scores.device), reduce="amin")
    # Tolerance: the same text encoded in two batches may differ in the last bits.
    tolerance = 1e-5 * float(scores.abs().max()) + 1e-6
    differing = ((scores - scores[representative[first]]).abs() > tolerance).any(dim=1)
    if bool(differing.any()):
        row = int(differing.nonzero()[0, 0])
        raise ValueError(
            f"query_ids gives caption row {row} the id of row {int(representative[first[row]])}, but their scores "
            "differ: equal ids must mark the same query text"
        )
    return ids
