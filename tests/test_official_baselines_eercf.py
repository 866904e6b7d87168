"""EERCF's text-gated interaction block, its loss and its two-stage retrieval reproduce its official code
(adxcreative/EERCF).

The fixtures `fixtures/baselines/eercf_*.safetensors` hold inputs, weights and outputs of the official head
(`XCLIP._loose_similarity` of `modules/modeling_fineclip_patches_cdcl.py`), executed outside this project (numbers
only; their README says how). The tests map the official weights onto the `eercf` preset's temporal encoder and
text-gated interaction block, feed the same projected sentence, frame and patch features, and compare within 1e-5 in
float32: the five scores in the training (paired gates) and evaluation (per-pair gates) forms, the loss and its
parts, the gradients, and the two-stage ranking of a gallery of 7 texts and 10 videos.
"""

from __future__ import annotations

import pytest
import torch

from test_official_baselines import BLOCK_NAMES, TOLERANCE, close, load_fixture

from unitrim_hf import UniTriMConfig, UniTriMModel
from unitrim_hf.modeling.modeling_outputs import UniTriMTextFeatures
from unitrim_hf.modeling.pearson_constraint import pearson_constraint_loss
from unitrim_hf.modeling.text_gated_interaction import TIB_SCORES
from unitrim_hf.modeling.two_stage_retrieval import two_stage_scores

GRADIENT_RTOL = 1e-5


def library_name(official: str) -> str | None:
    """The `eercf` model parameter of an official head parameter (None for inputs and outputs)."""
    names = {"clip.logit_scale": "logit_scale", "frame_position_embeddings.weight":
             "temporal_encoder.frame_position_embedding.weight", "global_mat_weight":
             "text_gated_interaction.global_weight", "frame_logit_weight": "text_gated_interaction.frame_weight"}
    if official.startswith("transformerClip.resblocks."):
        index, rest = official.removeprefix("transformerClip.resblocks.").split(".", 1)
        return f"temporal_encoder.layers.{index}.{BLOCK_NAMES[rest]}"
    return names.get(official)


def official_model(name: str):
    """The fixture and the `eercf` head at its sizes with the official weights copied in."""
    tensors, metadata = load_fixture(name)
    config = UniTriMConfig.from_preset(
        "eercf-tiny", projection_dim=int(metadata["D"]), temporal_num_attention_heads=int(metadata["heads"]),
        num_temporal_layers=int(metadata["temporal_layers"]), max_frames=int(metadata["max_frames"]),
    )
    model = UniTriMModel(config).train()
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for official, value in tensors.items():
            if library_name(official) is not None:
                parameters[library_name(official)].copy_(value)
    return tensors, model


def fixture_features(model: UniTriMModel, tensors):
    """Text and video features of the fixture's projected inputs, with autograd on the inputs."""
    leaves = {
        name: tensors[name].clone().requires_grad_(True)
        for name in ("sequence_output", "visual_output", "visual_patches")
    }
    text = UniTriMTextFeatures(pooler_output=leaves["sequence_output"][:, 0])
    video = model.video_features_from_frames(
        leaves["visual_output"], tensors["video_mask"].bool(), patch_embeds=leaves["visual_patches"]
    )
    return text, video, leaves


@pytest.mark.parametrize("name", ["eercf_head", "eercf_head_padded"])
def test_evaluation_scores_match_official(name: str) -> None:
    tensors, model = official_model(name)
    with torch.no_grad():
        text, video, _ = fixture_features(model, tensors)
        output = model.similarity(text, video, text_block_size=3, visual_block_size=2)  # tiles change nothing
        gated_patches, _ = model.text_gated_interaction(
            text.sentence_embeds, video.frame_embeds, video.encoded_frame_embeds, video.video_mask,
            video.patch_embeds, paired=False, gated_patches=True,
        )
    scale = model.exp_logit_scale()
    for score_name in TIB_SCORES:
        # without a weight on it, the official evaluation reports the frame-gated score as the patch-gated one
        expected_name = "sentence_frame_strong" if score_name == "sentence_patch_strong" else score_name
        close(scale * output.alignment_scores[score_name], tensors[f"eval.{expected_name}"], f"{name} {score_name}")
    close(scale * gated_patches["sentence_patch_strong"], tensors["eval.sentence_patch_strong"], f"{name} patch gate")
    fine = 0.8 * tensors["eval.sentence_frame_weak"] + 0.2 * tensors["eval.sentence_frame_strong"] + \
        0.2 * tensors["eval.sentence_patch_weak"] + 0.5 * tensors["eval.sentence_video"]
    close(output.logits, fine, f"{name} logits: the fine re-ranking score")


