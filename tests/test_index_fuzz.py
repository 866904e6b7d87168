"""A damaged index is a clean library error or the right answer: byte flips across a small index's manifest, its
schema metadata and its data files, and renamed or retyped metadata fields."""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import pytest
from test_search_helpers import GOOD_IMAGES, GOOD_VIDEOS, make_model, write_media

from unitrim_hf.errors import UniTriMError
from unitrim_hf.search import IndexFormatError, Searcher, index_folder
from unitrim_hf.search.model_fingerprint import ModelFingerprint

# Six items: four videos, two images.
ITEMS = GOOD_VIDEOS + GOOD_IMAGES[:2]
QUERY = "a video"
SEED = 1234
MANIFEST_FLIPS = 90
METADATA_FLIPS = 60
DATA_FLIPS = 110
# The longest one damaged index may take to open and answer (an undamaged one: about 0.05 s).
FLIP_SECONDS = 10.0


@pytest.fixture(scope="module")
def model_and_processor():
    return make_model(seed=0)


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, model_and_processor) -> Path:
    """A six-item index of tiny-model features (never modified: every flip goes to a copy)."""
    model, processor = model_and_processor
    folder = write_media(tmp_path_factory.mktemp("media"), ITEMS)
    index_dir = tmp_path_factory.mktemp("index") / "index"
    index_folder(folder, index_dir, model, processor, batch_size=6, progress=False)
    return index_dir


def _ranking(index_dir: Path, model, processor) -> list[tuple[str, float]]:
    """The full ranking of `QUERY` over the index at `index_dir` (paths and scores, best first)."""
    searcher = Searcher(index_dir, model, processor)
    results = searcher.search(QUERY, top_k=len(ITEMS), num_candidates=len(ITEMS), explain=False)
    return [(result.path, result.score) for result in results]


def _latest_manifest(index_dir: Path) -> Path:
    manifests = (index_dir / "items.lance" / "_versions").glob("*.manifest")
    return max(manifests, key=lambda path: path.stat().st_mtime_ns)


def _flip_targets(index_dir: Path, rng: random.Random) -> list[tuple[Path, int, int]]:
    """(file relative to `index_dir`, byte offset, bit) of every flip: spread over the latest manifest, its
    stored index metadata (the schema metadata JSON) and the data files."""
    manifest = _latest_manifest(index_dir)
    raw = manifest.read_bytes()
    start = raw.find(b'{"format_version"')
    if start < 0:
        start = raw.find(b"format_version")
    assert start >= 0, "the index metadata was not found in the manifest"
    end = raw.find(b"}}", start) + 2
    targets = [(manifest, rng.randrange(len(raw)), rng.randrange(8)) for _ in range(MANIFEST_FLIPS)]
    targets += [(manifest, rng.randrange(start, end), rng.randrange(8)) for _ in range(METADATA_FLIPS)]
    data_files = sorted((index_dir / "items.lance" / "data").glob("*.lance"))
    assert data_files
    for _ in range(DATA_FLIPS):
        path = rng.choice(data_files)
        targets.append((path, rng.randrange(path.stat().st_size), rng.randrange(8)))
    return [(path.relative_to(index_dir), offset, bit) for path, offset, bit in targets]


def _flipped_copy(index_dir: Path, destination: Path, target: tuple[Path, int, int]) -> Path:
    shutil.copytree(index_dir, destination)
    relative, offset, bit = target
    path = destination / relative
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))
    return destination


def _outcome(index_dir: Path, model, processor, expected: list[tuple[str, float]]) -> str:
    """
    What searching the damaged index at `index_dir` gives: "correct" (the ranking `expected`),
    "index_format_error" ([`IndexFormatError`]) or "library_error" (another [`UniTriMError`], e.g. a flipped
    model hash read as another model). A wrong ranking fails the test; any other exception propagates.
    """
    try:
        ranking = _ranking(index_dir, model, processor)
    except IndexFormatError as error:
        assert str(index_dir.name) in str(error) or "corrupt" in str(error), f"the error names no index: {error}"
        return "index_format_error"
    except UniTriMError:
        return "library_error"
    assert ranking == expected, "a damaged index gave a wrong ranking without an error"
    return "correct"


