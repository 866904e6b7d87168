"""The `ucofia` preset reproduces UCoFiA's official code (Ziyang412/UCoFiA).

The fixtures `fixtures/baselines/ucofia_*.safetensors` hold inputs, weights and outputs of the official modules,
executed outside this project (numbers only; their README says how). Each test maps the official weights onto the
library's modules and compares within 1e-5 in float32: each level's interactive similarity aggregation, the
evaluation logits (token selection in its deterministic limit), the training loss and gradients with the official
selection noise, on an unpadded and a padded batch, and the level-by-level SK-norm of the evaluation.
"""

from __future__ import annotations

import pytest
import torch

from test_official_baselines import TOLERANCE, check_official_gradients, close, load_official_weights
from test_official_baselines import load_fixture as load
from test_official_baselines_ts2net import head_library_name as ts2net_library_name
from test_official_baselines_ts2net import token_selection_head

from unitrim_hf import UniTriMModel
from unitrim_hf.modeling.interactive_similarity_aggregation import ISA_ALIGNMENT_MATRICES
from unitrim_hf.modeling.level_sinkhorn import sinkhorn_normalized_level_logits
from unitrim_hf.modeling.mgsa_scorer import alignment_logits
from unitrim_hf.modeling.modeling_outputs import UniTriMTextFeatures

COMMIT = "6098be26627e445f03de5dc0f4b1db74f55d39d3"
ISA_NAMES = {name for roles in ISA_ALIGNMENT_MATRICES.values() for name in roles.values()}
# The official level names -> the library's alignments.
LEVELS = {"video_sentence": "sentence_video_bilinear", "sentence_frame": "sentence_frame_isa",
          "pixel_word": "word_token_isa"}
HEADS = ["ucofia_head", "ucofia_head_padded"]


def head_library_name(official: str) -> str | None:
    """The library parameter of an official UCoFiA head parameter (None for inputs, outputs, unused matrices)."""
    if official in ISA_NAMES:
        return f"isa.{official}"
    return ts2net_library_name(official)  # logit scale, frame positions, temporal blocks, token scorer: as TS2-Net


def load_head(name: str) -> tuple[dict[str, torch.Tensor], UniTriMModel]:
    """The fixture and the `ucofia` head at its sizes, with the official weights copied in."""
    tensors, metadata = load(name)
    model = token_selection_head("ucofia-tiny", metadata, max_words=int(metadata["max_words"]))
    copied = {head_library_name(name) for name in load_official_weights(model, tensors, head_library_name)}
    parameters = dict(model.named_parameters())
    head = {name for name in parameters if not name.startswith(("text_model.", "vision_model.", "text_projection",
                                                                "visual_projection"))}
    assert head == copied, f"not from the fixture: {sorted(head - copied)}"
    return tensors, model


def text_features(tensors: dict[str, torch.Tensor], prefix: str = "") -> tuple[UniTriMTextFeatures, dict]:
    sentence = tensors[f"{prefix}sequence_output"][:, 0].clone().requires_grad_(True)
    words = tensors[f"{prefix}seq_features"].clone().requires_grad_(True)
    ids = tensors[f"{prefix}input_ids"]
    word_mask = ids > 0
    word_mask[:, 0] = False
    features = UniTriMTextFeatures(pooler_output=sentence, word_embeds=words, word_mask=word_mask)
    return features, {"sequence_output": sentence, "seq_features": words}


def head_features(model: UniTriMModel, tensors: dict[str, torch.Tensor], noise: torch.Tensor | None):
    tokens = tensors["visual_tokens"].clone().requires_grad_(True)
    text, inputs = text_features(tensors)
    video = model.video_features_from_tokens(tokens, tensors["video_mask"].bool(), noise)
    return text, video, {**inputs, "visual_tokens": tokens}


