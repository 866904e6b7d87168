"""The coarse stage's vectors are verified too: one flipped bit in a stored search vector is a clear error, never
a best match silently ranked out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from test_search_helpers import GOOD_IMAGES, GOOD_VIDEOS, make_model, write_media
from unitrim_hf.search import IndexFormatError, IndexStore, Searcher, index_folder


@pytest.fixture(scope="module")
def model_and_processor():
    return make_model(seed=0)


def _flip_one_bit_of_a_vector(index_dir: Path) -> str:
    """Flip one bit in the middle of a video's stored coarse vector; returns that file's name."""
    items, features = IndexStore.open(index_dir).load_features()
    target = next(row for row, item in enumerate(items) if item.kind == "video")
    needle = features.video_embeds[target].float().numpy().astype(np.float32).tobytes()
    flipped = 0
    for path in (index_dir / "items.lance" / "data").rglob("*.lance"):
        data = bytearray(path.read_bytes())
        offset = data.find(needle)
        if offset >= 0:
            data[offset + len(needle) // 2 + 1] ^= 0x01
            path.write_bytes(bytes(data))
            flipped += 1
    assert flipped == 1, "the stored vector was not found once in the data files"
    return Path(items[target].path).name


def test_a_flipped_bit_in_a_search_vector_is_an_index_format_error(tmp_path, model_and_processor):
    model, processor = model_and_processor
    folder = write_media(tmp_path / "media", GOOD_VIDEOS + GOOD_IMAGES)
    index_dir = tmp_path / "index"
    index_folder(folder, index_dir, model, processor, progress=False)
    assert len(Searcher(index_dir, model, processor)) == len(GOOD_VIDEOS + GOOD_IMAGES)  # intact: opens
    name = _flip_one_bit_of_a_vector(index_dir)
    with pytest.raises(IndexFormatError, match=f"search vector of .*{name}.* is corrupt"):
        Searcher(index_dir, model, processor)
    with pytest.raises(IndexFormatError, match=name):  # nor is a vector index trained on it
        IndexStore.open(index_dir).ensure_vector_index(min_rows=1, num_partitions=1, num_sub_vectors=1)
