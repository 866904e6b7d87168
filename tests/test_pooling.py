"""MGSA scoring functions against a direct per-pair reference, and their mask and tiling properties."""

from __future__ import annotations

import pytest
import torch

from unitrim_hf.modeling.pooling import attention_over_similarity_matrix, fine_grained_scores, masked_mean

TEMPERATURE = 0.05


def reference_pair_score(sim: torch.Tensor, temperature: float) -> torch.Tensor:
    """AOSM of one pair's valid (text units x visual units) matrix, written out directly."""
    per_text = torch.stack([(torch.softmax(row / temperature, 0) * row).sum() for row in sim])
    text_to_visual = (torch.softmax(per_text / temperature, 0) * per_text).sum()
    per_visual = torch.stack([(torch.softmax(col / temperature, 0) * col).sum() for col in sim.t()])
    visual_to_text = (torch.softmax(per_visual / temperature, 0) * per_visual).sum()
    return (text_to_visual + visual_to_text) / 2


def random_units(count: int, length: int, dim: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    units = torch.nn.functional.normalize(torch.randn(count, length, dim, generator=generator, dtype=torch.float64), dim=-1)
    real = torch.randint(1, length + 1, (count,), generator=generator)
    return units, torch.arange(length)[None, :] < real[:, None]


def test_matches_the_per_pair_reference() -> None:
    generator = torch.Generator().manual_seed(0)
    texts, text_mask = random_units(4, 7, 8, generator)
    visuals, visual_mask = random_units(5, 6, 8, generator)
    scores = fine_grained_scores(texts, text_mask, visuals, visual_mask, TEMPERATURE)
    for a in range(4):
        for b in range(5):
            sim = texts[a][text_mask[a]] @ visuals[b][visual_mask[b]].t()
            torch.testing.assert_close(scores[a, b], reference_pair_score(sim, TEMPERATURE))


def test_padded_units_never_contribute() -> None:
    generator = torch.Generator().manual_seed(1)
    texts, text_mask = random_units(3, 5, 4, generator)
    visuals, visual_mask = random_units(3, 6, 4, generator)
    before = fine_grained_scores(texts, text_mask, visuals, visual_mask, TEMPERATURE)
    texts[~text_mask] = 0.9  # large, un-normalized garbage in padded slots
    visuals[~visual_mask] = -3.0
    after = fine_grained_scores(texts, text_mask, visuals, visual_mask, TEMPERATURE)
    torch.testing.assert_close(after, before)
    assert torch.isfinite(after).all()


def test_small_temperature_approaches_max_pooling() -> None:
    sim = torch.tensor([[[[0.1, 0.9]], [[0.5, 0.2]]]], dtype=torch.float64)  # (texts, text units, visuals, units)
    mask_t, mask_v = torch.ones(1, 2, dtype=torch.bool), torch.ones(1, 2, dtype=torch.bool)
    score = attention_over_similarity_matrix(sim, mask_t, mask_v, temperature=1e-4)
    torch.testing.assert_close(score, torch.tensor([[0.9]], dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_runs_in_the_features_dtype(dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(2)
    texts, text_mask = random_units(2, 4, 8, generator)
    visuals, visual_mask = random_units(3, 5, 8, generator)
    reference = fine_grained_scores(texts, text_mask, visuals, visual_mask, 0.01)
    low = fine_grained_scores(texts.to(dtype), text_mask, visuals.to(dtype), visual_mask, 0.01)
    assert low.dtype == dtype
    torch.testing.assert_close(low.double(), reference, rtol=0.02, atol=0.02)


def test_masked_mean_ignores_masked_entries() -> None:
    values = torch.tensor([[1.0, 3.0, 100.0], [2.0, 4.0, 6.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    torch.testing.assert_close(masked_mean(values, mask, dim=1), torch.tensor([2.0, 4.0]))
