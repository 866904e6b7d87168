"""Matching words are whole words of the query without function words, also when CLIP's BPE splits a word into
several pieces ("shrinks" -> "shrin", "ks"; "zigzags" -> "zig", "z", "ags")."""

from __future__ import annotations

import pytest
import torch

from test_search_helpers import make_model
from unitrim_hf.modeling.modeling_outputs import UniTriMVisualFeatures
from unitrim_hf.search.explain import explain_match
from unitrim_hf.search.query import encode_query
from unitrim_hf.search.query_words import STOP_WORDS, content_words, whole_words

CAPTION = "a red square shrinks while a circle zigzags"


@pytest.fixture(scope="module")
def model_and_processor():
    return make_model(seed=0)


def _pieces(tokenizer, text: str) -> tuple[list[str], list[int]]:
    ids = tokenizer(text)["input_ids"]
    special = set(tokenizer.all_special_ids)
    positions = [position for position, token_id in enumerate(ids) if token_id not in special]
    return tokenizer.convert_ids_to_tokens([ids[p] for p in positions]), positions


def test_bpe_pieces_are_joined_into_whole_words(model_and_processor):
    tokenizer = model_and_processor[1].tokenizer
    tokens, positions = _pieces(tokenizer, CAPTION)
    assert len(tokens) > len(CAPTION.split())  # the caption does split into pieces
    words = whole_words(tokens, positions)
    assert [word.text for word in words] == CAPTION.split()
    assert [len(word.positions) for word in words] == [len(tokenizer.tokenize(w)) for w in CAPTION.split()]
    assert [word.text for word in content_words(tokens, positions)] == ["red", "square", "shrinks", "circle", "zigzags"]


def test_a_query_cut_inside_a_word_keeps_the_last_pieces_as_one_word():
    assert [w.text for w in whole_words(["red</w>", "zig", "z"], [1, 2, 3])] == ["red", "zigz"]
    with pytest.raises(ValueError):
        whole_words(["red</w>"], [1, 2])


def test_explanation_reports_whole_content_words_with_the_mean_of_their_pieces(model_and_processor):
    model, processor = model_and_processor
    query = encode_query(model, processor, CAPTION)
    generator = torch.Generator().manual_seed(1)
    num_frames, dim = 4, query.features.sentence_embeds.shape[-1]
    visual = UniTriMVisualFeatures(
        pooler_output=torch.randn(1, dim, generator=generator),
        frame_embeds=torch.randn(1, num_frames, dim, generator=generator),
        video_mask=torch.ones(1, num_frames, dtype=torch.bool),
    )
    explanation = explain_match(query, visual, torch.tensor([0.0, 0.5, 1.0, 1.5]), processor.tokenizer)
    words = [match.word for match in explanation.top_words]
    assert len(words) == 3 and len(set(words)) == 3
    assert set(words) <= set(CAPTION.split()) - STOP_WORDS
    # Each word's score is the mean cosine of its pieces with the best frame.
    normalize = torch.nn.functional.normalize
    frame = normalize(visual.frame_embeds[0, explanation.best_frame], dim=-1)
    for match in explanation.top_words:
        pieces = normalize(query.features.word_embeds[0, match.positions].float(), dim=-1)
        assert match.score == pytest.approx(float((pieces @ frame).mean()), abs=1e-5)
    scores = [match.score for match in explanation.top_words]
    assert scores == sorted(scores, reverse=True)
