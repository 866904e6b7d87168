"""The MGSA scorer: alignments declare what they read, the scorer follows the config in one hop, single-alignment
scorers and the coarse text vector agree with the full scores, and tiles give the same numbers as one block."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest
import torch

from model_inputs import random_image_inputs, random_text_inputs, random_video_inputs
from unitrim_hf import UniTriMConfig, UniTriMModel
from unitrim_hf.modeling.losses import _SCORED_FIELDS, TEXT_GATED_FIELDS
from unitrim_hf.modeling.alignment_table import IMAGE_ALIGNMENT, SCORED_TEXT_FIELDS, SCORED_VISUAL_FIELDS
from unitrim_hf.modeling.mgsa_scorer import ALIGNMENTS, TEXT_IMAGE, MGSAScorer, alignment_logits, coarse_text_embeds
from unitrim_hf.modeling.modeling_outputs import UniTriMTextFeatures, UniTriMVisualFeatures
from unitrim_hf.modeling.pooling import l2_normalize


@pytest.fixture(scope="module")
def encoded() -> tuple[UniTriMModel, UniTriMTextFeatures, UniTriMVisualFeatures, UniTriMVisualFeatures]:
    torch.manual_seed(0)
    # UCoFiA's `word_token_isa` reads the tokens of its token selection, sized for max_words and max_frames.
    ucofia_tokens = {"token_selection_top_k": 3, "token_selection_output": "token_embeds", "token_selection_eval": "hard",
                     "max_words": 12, "max_frames": 4}
    model = UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny", alignments=list(ALIGNMENTS), **ucofia_tokens)).eval()
    with torch.no_grad():
        text = model.get_text_features(**random_text_inputs(model.config, batch_size=5))
        video = model.get_video_features(**random_video_inputs(model.config, batch_size=4))
        image = model.get_image_features(**random_image_inputs(model.config, batch_size=3))
    return model, text, video, image


def only_declared(features, declared: tuple[str, ...]):
    """The features with every tensor field the alignment does not declare set to None."""
    kept = {f.name: getattr(features, f.name) if f.name in declared else None for f in fields(features)
            if isinstance(getattr(features, f.name), torch.Tensor)}
    return replace(features, **kept)


@pytest.mark.parametrize("name", [*ALIGNMENTS, IMAGE_ALIGNMENT])
def test_each_alignment_reads_only_the_fields_it_declares(encoded, name: str) -> None:
    model, text, video, image = encoded
    alignment = TEXT_IMAGE if name == IMAGE_ALIGNMENT else ALIGNMENTS[name]
    visual = image if name == IMAGE_ALIGNMENT else video
    temperature = model.config.aggregation_temperature
    full = alignment.score(text, visual, temperature)
    declared_only = alignment.score(
        only_declared(text, alignment.text_fields), only_declared(visual, alignment.visual_fields), temperature
    )
    torch.testing.assert_close(declared_only, full, rtol=0, atol=0)
    assert set(alignment.text_fields) <= set(SCORED_TEXT_FIELDS)
    assert set(alignment.visual_fields) <= set(SCORED_VISUAL_FIELDS)


def test_gathered_fields_are_the_declared_ones() -> None:
    declared = {field for a in (*ALIGNMENTS.values(), TEXT_IMAGE) for field in (*a.text_fields, *a.visual_fields)}
    declared |= set(TEXT_GATED_FIELDS)
    assert set(_SCORED_FIELDS) == declared and len(_SCORED_FIELDS) == len(declared)


def test_the_scorer_follows_the_config_in_one_hop() -> None:
    config = UniTriMConfig.from_preset("unitrim-tiny", alignments=["word_patch", "sentence_video"],
                                       aggregation_temperature=0.05)
    scorer = UniTriMModel(config).scorer
    assert [a.name for a in scorer.alignments] == ["word_patch", "sentence_video"]
    assert scorer.aggregation_temperature == 0.05
    with pytest.raises(ValueError, match="Unknown or no alignments"):
        MGSAScorer(["word_word"], 0.01)


def test_single_alignment_scorers_give_the_full_scorers_entries(encoded) -> None:
    model, text, video, _ = encoded
    with torch.no_grad():
        everything = model.similarity(text, video)
        for name in model.config.alignments:
            alone = model.scorer.only(name).similarity(text, video, model.exp_logit_scale())
            assert list(alone.alignment_scores) == [name]
            torch.testing.assert_close(alone.alignment_scores[name], everything.alignment_scores[name], rtol=0, atol=0)
            scaled = alignment_logits({name: everything.alignment_scores[name]}, model.exp_logit_scale())[name]
            torch.testing.assert_close(alone.logits, scaled)  # UCoFiA's word_token_isa carries no logit scale


def test_tiles_equal_one_block_for_videos_and_images(encoded) -> None:
    model, text, video, image = encoded
    with torch.no_grad():
        for visual in (video, image):
            block = model.similarity(text, visual, max_block_elements=None)
            tiled = model.similarity(text, visual, text_block_size=2, visual_block_size=3)
            assert list(tiled.alignment_scores) == list(block.alignment_scores)
            for name, score in block.alignment_scores.items():
                torch.testing.assert_close(tiled.alignment_scores[name], score, rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(tiled.logits, block.logits, rtol=1e-6, atol=1e-6)


def test_coarse_text_vectors_are_the_coarse_scores(encoded) -> None:
    model, text, video, image = encoded
    with torch.no_grad():
        for_videos, for_images = coarse_text_embeds(text, for_images=False), coarse_text_embeds(text, for_images=True)
        scores = model.similarity(text, video).alignment_scores["sentence_video"]
        torch.testing.assert_close(for_videos @ video.video_embeds.t(), scores, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(for_images, l2_normalize(text.spatial_embeds))
        image_scores = model.similarity(text, image).alignment_scores[IMAGE_ALIGNMENT]
        torch.testing.assert_close(for_images @ image.video_embeds.t(), image_scores, rtol=1e-6, atol=1e-6)


def _failing_compile(*arguments, **options):
    def compiled(*call_arguments):
        raise RuntimeError("no working Triton")

    return compiled


def test_automatic_compilation_falls_back_to_eager_when_the_compiled_code_fails(encoded, monkeypatch) -> None:
    model, text, video, _ = encoded
    monkeypatch.setattr(torch, "compile", _failing_compile)
    scorer = MGSAScorer.from_config(model.config, isa=model.isa)
    eager = scorer.similarity(text, video, model.exp_logit_scale()).logits
    # "auto" compiles only on CUDA for large galleries: ask for the function that setting picks there.
    tile = scorer._tile_function(torch.device("cuda"), num_pairs=2**16)
    units = ALIGNMENTS["sentence_video"]
    with pytest.warns(RuntimeWarning, match="no working Triton"):
        fallback = tile(units, units.text_units(text), units.visual_units(video), scorer.aggregation_temperature)
    expected = units.score_units(units.text_units(text), units.visual_units(video), scorer.aggregation_temperature)
    torch.testing.assert_close(fallback, expected)
    assert scorer.compile_mode is False  # not tried again
    torch.testing.assert_close(scorer.similarity(text, video, model.exp_logit_scale()).logits, eager)


def test_compilation_asked_for_explicitly_raises_its_failure(encoded, monkeypatch) -> None:
    model, text, video, _ = encoded
    monkeypatch.setattr(torch, "compile", _failing_compile)
    scorer = MGSAScorer.from_config(model.config, isa=model.isa)
    scorer.compile()
    with pytest.raises(RuntimeError, match="no working Triton"):
        scorer.similarity(text, video, model.exp_logit_scale())
