"""EERCF's text-gated interaction block, its loss and its two-stage retrieval reproduce its official code
(adxcreative/EERCF).

The fixtures `fixtures/baselines/eercf_*.safetensors` hold inputs, weights and outputs of the official head
(`XCLIP._loose_similarity` of `modules/modeling_fineclip_patches_cdcl.py`), executed outside this project (numbers
only; their README says how). The tests map the official weights onto the library's temporal encoder and
`TextGatedInteraction`, feed the same projected sentence, frame and patch features, and compare within 1e-5 in
float32: the five scores in the training (paired gates) and evaluation (per-pair gates) forms, the loss and its
parts, the gradients, and the two-stage ranking of a gallery of 7 texts and 10 videos.
"""

from __future__ import annotations

import pytest
import torch

from test_official_baselines import BLOCK_NAMES, TOLERANCE, close, load_fixture

from unitrim_hf import UniTriMConfig, UniTriMModel
from unitrim_hf.modeling.eercf_loss import eercf_loss
from unitrim_hf.modeling.pearson_constraint import pearson_constraint_loss
from unitrim_hf.modeling.text_gated_interaction import TIB_SCORES, TextGatedInteraction
from unitrim_hf.modeling.two_stage_retrieval import fine_score, two_stage_scores

GRADIENT_RTOL = 1e-5


def temporal_parameter(official: str) -> str | None:
    """The library temporal-encoder parameter of an official one (None for everything else)."""
    if official == "frame_position_embeddings.weight":
        return "frame_position_embedding.weight"
    if official.startswith("transformerClip.resblocks."):
        index, rest = official.removeprefix("transformerClip.resblocks.").split(".", 1)
        return f"layers.{index}.{BLOCK_NAMES[rest]}"
    return None


def official_head(name: str):
    """The fixture, the library's temporal encoder (X-CLIP's seqTransf form) and TIB with the official weights."""
    tensors, metadata = load_fixture(name)
    config = UniTriMConfig.from_preset(
        "xclip-tiny", projection_dim=int(metadata["D"]), temporal_num_attention_heads=int(metadata["heads"]),
        num_temporal_layers=int(metadata["temporal_layers"]), max_frames=int(metadata["max_frames"]),
    )
    encoder = UniTriMModel(config).temporal_encoder
    tib = TextGatedInteraction(int(metadata["D"]), int(metadata["max_frames"]))
    encoder_parameters = dict(encoder.named_parameters())
    with torch.no_grad():
        for official, value in tensors.items():
            target = temporal_parameter(official)
            if target is not None:
                encoder_parameters[target].copy_(value)
        tib.global_weight.copy_(tensors["global_mat_weight"])
        tib.frame_weight.copy_(tensors["frame_logit_weight"])
    return tensors, encoder, tib


def run_head(tensors, encoder, tib, paired: bool, gated_patches: bool = False):
    leaves = {
        name: tensors[name].clone().requires_grad_(True)
        for name in ("sequence_output", "visual_output", "visual_patches")
    }
    log_scale = tensors["clip.logit_scale"].clone().requires_grad_(True)
    mask = tensors["video_mask"].bool()
    encoded = encoder(leaves["visual_output"], mask)
    scores, visual = tib(
        leaves["sequence_output"][:, 0], leaves["visual_output"], encoded, mask, leaves["visual_patches"],
        paired=paired, gated_patches=gated_patches,
    )
    return scores, visual, leaves, log_scale


@pytest.mark.parametrize("name", ["eercf_head", "eercf_head_padded"])
@pytest.mark.parametrize("gated_patches", [False, True])
def test_evaluation_scores_match_official(name: str, gated_patches: bool) -> None:
    tensors, encoder, tib = official_head(name)
    with torch.no_grad():
        scores, _, _, log_scale = run_head(tensors, encoder, tib, paired=False, gated_patches=gated_patches)
    for score_name in TIB_SCORES:
        expected = tensors[f"eval.{score_name}"]
        if score_name == "sentence_patch_strong" and not gated_patches:
            expected = tensors["eval.sentence_frame_strong"]  # the official evaluation's stand-in
        close(log_scale.exp() * scores[score_name], expected, f"{name} eval {score_name}")
    if gated_patches:  # the per-pair patch gate is not the frame gate
        assert not torch.allclose(scores["sentence_patch_strong"], scores["sentence_frame_strong"], atol=1e-3)


