"""The text disentangler: identity start, and reconstruction/orthogonality terms that cannot collapse the text."""

from __future__ import annotations

import math

import pytest
import torch

from model_inputs import random_image_inputs, random_text_inputs, random_video_inputs
from unitrim_hf import UniTriMConfig, UniTriMModel
from unitrim_hf.comparison.diagnostics import mean_pairwise_cosine
from unitrim_hf.modeling.disentanglement import TextDisentangler, orthogonality_loss, reconstruction_loss


def _tiny(**overrides) -> UniTriMModel:
    return UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny", **overrides))


def test_disentangler_on_starts_equal_to_off() -> None:
    """E_sp starts as the identity on t̂: text→image logits of "on" and "off" are equal at initialization."""
    torch.manual_seed(0)
    on = _tiny().eval()
    off = _tiny(use_disentangler=False).eval()
    off.load_state_dict(on.state_dict(), strict=False)
    inputs = {**random_text_inputs(on.config, batch_size=4), **random_image_inputs(on.config, batch_size=4)}
    with torch.no_grad():
        logits_on = on(**inputs).logits_per_text_image
        logits_off = off(**inputs).logits_per_text_image
        features = on.get_text_features(**random_text_inputs(on.config, batch_size=4))
    torch.testing.assert_close(logits_on, logits_off)
    torch.testing.assert_close(features.spatial_embeds, torch.nn.functional.normalize(features.combined_embeds, dim=-1))


def test_auxiliary_terms_send_no_gradient_to_the_text_tower() -> None:
    """Collapse needs L_rec/L_orth gradients into the text features: there are none, whatever their weights."""
    model = _tiny(reconstruction_loss_weight=100.0, orthogonality_loss_weight=100.0).train()
    features = model.get_text_features(**random_text_inputs(model.config, batch_size=4))
    (reconstruction_loss(features.reconstructed_embeds, features.combined_embeds)
     + orthogonality_loss(features.spatial_embeds, features.temporal_embeds)).backward()
    text_side = [name for name, parameter in model.named_parameters()
                 if name.startswith(("text_model.", "text_projection.")) and parameter.grad is not None
                 and parameter.grad.abs().max() > 0]
    assert text_side == []
    disentangler_side = [name for name, parameter in model.disentangler.named_parameters()
                         if parameter.grad is not None and parameter.grad.abs().max() > 0]
    assert "spatial_gate" in disentangler_side  # the spatial MLP's share starts at g = 0: its own gradient is 0
    assert any(name.startswith("temporal_encoder") for name in disentangler_side)
    assert any(name.startswith("decoder") for name in disentangler_side)


def test_text_to_image_gradient_still_reaches_the_text_tower_through_e_sp() -> None:
    model = _tiny().train()
    config = model.config
    inputs = {**random_text_inputs(config, batch_size=4), **random_video_inputs(config, batch_size=4),
              **random_image_inputs(config, batch_size=4)}
    output = model(**inputs, return_loss=True)
    output.losses["text_image"].backward()
    assert model.text_projection.weight.grad.abs().max() > 0


def test_reconstruction_is_scale_free_and_orthogonality_moves_only_the_temporal_part() -> None:
    reconstructed = torch.randn(5, 8)
    text = torch.randn(5, 8)
    torch.testing.assert_close(reconstruction_loss(reconstructed, text), reconstruction_loss(reconstructed, 7.0 * text))
    target = torch.nn.functional.normalize(text, dim=-1)
    torch.testing.assert_close(reconstruction_loss(target, text), torch.tensor(0.0))
    spatial = torch.tensor([[1.0, 0.0], [1.0, 1.0]], requires_grad=True)
    temporal = torch.tensor([[0.0, 2.0], [1.0, 1.0]], requires_grad=True)
    value = orthogonality_loss(spatial, temporal)
    torch.testing.assert_close(value, torch.tensor(0.5))
    value.backward()
    assert spatial.grad is None and temporal.grad.abs().max() > 0


def test_heavy_auxiliary_weights_do_not_collapse_the_text_features() -> None:
    """The collapse of the former disentangler, reproduced on purpose: 60 steps on L_rec + L_orth alone at a
    large learning rate used to drive the text features together. Now they keep their spread exactly."""
    torch.manual_seed(0)
    model = _tiny().train()
    inputs = random_text_inputs(model.config, batch_size=8, length=10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    with torch.no_grad():
        before = model.get_text_features(**inputs).combined_embeds.clone()
    for _ in range(60):
        features = model.get_text_features(**inputs)
        loss = (reconstruction_loss(features.reconstructed_embeds, features.combined_embeds)
                + orthogonality_loss(features.spatial_embeds, features.temporal_embeds))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = model.get_text_features(**inputs)
    torch.testing.assert_close(after.combined_embeds, before)
    assert mean_pairwise_cosine(after.combined_embeds) == pytest.approx(mean_pairwise_cosine(before))
    assert math.isfinite(float(loss.detach()))


def test_standalone_disentangler_spatial_part_is_the_normalized_input() -> None:
    disentangler = TextDisentangler(embed_dim=6, hidden_dim=4)
    text = torch.randn(3, 6)
    spatial, temporal, reconstructed = disentangler(text)
    torch.testing.assert_close(spatial, torch.nn.functional.normalize(text, dim=-1))
    assert temporal.shape == reconstructed.shape == (3, 6)


def test_inference_gives_the_training_values_with_one_spatial_pass() -> None:
    torch.manual_seed(0)
    disentangler = TextDisentangler(16, 8)
    with torch.no_grad():
        for parameter in disentangler.parameters():
            parameter.normal_()  # leave the identity start
    text = torch.randn(5, 16)
    with_grad = disentangler(text)
    with torch.no_grad():
        without_grad = disentangler(text)
    for trained, inferred in zip(with_grad, without_grad):
        torch.testing.assert_close(inferred, trained.detach(), rtol=0, atol=0)


def test_the_spatial_mlp_enters_through_a_gate_that_adam_moves_slowly() -> None:
    """E_sp = t̂ + g · MLP(t̂) with g = 0 at first: under Adam, g moves by about the learning rate per step, so the
    MLP's share of E_sp grows gradually (a zero-initialized output layer moves all its entries at that rate)."""
    torch.manual_seed(0)
    model = _tiny().train()
    config = model.config
    inputs = {**random_text_inputs(config, batch_size=8), **random_image_inputs(config, batch_size=8)}
    learning_rate, steps = 1e-2, 5
    optimizer = torch.optim.Adam(model.disentangler.parameters(), lr=learning_rate)
    assert model.disentangler.spatial_gate.item() == 0.0
    assert model.disentangler.spatial_encoder[-1].weight.abs().max() > 0  # the MLP itself is not zero
    for _ in range(steps):
        optimizer.zero_grad()
        model(**inputs, return_loss=True).losses["text_image"].backward()
        optimizer.step()
    gate = model.disentangler.spatial_gate.item()
    assert 0.0 < abs(gate) <= steps * learning_rate * 1.01
    features = model.get_text_features(**random_text_inputs(config, batch_size=8))
    normalized = torch.nn.functional.normalize(features.combined_embeds, dim=-1)
    torch.testing.assert_close(features.spatial_embeds,
                               normalized + gate * model.disentangler.spatial_encoder(normalized))
