"""The search's ranking rule (best score first, ties by lower row id) with partial selection, and searches with
tied items."""

from __future__ import annotations

import shutil

import pytest
import torch

from test_search_helpers import make_model, write_image
from unitrim_hf.search import Searcher, index_folder
from unitrim_hf.search.ranking import best_first


def _sorted_reference(scores: list[float], row_ids: list[int], top_k: int) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (-scores[i], row_ids[i]))[:top_k]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_best_first_equals_a_full_sort_with_ties(dtype) -> None:
    generator = torch.Generator().manual_seed(0)
    for size in (1, 2, 7, 50):
        # Few distinct values: many ties, at the cut of the top-k included.
        scores = torch.randint(0, 4, (size,), generator=generator).to(dtype) / 3
        row_ids = torch.randperm(size * 3, generator=generator)[:size].tolist()
        for top_k in range(1, size + 3):
            expected = _sorted_reference(scores.tolist(), row_ids, top_k)
            assert best_first(scores, row_ids, top_k) == expected, (size, top_k)


def test_best_first_edge_cases() -> None:
    assert best_first(torch.zeros(0), [], 5) == []
    assert best_first(torch.tensor([1.0, 3.0]), [4, 2], 0) == []
    # Every score tied: row id order.
    assert best_first(torch.full((4,), 0.5), [9, 3, 7, 1], 3) == [3, 1, 2]
    with pytest.raises(ValueError, match="3 scores for 2 row ids"):
        best_first(torch.zeros(3), [0, 1], 1)


def test_identical_files_rank_by_row_id_in_every_stage(tmp_path) -> None:
    """Copies of one image have equal coarse and MGSA scores: searches list them by row id, and the exhaustive
    top-k of the recall check is the same set."""
    model, processor = make_model(seed=0)
    folder = tmp_path / "media"
    folder.mkdir()
    write_image(folder / "original.png", seed=1)
    for name in ("copy_b.png", "copy_c.png", "copy_a.png"):
        shutil.copy(folder / "original.png", folder / name)
    write_image(folder / "other.png", seed=2)
    index_folder(folder, tmp_path / "index", model, processor, progress=False)
    searcher = Searcher(tmp_path / "index", model, processor)
    results = searcher.search("a red square", top_k=5, num_candidates=5, explain=False)
    copies = [result for result in results if result.path.endswith(("original.png", "copy_a.png", "copy_b.png", "copy_c.png"))]
    assert len(copies) == 4 and len({result.score for result in copies}) == 1
    assert [result.item_index for result in copies] == sorted(result.item_index for result in copies)
    # Every cut, inside the tie included, keeps a prefix of the full order (the lowest row ids of the tie).
    encoded = searcher.encode("a red square")
    coarse = [item.row_id for item in searcher.coarse_candidates(encoded, 5).items]
    assert len(coarse) == 5
    for cut in range(1, 5):
        assert [r.item_index for r in searcher.search(encoded, top_k=cut, num_candidates=5, explain=False)] == [
            r.item_index for r in results[:cut]]
        assert [item.row_id for item in searcher.coarse_candidates(encoded, cut).items] == coarse[:cut]
    assert searcher.evaluate_coarse_recall(["a red square"], top_k=2, num_candidates=5).recall == 1.0
