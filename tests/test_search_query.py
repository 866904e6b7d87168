"""Searching an index: two-stage results against brute-force MGSA, kind filter, coarse recall, the IVF-PQ
coarse stage, explanations, reports and the `unitrim` command line."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from test_search_helpers import GOOD_IMAGES, GOOD_VIDEOS, make_model, save_model, write_media
from unitrim_hf.modeling.modeling_outputs import UniTriMVisualFeatures
from unitrim_hf.search import IndexStore, Searcher, format_table, index_folder, render_html, write_json
from unitrim_hf.search.cli import main
from unitrim_hf.search.query_words import STOP_WORDS
from unitrim_hf.search.thumbnails import decode_frame_at
from unitrim_hf.modeling.pooling import l2_normalize
from unitrim_hf.media.video_writer import write_video

QUERIES = ("a man rides a horse on the beach", "two dogs chase a ball", "sunset")


@pytest.fixture(scope="module")
def searcher(tmp_path_factory) -> Searcher:
    model, processor = make_model(seed=0)
    folder = write_media(tmp_path_factory.mktemp("collection"))
    index_dir = tmp_path_factory.mktemp("index")
    index_folder(folder, index_dir, model, processor, batch_size=4, progress=False)
    return Searcher(index_dir, model, processor)


def brute_force_ranking(searcher: Searcher, query: str, kinds=("video", "image")) -> list[tuple[str, float]]:
    """Every item scored independently with model.similarity on the stored features, best first."""
    items, features = IndexStore.open(searcher.store.location).load_features()
    encoded = searcher.encode(query)
    scored = []
    for row, item in enumerate(items):
        if item.kind not in kinds:
            continue
        visual = UniTriMVisualFeatures(
            pooler_output=features.video_embeds[row : row + 1].float(),
            frame_embeds=features.frame_embeds[row : row + 1].float(),
            video_mask=features.video_mask[row : row + 1].bool(),
            patch_embeds=features.patch_embeds[row : row + 1].float(),
            is_image=item.kind == "image",
        )
        with torch.inference_mode():
            logit = searcher.model.similarity(encoded.features, visual).logits[0, 0]
        scored.append((item.path, float(logit)))
    return sorted(scored, key=lambda pair: -pair[1])


def coarse_alignment_score(result) -> float:
    """The alignment the coarse stage ranks by: sentence_video for videos, the whole text_image score for images."""
    return result.alignment_scores["sentence_video" if result.kind == "video" else "text_image"]


@pytest.mark.parametrize("query", QUERIES)
def test_exhaustive_search_equals_brute_force_mgsa(searcher, query):
    expected = brute_force_ranking(searcher, query)
    results = searcher.search(query, top_k=len(searcher), num_candidates=len(searcher), explain=False)
    assert [result.path for result in results] == [path for path, _ in expected]
    for result, (_, logit) in zip(results, expected):
        assert result.score == pytest.approx(logit, abs=1e-5)
        assert len(result.alignment_scores) == (5 if result.kind == "video" else 1)


@pytest.mark.parametrize("query", QUERIES)
def test_small_candidate_set_keeps_the_exhaustive_order(searcher, query):
    exhaustive = {path: logit for path, logit in brute_force_ranking(searcher, query)}
    results = searcher.search(query, top_k=3, num_candidates=3, explain=False)
    returned = [result.path for result in results]
    assert returned == sorted(returned, key=lambda path: -exhaustive[path])
    # The candidates are the 3 best by the coarse score, i.e. the model's own sentence_video / text_image scores.
    everything = searcher.search(query, top_k=len(searcher), num_candidates=len(searcher), explain=False)
    coarse_best = sorted(everything, key=lambda result: -coarse_alignment_score(result))[:3]
    assert set(returned) == {result.path for result in coarse_best}


def test_coarse_stage_uses_the_spatial_text_feature_for_images(searcher):
    encoded = searcher.encode(QUERIES[0])
    results = searcher.search(encoded, top_k=len(searcher), num_candidates=len(searcher), explain=False)
    images = [result for result in results if result.kind == "image"]
    assert images and all(r.coarse_score == pytest.approx(coarse_alignment_score(r), abs=1e-5) for r in results)
    image_embed = searcher.read_rows([images[0].item_index])[1].video_embeds[0].float()
    with_spatial = float(l2_normalize(encoded.features.spatial_embeds[0]) @ image_embed)
    with_sentence = float(l2_normalize(encoded.features.sentence_embeds[0]) @ image_embed)
    assert images[0].coarse_score == pytest.approx(with_spatial, abs=1e-5)
    assert abs(with_sentence - images[0].coarse_score) > 1e-4  # t_sp, not the sentence


@pytest.mark.parametrize("kind", ["video", "image"])
def test_kind_filter(searcher, kind):
    results = searcher.search(QUERIES[1], top_k=20, kind=kind, explain=False)
    expected = brute_force_ranking(searcher, QUERIES[1], kinds=(kind,))
    assert {result.kind for result in results} == {kind}
    assert [result.path for result in results] == [path for path, _ in expected]
    assert len(results) == (len(GOOD_VIDEOS) if kind == "video" else len(GOOD_IMAGES))
    with pytest.raises(ValueError, match="kind must be one of"):
        searcher.search(QUERIES[1], kind="audio")


def test_coarse_recall_against_exhaustive_top_k(searcher):
    full = searcher.evaluate_coarse_recall(list(QUERIES), top_k=3, num_candidates=len(searcher))
    assert full.recall == 1.0 and full.per_query == [1.0] * len(QUERIES)
    small = searcher.evaluate_coarse_recall(list(QUERIES), top_k=3, num_candidates=2)
    for query, recall in zip(QUERIES, small.per_query):
        best = {path for path, _ in brute_force_ranking(searcher, query)[:3]}
        everything = searcher.search(query, top_k=len(searcher), num_candidates=len(searcher), explain=False)
        candidates = {r.path for r in sorted(everything, key=lambda r: -coarse_alignment_score(r))[:2]}
        assert recall == pytest.approx(len(best & candidates) / 3)
    assert small.recall == pytest.approx(sum(small.per_query) / len(QUERIES))


def test_ivf_pq_coarse_stage_keeps_the_exact_candidates(tmp_path):
    """Past the size threshold the index trains IVF-PQ; with exact re-ranking the candidates stay the exact ones."""
    from unitrim_hf.search.index_rows import FeatureLayout, StoredFeatures
    from unitrim_hf.search.index_table import IndexStore
    from unitrim_hf.search.model_fingerprint import ModelFingerprint

    generator = torch.Generator().manual_seed(0)
    layout, count = FeatureLayout(num_frames=2, top_k=0, embed_dim=16), 600
    centres = l2_normalize(torch.randn(12, 16, generator=generator))
    vectors = l2_normalize(centres[torch.arange(count) % 12] + 0.3 * torch.randn(count, 16, generator=generator))
    store = IndexStore.create(tmp_path / "index", ModelFingerprint("c" * 64, "w" * 64), layout, {})
    entries = [{"path": f"/media/item_{i:04d}.png", "kind": "image", "size": 1, "mtime_ns": 1, "num_frames": 1}
               for i in range(count)]
    store.upsert(entries, StoredFeatures(vectors, vectors[:, None].repeat(1, 2, 1), torch.ones(count, 2), torch.zeros(count, 2)))
    exact = [store.nearest(vector, 10, "image").items for vector in vectors[:20]]
    assert store.ensure_vector_index(min_rows=500, num_partitions=8, num_sub_vectors=4) and store.has_vector_index()
    assert {index.index_type for index in store._items.list_indices()} == {"IvfPq", "Bitmap"}
    for vector, expected in zip(vectors[:20], exact):
        found = store.nearest(vector, 10, "image", nprobes=8, refine_factor=10).items
        assert [item.path for item in found] == [item.path for item in expected]


def test_explanation_fields(searcher):
    query = QUERIES[0]
    encoded = searcher.encode(query)
    results = searcher.search(encoded, top_k=len(searcher), num_candidates=len(searcher))
    assert [list(t) for t in results[0].explanation.triplets] == [list(t) for t in searcher.processor.parse_triplets(query)]
    query_words = set(query.split()) - STOP_WORDS  # whole words, no function words ("a", "on", "the")
    for result in results:
        explanation = result.explanation
        _, stored = searcher.read_rows([result.item_index])
        mask = stored.video_mask[0].bool()
        # Recompute the frame relevance independently: mean of the sentence, best word and best triplet cosines.
        frames = l2_normalize(stored.frame_embeds[0].float())[mask]
        words_mask = encoded.features.word_mask[0].clone()
        words_mask[(encoded.input_ids == searcher.processor.tokenizer.eos_token_id)] = False
        words = l2_normalize(encoded.features.word_embeds[0][words_mask])
        triplets = l2_normalize(encoded.features.triplet_embeds[0, : len(explanation.triplets)])
        relevance = torch.stack([
            frames @ l2_normalize(encoded.features.sentence_embeds[0]),
            (words @ frames.T).max(0).values,
            (triplets @ frames.T).max(0).values,
        ]).mean(0)
        assert explanation.best_frame == int(relevance.argmax())
        assert explanation.best_frame_timestamp == pytest.approx(float(stored.timestamps[0, explanation.best_frame]))
        assert explanation.top_words and {word.word for word in explanation.top_words} <= query_words
        scores = [word.score for word in explanation.top_words]
        assert scores == sorted(scores, reverse=True)
        assert tuple(explanation.best_triplet) in [tuple(t) for t in explanation.triplets]
        if result.kind == "image":
            assert explanation.best_frame == 0 and explanation.best_frame_timestamp == 0.0


def test_decode_frame_at_returns_the_frame_shown_then(tmp_path):
    levels = np.arange(0, 240, 20, dtype=np.uint8)
    frames = np.repeat(levels[:, None, None, None], 32, axis=1).repeat(32, axis=2).repeat(3, axis=3)
    path = write_video(tmp_path / "levels.mp4", frames, fps=4, gop_size=3)
    for index in (0, 5, 11):
        decoded = decode_frame_at(path, index / 4)
        assert abs(float(decoded.mean()) - float(levels[index])) < 6


def test_reports_table_json_and_html(searcher, tmp_path):
    results = searcher.search(QUERIES[0], top_k=4)
    table = format_table(results)
    assert "word_patch" in table and Path(results[0].path).name in table and "best frame" in table
    assert "relevance" in table and results[0].relevance_label in table and "generic captions" in table
    written = json.loads(write_json(tmp_path / "out.json", QUERIES[0], results).read_text())
    assert written["query"] == QUERIES[0] and written["query_triplets"]
    first = written["results"][0]
    assert {"score", "alignment_scores", "path", "kind", "explanation", "relevance", "relevance_label"} <= set(first)
    assert {"best_frame", "best_frame_timestamp", "top_words", "best_triplet", "triplets"} <= set(first["explanation"])
    page = render_html(QUERIES[0], results)
    images = page.split('src="data:image/png;base64,')[1:]
    assert len(images) == len(results)
    thumbnail = Image.open(io.BytesIO(base64.b64decode(images[0].split('"')[0])))
    assert thumbnail.format == "PNG" and max(thumbnail.size) <= 160
    assert "matching triplet" in page and "man ride horse" in page


def test_cli_index_and_search_end_to_end(tmp_path, capsys):
    model_dir = save_model(tmp_path / "model")
    folder = write_media(tmp_path / "media", ("clip_a.mp4", "nested/photo_b.jpg", "notes.txt"))
    index_dir = tmp_path / "index"
    assert main(["index", str(folder), "--model", str(model_dir), "--index", str(index_dir), "--batch-size", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "indexed 2 new or changed files" in out and "notes.txt" in out

    json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    status = main([
        "search", "a red car drives", "--index", str(index_dir), "--model", str(model_dir), "--top-k", "5",
        "--kind", "all", "--json", str(json_path), "--html", str(html_path),
    ])
    assert status == 0
    out = capsys.readouterr().out
    assert "clip_a.mp4" in out and "photo_b.jpg" in out and "triplets: red car drive" in out
    payload = json.loads(json_path.read_text())
    assert len(payload["results"]) == 2 and payload["results"][0]["explanation"]["top_words"]
    assert "data:image/png;base64," in html_path.read_text()

    other_dir = save_model(tmp_path / "other", seed=3)
    assert main(["search", "a car", "--index", str(index_dir), "--model", str(other_dir)]) == 2
    assert "was built by" in capsys.readouterr().err


def test_exhaustive_scores_convert_the_index_in_chunks(searcher, monkeypatch):
    """Only a chunk of items is read and converted to float32 at a time; chunked scores equal the brute force."""
    import unitrim_hf.search.searcher as searcher_module

    monkeypatch.setattr(searcher_module, "RESCORE_CHUNK_ITEMS", 2)
    sizes: list[int] = []
    original = Searcher.visual_features

    def recording(self, features, kind):
        sizes.append(len(features))
        return original(self, features, kind)

    monkeypatch.setattr(Searcher, "visual_features", recording)
    logits, items = searcher.exhaustive_scores(searcher.encode(QUERIES[0]))
    assert len(items) == len(searcher) and max(sizes) <= 2 and len(sizes) >= len(searcher) // 2
    chunked = {item.path: float(logit) for logit, item in zip(logits, items)}
    for path, expected in brute_force_ranking(searcher, QUERIES[0]):
        assert chunked[path] == pytest.approx(expected, abs=1e-4)