@pytest.mark.parametrize("name", ["eercf_head", "eercf_head_padded"])
def test_training_scores_loss_and_gradients_match_official(name: str) -> None:
    tensors, encoder, tib = official_head(name)
    scores, visual, leaves, log_scale = run_head(tensors, encoder, tib, paired=True)
    for score_name in TIB_SCORES:
        close(log_scale.exp() * scores[score_name], tensors[f"train.{score_name}"], f"{name} train {score_name}")
    sentence = leaves["sequence_output"][:, 0] / leaves["sequence_output"][:, 0].norm(dim=-1, keepdim=True)
    loss, parts = eercf_loss(scores, log_scale.exp(), sentence, visual)
    for level in ("video", "frame", "patch"):
        close(parts[f"pearson_{level}"], tensors[f"train.pearson_{level}"], f"{name} Pearson {level}")
    for part in ("weak", "strong", "inter", "intra"):
        close(parts[part], tensors[f"loss.{part}"], f"{name} loss {part}")
    close(loss, tensors["loss"], f"{name} loss")
    parameters = {"global_mat_weight": tib.global_weight, "frame_logit_weight": tib.frame_weight}
    parameters.update({official: dict(encoder.named_parameters())[temporal_parameter(official)]
                       for official in tensors if temporal_parameter(official) is not None})
    targets = [*leaves.values(), log_scale, *parameters.values()]
    gradients = torch.autograd.grad(loss, targets)
    names = [*leaves, "clip.logit_scale", *parameters]
    for official, gradient in zip(names, gradients):
        close(gradient, tensors[f"grad.{official}"], f"{name} grad {official}", rtol=GRADIENT_RTOL)


def test_training_gates_are_detached_and_paired() -> None:
    """The strong scores' gates carry no gradient, and a text other than the paired one does not move them."""
    tensors, encoder, tib = official_head("eercf_head")
    scores, _, leaves, _ = run_head(tensors, encoder, tib, paired=True)
    (gradient,) = torch.autograd.grad(scores["sentence_patch_strong"][0, 1], leaves["visual_patches"])
    # video 1 is pooled with its own (paired) text's gate, so only video 1's patches receive a gradient
    assert gradient[1].abs().sum() > 0 and gradient[[0, 2, 3]].abs().sum() == 0
    with pytest.raises(ValueError, match="as many texts as videos"):
        tib(leaves["sequence_output"][:3, 0], leaves["visual_output"], leaves["visual_output"],
            tensors["video_mask"].bool(), leaves["visual_patches"], paired=True)


def test_two_stage_ranking_matches_official() -> None:
    tensors, encoder, tib = official_head("eercf_two_stage")
    with torch.no_grad():
        scores, _, _, log_scale = run_head(tensors, encoder, tib, paired=False)
    logits = {name: log_scale.exp() * score for name, score in scores.items()}
    for name in TIB_SCORES[:4]:
        close(logits[name], tensors[f"eval.{name}"], f"gallery {name}")
    top_k = 4
    asked = []

    def candidate_fine_scores(candidates: torch.Tensor) -> torch.Tensor:
        asked.append(candidates)
        return fine_score({name: value.gather(1, candidates) for name, value in logits.items()})

    final = two_stage_scores(logits["sentence_video"], top_k, candidate_fine_scores)
    assert asked[0].shape == (7, top_k)  # the fine score is asked for the candidates only
    ranking = final.argsort(dim=1, descending=True, stable=True)
    assert torch.equal(ranking, tensors["ranking"])
    assert not torch.equal(ranking, tensors["coarse_ranking"])
    candidates = torch.zeros_like(final, dtype=torch.bool).scatter(1, ranking[:, :top_k], True)
    close(final[~candidates], tensors["final_scores"][~candidates], "non-candidates keep the coarse score")
    # candidates: the official adds 100 to the fine score, the library one shift keeping them on top
    offset = final[candidates] - tensors["final_scores"][candidates]
    torch.testing.assert_close(offset, offset[0].expand_as(offset), rtol=0, atol=TOLERANCE * 10)


def test_two_stage_ranks_candidates_first_and_checks_its_inputs() -> None:
    coarse = torch.tensor([[5.0, 4.0, 3.0, 2.0]])
    final = two_stage_scores(coarse, 2, lambda candidates: torch.tensor([[-50.0, 10.0]]))
    assert final.argsort(dim=1, descending=True).tolist() == [[1, 0, 2, 3]]  # far-below fine scores stay on top
    assert two_stage_scores(coarse, 10, lambda c: -coarse.gather(1, c)).argsort(dim=1, descending=True).tolist() == [[3, 2, 1, 0]]
    with pytest.raises(ValueError, match="top_k >= 1"):
        two_stage_scores(coarse, 0, lambda c: c.float())
    with pytest.raises(ValueError, match="candidates' shape"):
        two_stage_scores(coarse, 2, lambda c: torch.zeros(1, 3))


def test_pearson_constraint_refuses_mismatched_batches() -> None:
    features = torch.randn(4, 8)
    # perfectly correlated columns: c_dd = (N - 1) / N, not 1, as the unbiased deviation meets a division by N
    expected = 0.14 * 8 * (1 / 4) ** 2
    torch.testing.assert_close(pearson_constraint_loss(features, features * 2 + 1), torch.tensor(expected))
    with pytest.raises(ValueError, match="same shape with N >= 2"):
        pearson_constraint_loss(features, features[:3])
    with pytest.raises(ValueError, match="same shape with N >= 2"):
        pearson_constraint_loss(features[:1], features[:1])
