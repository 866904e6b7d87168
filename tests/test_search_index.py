"""Building the search index: content-based scanning, stored features, model fingerprint, incremental and
resumable indexing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from test_search_helpers import BAD_FILES, GOOD_IMAGES, GOOD_VIDEOS, NUM_FRAMES, make_model, write_media
from unitrim_hf.errors import UniTriMError
from unitrim_hf.search import (
    IndexModelMismatchError,
    IndexStore,
    Indexer,
    Searcher,
    classify_file,
    index_folder,
    scan_folder,
)
from unitrim_hf.search.model_fingerprint import model_fingerprint


@pytest.fixture(scope="module")
def model_and_processor():
    return make_model(seed=0)


@pytest.fixture(scope="module")
def media_folder(tmp_path_factory) -> Path:
    return write_media(tmp_path_factory.mktemp("collection"))


@pytest.fixture(scope="module")
def built_index(tmp_path_factory, media_folder, model_and_processor):
    model, processor = model_and_processor
    index_dir = tmp_path_factory.mktemp("index")
    report = index_folder(media_folder, index_dir, model, processor, batch_size=3, progress=False)
    return index_dir, report


def _names(paths) -> set[str]:
    return {Path(path).name for path in paths}


def _features_by_path(index_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    items, features = IndexStore.open(index_dir).load_features()
    by_path = {}
    for row, item in enumerate(items):
        by_path[item.path] = {
            "kind": item.kind,
            "video_embeds": features.video_embeds[row],
            "frame_embeds": features.frame_embeds[row],
            "video_mask": features.video_mask[row],
            "timestamps": features.timestamps[row],
            "patch_embeds": features.patch_embeds[row],
        }
    return by_path


def _assert_same_features(actual: dict, expected: dict) -> None:
    """Two `_features_by_path` tables hold the same items with equal features (fp16 storage tolerance)."""
    assert set(actual) == set(expected)
    for path, fields in expected.items():
        for name, value in fields.items():
            if isinstance(value, torch.Tensor):
                torch.testing.assert_close(actual[path][name].float(), value.float(), atol=2e-3, rtol=0, msg=f"{path} {name}")
            else:
                assert actual[path][name] == value


def test_scan_classifies_by_content_not_extension(media_folder):
    scan = scan_folder(media_folder)
    kinds = {entry.path.name: entry.kind for entry in scan.media}
    # The truncated webm still opens (its header is intact); the indexer rejects it when its frames fail to decode.
    expected = {Path(name).name: "video" for name in GOOD_VIDEOS} | {Path(name).name: "image" for name in GOOD_IMAGES}
    assert kinds == expected | {"truncated.webm": "video"}
    skipped = {entry.path.name: entry.reason for entry in scan.skipped}
    assert {"broken.mp4", "notes.txt", "text_renamed.mp4"} <= set(skipped)
    assert "not a video or image" in skipped["text_renamed.mp4"]
    assert classify_file(media_folder / "no_extension_jpeg").kind == "image"
    assert "cannot read" in classify_file(media_folder / "missing.mp4").reason


def test_index_stores_good_files_and_lists_the_others(built_index, media_folder):
    index_dir, report = built_index
    good = {Path(name).name for name in GOOD_VIDEOS + GOOD_IMAGES}
    assert _names(report.added) == good
    reasons = {entry.path.name: entry.reason for entry in report.skipped}
    assert set(reasons) == set(BAD_FILES)
    assert "truncated or corrupt" in reasons["truncated.webm"]
    assert all(reason for reason in reasons.values())
    store = IndexStore.open(index_dir)
    assert {Path(entry["path"]).name for entry in store.skipped} == set(BAD_FILES)
    assert {item.kind for item in store.items} == {"video", "image"}
    assert store.fingerprint.config_sha256 and store.fingerprint.weights_sha256
    assert all(len(item.content_sha256) == 64 for item in store.items)
    _, features = store.load_features()
    assert features.frame_embeds.dtype == torch.float16 and features.patch_embeds.dtype == torch.float16
    assert features.frame_embeds.shape[1:] == (NUM_FRAMES, 32)
    assert features.patch_indices.shape[:2] == (len(store), NUM_FRAMES)


def test_stored_features_equal_the_model_features(built_index, media_folder, model_and_processor):
    model, processor = model_and_processor
    index_dir, _ = built_index
    stored = _features_by_path(index_dir)
    video = str(media_folder / "clip_b.avi")
    with torch.inference_mode():
        expected = model.get_video_features(**processor.encode_videos(video))
        image_expected = model.get_image_features(**processor.encode_images(media_folder / "photo_a.png"))
    entry = stored[video]
    torch.testing.assert_close(entry["video_embeds"].float(), expected.video_embeds[0], atol=2e-3, rtol=0)
    torch.testing.assert_close(entry["frame_embeds"].float(), expected.frame_embeds[0], atol=2e-3, rtol=0)
    torch.testing.assert_close(entry["patch_embeds"].float(), expected.patch_embeds[0], atol=2e-3, rtol=0)
    sampled = processor.frame_sampler(video)
    torch.testing.assert_close(entry["timestamps"], torch.tensor(sampled.timestamps, dtype=torch.float32))

    image = stored[str(media_folder / "photo_a.png")]
    assert image["kind"] == "image" and image["video_mask"].tolist() == [1, 0, 0, 0]
    torch.testing.assert_close(image["frame_embeds"][0].float(), image_expected.frame_embeds[0, 0], atol=2e-3, rtol=0)
    assert float(image["frame_embeds"][1:].abs().sum()) == 0.0


@pytest.mark.parametrize("difference", ["weights", "configuration"])
def test_index_built_by_another_model_is_refused(built_index, model_and_processor, difference):
    index_dir, _ = built_index
    _, processor = model_and_processor
    other, _ = make_model(seed=1) if difference == "weights" else make_model(seed=0, aggregation_temperature=0.05)
    with pytest.raises(IndexModelMismatchError) as raised:
        Searcher(index_dir, other, processor)
    message = str(raised.value)
    assert difference in message and str(index_dir) in message and "config sha256" in message
    assert isinstance(raised.value, UniTriMError)
    with pytest.raises(IndexModelMismatchError):
        Indexer(index_dir, other, processor, progress=False)


def test_fingerprint_is_stable_and_sensitive(model_and_processor):
    model, _ = model_and_processor
    assert model_fingerprint(model) == model_fingerprint(model)
    changed = make_model(seed=0)[0]
    with torch.no_grad():
        changed.temporal_encoder.frame_position_embedding.weight[0, 0] += 0.5
    assert model_fingerprint(changed).weights_sha256 != model_fingerprint(model).weights_sha256
    assert model_fingerprint(changed).config_sha256 == model_fingerprint(model).config_sha256


def test_one_changed_weight_anywhere_is_refused(built_index, model_and_processor):
    """Every byte of every tensor counts: the smallest change of one element of the largest tensor is refused."""
    index_dir, _ = built_index
    _, processor = model_and_processor
    changed = make_model(seed=0)[0]
    name, tensor = max(changed.state_dict().items(), key=lambda pair: pair[1].numel())
    with torch.no_grad():
        flat = tensor.view(-1)
        position = flat.numel() // 2 + 1  # not at any regular sampling position
        flat[position] = torch.nextafter(flat[position], torch.tensor(float("inf")))
    with pytest.raises(IndexModelMismatchError, match="weights"):
        Searcher(index_dir, changed, processor)


def test_adding_files_later_gives_the_same_index(tmp_path, built_index, media_folder, model_and_processor):
    model, processor = model_and_processor
    folder = tmp_path / "grows"
    first = ("clip_a.mp4", "photo_a.png", "notes.txt")

    def copy(names):  # the same bytes as in the collection built at once
        for name in names:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(media_folder / name, folder / name)

    copy(first)
    index_dir = tmp_path / "index"
    report = index_folder(folder, index_dir, model, processor, batch_size=2, progress=False)
    assert _names(report.added) == {"clip_a.mp4", "photo_a.png"}
    rest = tuple(name for name in GOOD_VIDEOS + GOOD_IMAGES + BAD_FILES if name not in first)
    copy(rest)
    second = index_folder(folder, index_dir, model, processor, batch_size=4, progress=False)
    assert second.unchanged == 2 and _names(second.added) == {Path(name).name for name in rest} - set(BAD_FILES)

    at_once, grown = _features_by_path(built_index[0]), _features_by_path(index_dir)
    relative = lambda table, root: {str(Path(path).relative_to(root)): value for path, value in table.items()}
    at_once, grown = relative(at_once, media_folder), relative(grown, folder)
    _assert_same_features(grown, at_once)
    assert _names(entry.path for entry in second.skipped) == set(BAD_FILES)
    # Unchanged third run: nothing re-encoded, nothing retried.
    third = index_folder(folder, index_dir, model, processor, progress=False)
    assert third.added == [] and third.unchanged == len(at_once)


def test_changed_and_deleted_files_are_updated(tmp_path, model_and_processor):
    model, processor = model_and_processor
    folder = write_media(tmp_path / "media", ("clip_a.mp4", "photo_a.png", "nested/photo_b.jpg"))
    index_dir = tmp_path / "index"
    index_folder(folder, index_dir, model, processor, progress=False)
    before = _features_by_path(index_dir)[str(folder / "photo_a.png")]["video_embeds"]
    from test_search_helpers import write_image

    write_image(folder / "photo_a.png", seed=42)
    (folder / "nested" / "photo_b.jpg").unlink()
    report = index_folder(folder, index_dir, model, processor, progress=False)
    assert _names(report.added) == {"photo_a.png"}  # replaced in place by its new row
    assert _names(report.removed) == {"photo_b.jpg"}
    after = _features_by_path(index_dir)
    assert set(_names(after)) == {"clip_a.mp4", "photo_a.png"}
    assert not torch.equal(after[str(folder / "photo_a.png")]["video_embeds"], before)


def test_add_files_indexes_only_the_given_files(tmp_path, media_folder, model_and_processor):
    model, processor = model_and_processor
    indexer = Indexer(tmp_path / "index", model, processor, progress=False)
    report = indexer.add_files([media_folder / "clip_a.mp4", media_folder / "notes.txt"])
    assert _names(report.added) == {"clip_a.mp4"} and _names(e.path for e in report.skipped) == {"notes.txt"}
    again = indexer.add_files([media_folder / "clip_a.mp4"])
    assert again.added == [] and again.unchanged == 1


def test_resume_after_interruption_does_not_reencode(tmp_path, media_folder, model_and_processor, monkeypatch):
    model, processor = model_and_processor
    index_dir = tmp_path / "index"
    original_encode = Indexer.encode
    encoded_paths: list[str] = []

    def interrupted_encode(self, decoded):
        if len(encoded_paths) >= 4:
            raise KeyboardInterrupt("simulated interruption")
        encoded_paths.extend(str(item.media.path) for item in decoded)
        return original_encode(self, decoded)

    monkeypatch.setattr(Indexer, "encode", interrupted_encode)
    with pytest.raises(KeyboardInterrupt):
        index_folder(media_folder, index_dir, model, processor, batch_size=2, flush_every=2, progress=False)
    flushed = {item.path for item in IndexStore.open(index_dir).items}
    assert len(flushed) == 4 and flushed == set(encoded_paths)

    encoded_paths.clear()

    def counting_encode(self, decoded):
        encoded_paths.extend(str(item.media.path) for item in decoded)
        return original_encode(self, decoded)

    monkeypatch.setattr(Indexer, "encode", counting_encode)
    report = index_folder(media_folder, index_dir, model, processor, batch_size=2, flush_every=2, progress=False)
    total = len(GOOD_VIDEOS) + len(GOOD_IMAGES)
    assert not flushed & set(encoded_paths)
    assert len(encoded_paths) == total - 4 and report.unchanged == 4
    assert len(IndexStore.open(index_dir).items) == total


def test_open_without_index_is_a_clear_error(tmp_path, model_and_processor):
    model, processor = model_and_processor
    with pytest.raises(UniTriMError, match="no index at"):
        Searcher(tmp_path, model, processor)
    with pytest.raises(UniTriMError, match="not an existing folder"):
        index_folder(tmp_path / "missing", tmp_path / "index", model, processor, progress=False)
    assert not (tmp_path / "index").exists()  # nothing created for a folder that does not exist
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "manifest.json").write_text("{}")
    with pytest.raises(UniTriMError, match="earlier unitrim_hf version"):
        Searcher(tmp_path / "old", model, processor)


def test_two_indexers_on_one_index_keep_it_consistent(tmp_path, media_folder, model_and_processor):
    """Two Indexer objects (as two processes would) updating one index in turn, each with a stale manifest."""
    model, processor = model_and_processor
    parts = {"first": ("clip_a.mp4", "clip_b.avi"), "second": ("photo_a.png", "nested/photo_b.jpg"), "third": ("clip_c.webm",)}
    for part, names in parts.items():
        for name in names:
            (tmp_path / part / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(media_folder / name, tmp_path / part / name)
    index_dir = tmp_path / "shared_index"
    writer_a = Indexer(index_dir, model, processor, progress=False)
    writer_b = Indexer(index_dir, model, processor, progress=False)
    writer_a.index_folder(tmp_path / "first")
    writer_b.index_folder(tmp_path / "second")
    writer_a.index_folder(tmp_path / "third")
    writer_a.index_folder(tmp_path / "first")  # unchanged: must not re-add or drop anything

    store = IndexStore.open(index_dir)
    grown = _features_by_path(index_dir)
    assert len(grown) == len(store.items) == 5

    at_once_dir = tmp_path / "at_once"
    Indexer(at_once_dir, model, processor, progress=False).add_files(
        [tmp_path / part / name for part, names in parts.items() for name in names]
    )
    at_once = _features_by_path(at_once_dir)
    _assert_same_features(grown, at_once)


def test_add_files_indexes_a_repeated_file_once(tmp_path, media_folder, model_and_processor, monkeypatch):
    model, processor = model_and_processor
    clip = media_folder / "clip_a.mp4"
    monkeypatch.chdir(media_folder)
    report = Indexer(tmp_path / "index", model, processor, progress=False).add_files(
        [clip, clip, str(clip), "clip_a.mp4", media_folder / "nested" / ".." / "clip_a.mp4"]
    )
    assert report.added == [str(clip)]
    assert [item.path for item in IndexStore.open(tmp_path / "index").items] == [str(clip)]


def test_unexpected_error_on_one_file_skips_it_and_continues(tmp_path, media_folder, model_and_processor, monkeypatch):
    model, processor = model_and_processor
    folder = tmp_path / "media"
    folder.mkdir()
    for name in ("clip_a.mp4", "clip_b.avi", "photo_a.png"):
        shutil.copy2(media_folder / name, folder / name)
    sampler_class = type(processor.frame_sampler)
    original_call = sampler_class.__call__

    def failing_call(self, path, *args, **kwargs):
        if Path(path).name == "clip_b.avi":
            raise RuntimeError("decoder exploded")
        return original_call(self, path, *args, **kwargs)

    monkeypatch.setattr(sampler_class, "__call__", failing_call)
    report = index_folder(folder, tmp_path / "index", model, processor, batch_size=3, progress=False)
    assert _names(report.added) == {"clip_a.mp4", "photo_a.png"}
    [skipped] = report.skipped
    assert skipped.path.name == "clip_b.avi"
    assert "RuntimeError" in skipped.reason and "decoder exploded" in skipped.reason


def test_an_animated_gif_is_indexed_as_a_video_and_a_still_gif_as_an_image(tmp_path, model_and_processor):
    from PIL import Image

    frames = [Image.new("RGB", (32, 32), (40 * index, 255 - 40 * index, 90)) for index in range(5)]
    animated, still = tmp_path / "media" / "moving.gif", tmp_path / "media" / "still.gif"
    animated.parent.mkdir()
    frames[0].save(animated, save_all=True, append_images=frames[1:], duration=[100, 200, 100, 300, 100], loop=0)
    frames[0].save(still)
    assert classify_file(animated).kind == "video" and classify_file(still).kind == "image"
    model, processor = model_and_processor
    report = Indexer(tmp_path / "index", model, processor, progress=False).add_files([animated, still])
    assert _names(report.added) == {"moving.gif", "still.gif"} and report.skipped == []
    results = Searcher(tmp_path / "index", model, processor).search("a colour", top_k=2)
    kinds = {Path(result.path).name: result.kind for result in results}
    assert kinds == {"moving.gif": "video", "still.gif": "image"}
    video = next(result for result in results if result.kind == "video")
    assert len(video.explanation.frame_scores) > 1  # several frames of the GIF were encoded


def test_opening_an_index_lists_its_tables_once(tmp_path, built_index, media_folder, model_and_processor, monkeypatch):
    import lancedb.db

    model, processor = model_and_processor
    listings = []
    list_tables = lancedb.db.LanceDBConnection.list_tables

    def counting_list_tables(self, *args, **kwargs):
        listings.append(1)
        return list_tables(self, *args, **kwargs)

    monkeypatch.setattr(lancedb.db.LanceDBConnection, "list_tables", counting_list_tables)
    index_dir, _ = built_index
    assert len(Searcher(index_dir, model, processor)) == len(GOOD_VIDEOS) + len(GOOD_IMAGES)
    assert len(listings) == 1
    listings.clear()
    assert Indexer(index_dir, model, processor, progress=False).store is not None
    assert len(listings) == 1
    # A new index in an existing empty folder: one look for an earlier index, none after creating it.
    (tmp_path / "index").mkdir()
    listings.clear()
    report = Indexer(tmp_path / "index", model, processor, progress=False).add_files([media_folder / "photo_a.png"])
    assert _names(report.added) == {"photo_a.png"}
    assert len(listings) == 1