def eval_model(fixture: str) -> tuple[dict[str, torch.Tensor], UniTriMModel]:
    tensors, model = load_head(fixture)
    model.eval().token_selector.eval_selection = "hard"  # the fixtures' σ → 0 limit of the sampled selection
    return tensors, model


@pytest.mark.parametrize("fixture", HEADS)
def test_each_level_and_the_eval_logits_in_the_deterministic_limit(fixture: str) -> None:
    tensors, model = eval_model(fixture)
    with torch.no_grad():
        text, video, _ = head_features(model, tensors, None)
        per_frame = 1 + model.config.token_selection_top_k
        close(video.token_embeds.flatten(1, 2), tensors["selected_tokens_eval"], "[CLS] + top-3 tokens (eval)")
        output = model.similarity(text, video)
        levels = alignment_logits(output.alignment_scores, model.exp_logit_scale())
        for official, alignment in LEVELS.items():
            close(levels[alignment], tensors[f"level.{official}"], f"level {official} ({alignment})")
        close(output.logits, tensors["logits"], "eval logits")
        # The training code's similarity also multiplies the tokens by local_mat_weight1; the evaluation's does not.
        model.isa.apply_token_transform_in_eval = True
        close(model.similarity(text, video).logits, tensors["logits_with_pixel_transform"], "with the token transform")
    assert (tensors["logits_with_pixel_transform"] - tensors["logits"]).abs().max() > 0.05
    assert per_frame * model.config.max_frames == model.isa.pixel_mat_weight.shape[0]


@pytest.mark.parametrize("fixture", HEADS)
def test_training_loss_and_gradients_with_the_official_noise(fixture: str) -> None:
    tensors, model = load_head(fixture)
    model.train()
    text, video, inputs = head_features(model, tensors, tensors["noise"])
    close(video.token_embeds.flatten(1, 2), tensors["selected_tokens_train"], "selected tokens (train)")
    output = model._training_output(text, video, None)
    close(output.logits_per_text_video, tensors["logits_train"], "training logits")
    close(output.loss, tensors["loss"], "loss")
    output.loss.backward()
    checked = check_official_gradients(model, tensors, inputs, head_library_name)
    # 3 inputs, the logit scale, positions, 2 blocks x 12, the token scorer's 5, the 9 ISA matrices
    assert len(checked) == 3 + 1 + 1 + 2 * 12 + 5 + 9
    if fixture.endswith("padded"):  # UCoFiA lets padded frames and word positions into its softmaxes
        padded = ~tensors["video_mask"].bool()
        assert inputs["visual_tokens"].grad[padded].abs().max() > 1e-3
        assert inputs["seq_features"].grad[tensors["attention_mask"] == 0].abs().max() > 1e-3


def test_sk_norm_per_level_equals_the_official_evaluation() -> None:
    tensors, model = eval_model("ucofia_head")
    with torch.no_grad():
        text, video, _ = head_features(model, tensors, None)
        bank, _ = text_features(tensors, prefix="bank_")
        scale = model.exp_logit_scale()
        test_levels = alignment_logits(model.similarity(text, video).alignment_scores, scale)
        bank_levels = alignment_logits(model.similarity(bank, video).alignment_scores, scale)
    for official, alignment in LEVELS.items():
        close(bank_levels[alignment], tensors[f"bank_level.{official}"], f"bank level {official}")
    normalized = sinkhorn_normalized_level_logits(test_levels, bank_levels)
    close(normalized, tensors["logits_sk_normalized"], "SK-normalized logits", rtol=TOLERANCE)
    assert (normalized - tensors["logits"]).abs().max() > 0.1
    with pytest.raises(ValueError, match="same levels"):
        sinkhorn_normalized_level_logits(test_levels, {"word_token_isa": bank_levels["word_token_isa"]})


def test_fixtures_name_the_official_commit() -> None:
    for name in HEADS:
        _, metadata = load(name)
        assert (metadata["repo"], metadata["commit"]) == ("Ziyang412/UCoFiA", COMMIT)