@pytest.mark.timeout(180)
def test_byte_flips_give_a_library_error_or_the_right_ranking(small_index, model_and_processor, tmp_path):
    model, processor = model_and_processor
    expected = _ranking(small_index, model, processor)
    assert len(expected) == len(ITEMS)
    rng = random.Random(SEED)
    outcomes: dict[str, int] = {}
    failures = []
    began = time.monotonic()
    slowest = 0.0
    for number, target in enumerate(_flip_targets(small_index, rng)):
        copy = _flipped_copy(small_index, tmp_path / f"flip_{number}", target)
        started = time.monotonic()
        try:
            outcome = _outcome(copy, model, processor, expected)
        except Exception as error:  # noqa: BLE001 - reported with the flip below
            outcome = "other"
            failures.append(f"{target[0]} byte {target[1]} bit {target[2]}: {type(error).__name__}: {error}"[:300])
        slowest = max(slowest, time.monotonic() - started)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        shutil.rmtree(copy)
    elapsed = time.monotonic() - began
    print(f"byte flips: {sum(outcomes.values())} in {elapsed:.1f} s (slowest {slowest:.2f} s): {outcomes}")
    assert not failures, "\n".join(failures[:20])
    # A hang is caught by the test's timeout; a flip that makes a read this slow is a bug too.
    assert slowest < FLIP_SECONDS, f"one flip took {slowest:.1f} s"


def _rewrite_metadata(index_dir: Path, edit) -> None:
    """Replace the index metadata with `edit(metadata)`: the items table rewritten with the edited schema."""
    import lancedb

    database = lancedb.connect(str(index_dir))
    rows = database.open_table("items").to_arrow()
    key = b"unitrim_index"
    metadata = edit(json.loads(rows.schema.metadata[key]))
    rows = rows.replace_schema_metadata({key: json.dumps(metadata).encode()})
    database.create_table("items", data=rows, mode="overwrite")


def _flip_manifest_bytes(index_dir: Path, old: bytes, new: bytes) -> None:
    """Replace `old` by `new` (as long) in the latest manifest of the items table, in place."""
    manifest = _latest_manifest(index_dir)
    raw = manifest.read_bytes()
    assert len(old) == len(new) and raw.count(old) == 1
    manifest.write_bytes(raw.replace(old, new))


@pytest.fixture
def index_copy(small_index, tmp_path) -> Path:
    return Path(shutil.copytree(small_index, tmp_path / "index"))


def test_a_renamed_fingerprint_key_is_an_index_format_error(index_copy, model_and_processor):
    model, processor = model_and_processor

    # One changed bit in the latest manifest: "config_sha256" -> "config_sha257".
    _flip_manifest_bytes(index_copy, b'"config_sha256"', b'"config_sha257"')
    with pytest.raises(IndexFormatError, match="'config_sha256'") as raised:
        Searcher(index_copy, model, processor)
    assert str(index_copy) in str(raised.value)


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda m: m | {"model": "abc"}, "fingerprint"),
        (lambda m: m | {"model": m["model"] | {"weights_sha256": 7}}, "'weights_sha256'"),
        (lambda m: {k: v for k, v in m.items() if k != "layout"}, "layout"),
        (lambda m: m | {"layout": m["layout"] | {"embed_dim": "64"}}, "'embed_dim'"),
        (lambda m: m | {"layout": m["layout"] | {"embed_dim": m["layout"]["embed_dim"] + 1}}, "columns"),
        (lambda m: m | {"layout": {k: v for k, v in m["layout"].items() if k != "top_k"}}, "'top_k'"),
        (lambda m: m | {"processor_settings": [1]}, "'processor_settings'"),
    ],
)
def test_malformed_metadata_fields_are_index_format_errors(index_copy, model_and_processor, edit, field):
    model, processor = model_and_processor
    _rewrite_metadata(index_copy, edit)
    with pytest.raises(IndexFormatError, match=field) as raised:
        Searcher(index_copy, model, processor)
    assert str(index_copy) in str(raised.value)


def test_fingerprint_from_dict_names_the_field():
    with pytest.raises(IndexFormatError, match="'config_sha256'"):
        ModelFingerprint.from_dict({"weights_sha256": "b"})
    with pytest.raises(IndexFormatError, match="'name_or_path'"):
        ModelFingerprint.from_dict({"config_sha256": "a", "weights_sha256": "b", "name_or_path": 3})
    assert ModelFingerprint.from_dict({"config_sha256": "a", "weights_sha256": "b"}).name_or_path == ""


def test_an_index_written_before_the_resize_setting_is_read_as_made_with_the_float_resize(
    index_copy, model_and_processor
):
    import copy

    from unitrim_hf.media.image_transforms import CLIPFrameTransform

    model, processor = model_and_processor
    folder = write_media(index_copy.parent / "media", ITEMS)

    def without_resize(metadata: dict) -> dict:
        settings = metadata["processor_settings"]
        transform = {key: value for key, value in settings["image_transform"].items() if key != "resize"}
        return metadata | {"processor_settings": settings | {"image_transform": transform}}

    _rewrite_metadata(index_copy, without_resize)
    with pytest.raises(UniTriMError, match="built with processor settings"):
        index_folder(folder, index_copy, model, processor, batch_size=6, progress=False)
    float_processor = copy.deepcopy(processor)
    float_processor.image_transform = CLIPFrameTransform.from_dict({**processor.image_transform.to_dict(), "resize": "float"})
    index_folder(folder, index_copy, model, float_processor, batch_size=6, progress=False)
