"""Initial weights keyed by module name: for one seed, switching a module off (an ablation, a baseline preset) leaves
every other module's initial values unchanged, so paired comparisons start from the same weights."""

from __future__ import annotations

import pytest
import torch

from unitrim_hf import UniTriMConfig, UniTriMModel


def initial_weights(seed: int, preset: str, **overrides) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return UniTriMModel(UniTriMConfig.from_preset(preset, **overrides)).state_dict()


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [("unitrim-tiny", {"use_disentangler": False}), ("unitrim-tiny", {"num_temporal_layers": 0}),
     ("unitrim-tiny", {"patch_top_k": 4}), ("xclip-tiny", {}), ("clip4clip-meanp-tiny", {})],
)
def test_switching_modules_leaves_the_other_initial_weights_unchanged(preset: str, overrides: dict) -> None:
    full = initial_weights(1, "unitrim-tiny")
    variant = initial_weights(1, preset, **overrides)
    shared = [name for name in variant if name in full and variant[name].shape == full[name].shape]
    assert len(shared) > 40
    changed = [name for name in shared if not torch.equal(variant[name], full[name])]
    assert changed == []


def test_initial_weights_follow_the_seed() -> None:
    first, again, other = initial_weights(1, "unitrim-tiny"), initial_weights(1, "unitrim-tiny"), initial_weights(2, "unitrim-tiny")
    assert all(torch.equal(first[name], again[name]) for name in first)
    for name in ("text_projection.weight", "temporal_encoder.layers.0.qkv_proj.weight",
                 "disentangler.temporal_encoder.0.weight", "text_model.embeddings.token_embedding.weight"):
        assert not torch.equal(first[name], other[name]), name


def test_modules_of_one_model_do_not_share_a_stream() -> None:
    weights = initial_weights(1, "unitrim-tiny")
    encoder, decoder = weights["disentangler.temporal_encoder.0.weight"], weights["disentangler.decoder.0.weight"]
    assert not torch.equal(encoder[:, : decoder.shape[1]], decoder[: encoder.shape[0], : encoder.shape[1]])
