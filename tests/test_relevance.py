"""The relevance signal: z of a result's score against the generic-caption bank's scores of the same item."""

from __future__ import annotations

import math

import pytest
import torch

from test_search_helpers import make_model, write_media
from unitrim_hf.search import Searcher, format_table, index_folder
from unitrim_hf.modeling.query_bank import GENERIC_CAPTIONS
from unitrim_hf.modeling.relevance import MATCH, MATCH_Z, NO_MATCH, WEAK, WEAK_Z, bank_z, relevance_label


def test_bank_z_is_the_standard_score_per_item():
    bank = torch.tensor([[1.0, 10.0], [2.0, 10.0], [3.0, 10.0]])
    z = bank_z(torch.tensor([4.0, 10.0]), bank)
    assert float(z[0]) == pytest.approx((4.0 - 2.0) / 1.0)
    assert math.isnan(float(z[1]))  # no spread: undefined
    assert math.isnan(float(bank_z(torch.tensor([1.0]), torch.tensor([[0.5]]))[0]))  # a bank of one
    with pytest.raises(ValueError):
        bank_z(torch.tensor([1.0, 2.0]), torch.zeros(3, 1))


def test_labels_cut_at_the_thresholds():
    assert relevance_label(MATCH_Z) == MATCH and relevance_label(MATCH_Z - 1e-9) == WEAK
    assert relevance_label(WEAK_Z) == WEAK and relevance_label(WEAK_Z - 1e-9) == NO_MATCH
    assert relevance_label(float("nan")) == WEAK


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    model, processor = make_model(seed=0)
    root = tmp_path_factory.mktemp("relevance")
    folder = write_media(root / "media", ("clip_a.mp4", "clip_b.avi", "photo_a.png"))
    index_folder(folder, root / "index", model, processor, batch_size=3, progress=False)
    return Searcher(root / "index", model, processor)


def test_search_results_carry_the_bank_z_computed_independently(searcher):
    query = "a red square shrinks"
    results = searcher.search(query, top_k=3, num_candidates=3)
    model, processor = searcher.model, searcher.processor
    bank = model.get_text_features(**processor(text=list(GENERIC_CAPTIONS)))
    text = model.get_text_features(**processor(text=[query]))
    for result in results:
        _, features = searcher.read_rows([result.item_index])
        visual = searcher.visual_features(features, result.kind)
        with torch.inference_mode():
            own = model.similarity(text, visual).logits[0, 0].float()
            generic = model.similarity(bank, visual).logits[:, 0].float()
        expected = float((own - generic.mean()) / generic.std())
        assert result.relevance == pytest.approx(expected, abs=1e-4)
        assert result.relevance_label == relevance_label(expected)
        assert result.to_dict()["relevance"] == pytest.approx(expected, abs=1e-3)
    table = format_table(results)
    assert results[0].relevance_label in table.splitlines()[1] and "generic captions" in table.splitlines()[-1]


def test_relevance_can_be_left_out(searcher):
    result = searcher.search("a red square", top_k=1, relevance=False)[0]
    assert math.isnan(result.relevance) and result.relevance_label == "" and result.to_dict()["relevance"] is None


def test_the_caption_bank_is_cached_per_model_and_inputs(searcher, tmp_path, monkeypatch, caplog):
    from unitrim_hf.search import bank_cache
    from unitrim_hf.search.bank_cache import CACHE_ENV, bank_text_features, cache_folder

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    model, processor = searcher.model, searcher.processor
    encoded = bank_text_features(model, processor, list(GENERIC_CAPTIONS), searcher.fingerprint)
    (written,) = cache_folder().iterdir()
    real_encoding = model.get_text_features

    def no_encoding(*args, **kwargs):
        raise AssertionError("the cached bank should have been read")

    monkeypatch.setattr(model, "get_text_features", no_encoding)
    bank_cache._IN_MEMORY.clear()  # from the disk cache
    cached = bank_text_features(model, processor, list(GENERIC_CAPTIONS), searcher.fingerprint)
    for name in ("pooler_output", "word_embeds", "word_mask", "triplet_embeds", "combined_embeds"):
        assert torch.equal(cached[name], encoded[name]), name
    written.unlink()  # from memory: the same processor and model need no disk read
    assert torch.equal(bank_text_features(model, processor, list(GENERIC_CAPTIONS), searcher.fingerprint).pooler_output,
                       encoded.pooler_output)
    with pytest.raises(AssertionError):  # other inputs are another key: encoded, not read
        bank_text_features(model, processor, ["a red square"], searcher.fingerprint)

    monkeypatch.setattr(model, "get_text_features", real_encoding)
    bank_cache._IN_MEMORY.clear()
    bank_text_features(model, processor, list(GENERIC_CAPTIONS), searcher.fingerprint)
    written.write_bytes(b"not safetensors")
    bank_cache._IN_MEMORY.clear()
    again = bank_text_features(model, processor, list(GENERIC_CAPTIONS), searcher.fingerprint)
    assert torch.equal(again.pooler_output, encoded.pooler_output) and "ignoring the unreadable" in caplog.text