@pytest.mark.parametrize("name", ["eercf_head", "eercf_head_padded"])
def test_training_scores_loss_and_gradients_match_official(name: str) -> None:
    tensors, model = official_model(name)
    text, video, leaves = fixture_features(model, tensors)
    scores, _ = model._text_gated_scores(text, video, paired=True)
    for score_name in TIB_SCORES:
        expected = tensors[f"train.{score_name}"]
        close(model.exp_logit_scale() * scores[score_name], expected, f"{name} train {score_name}")
    output = model._text_gated_training_output(text, video, None)
    parts = output.losses
    for level in ("video", "frame", "patch"):
        close(parts[f"pearson_{level}"], tensors[f"train.pearson_{level}"], f"{name} Pearson {level}")
    for part in ("weak", "strong", "inter", "intra"):
        close(parts[part], tensors[f"loss.{part}"], f"{name} loss {part}")
    close(output.loss, tensors["loss"], f"{name} loss")
    parameters = dict(model.named_parameters())
    officials = [official for official in tensors if library_name(official) is not None]
    targets = [*leaves.values(), *(parameters[library_name(official)] for official in officials)]
    gradients = torch.autograd.grad(output.loss, targets)
    for official, gradient in zip([*leaves, *officials], gradients):
        close(gradient, tensors[f"grad.{official}"], f"{name} grad {official}", rtol=GRADIENT_RTOL)
    assert len(officials) == 4 + 2 * len(BLOCK_NAMES)  # every official parameter: 2 temporal layers and 4 more


def test_training_gates_are_detached_and_paired() -> None:
    """The strong scores' gates carry no gradient, and a text other than the paired one does not move them."""
    tensors, model = official_model("eercf_head")
    text, video, leaves = fixture_features(model, tensors)
    scores, _ = model._text_gated_scores(text, video, paired=True)
    (gradient,) = torch.autograd.grad(scores["sentence_patch_strong"][0, 1], leaves["visual_patches"])
    # video 1 is pooled with its own (paired) text's gate, so only video 1's patches receive a gradient
    assert gradient[1].abs().sum() > 0 and gradient[[0, 2, 3]].abs().sum() == 0
    with pytest.raises(ValueError, match="as many texts as videos"):
        model._text_gated_scores(text.take(slice(0, 3)), video, paired=True)


def test_two_stage_ranking_matches_official() -> None:
    tensors, model = official_model("eercf_two_stage")
    top_k = int(load_fixture("eercf_two_stage")[1]["top_k"])
    with torch.no_grad():
        text, video, _ = fixture_features(model, tensors)
        final = model.two_stage_similarity(text, video, top_k=top_k).logits
    close(model.exp_logit_scale() * model.two_stage_similarity(text, video, 4).alignment_scores["sentence_video"],
          tensors["eval.sentence_video"], "coarse score")
    ranking = final.argsort(dim=1, descending=True, stable=True)
    assert torch.equal(ranking, tensors["ranking"])
    assert not torch.equal(ranking, tensors["coarse_ranking"])
    candidates = torch.zeros_like(final, dtype=torch.bool).scatter(1, ranking[:, :top_k], True)
    close(final[~candidates], tensors["final_scores"][~candidates], "non-candidates keep the coarse score")
    # candidates: the official adds 100 to the fine score, the library one shift keeping them on top
    offset = final[candidates] - tensors["final_scores"][candidates]
    torch.testing.assert_close(offset, offset[0].expand_as(offset), rtol=0, atol=TOLERANCE * 10)
    # with every video a candidate, the two stages are the fine score alone
    with torch.no_grad():
        everything = model.two_stage_similarity(text, video, top_k=100).logits
        fine = model.similarity(text, video).logits
    assert torch.equal(everything.argsort(dim=1, descending=True), fine.argsort(dim=1, descending=True))


def test_two_stage_ranks_candidates_first_and_checks_its_inputs() -> None:
    coarse = torch.tensor([[5.0, 4.0, 3.0, 2.0]])
    final = two_stage_scores(coarse, 2, lambda candidates: torch.tensor([[-50.0, 10.0]]))
    assert final.argsort(dim=1, descending=True).tolist() == [[1, 0, 2, 3]]  # far-below fine scores stay on top
    reversed_order = two_stage_scores(coarse, 10, lambda candidates: -coarse.gather(1, candidates))
    assert reversed_order.argsort(dim=1, descending=True).tolist() == [[3, 2, 1, 0]]  # k >= gallery: all re-ranked
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
