"""Writers of one index: two `unitrim index` processes at once store every file once, a repeated row is a corrupt
index, and files that cannot be read are skipped, never removed (killed writers: test_index_fragments.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lancedb
import pytest

from test_search_helpers import GOOD_IMAGES, GOOD_VIDEOS, make_model, save_model, write_image, write_media
from unitrim_hf.search import IndexFormatError, IndexStore, Searcher, index_folder
from unitrim_hf.search.cli import main
from unitrim_hf.search.index_table import ITEMS_TABLE

REPOSITORY = Path(__file__).resolve().parents[1]
GOOD = GOOD_VIDEOS + GOOD_IMAGES
# Each writer imports everything first, says it is ready, then starts `unitrim index` when told: both plan at once.
WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import torch, transformers, lancedb
    from unitrim_hf.search import indexer
    from unitrim_hf.search.cli import main
    ready, go, *arguments = sys.argv[1:]
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.01)
    sys.exit(main(arguments))
""")


@pytest.fixture(scope="module")
def model_and_processor():
    return make_model(seed=0)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    return save_model(tmp_path_factory.mktemp("model"))


def _image_folder(folder: Path, count: int, first_seed: int) -> Path:
    folder.mkdir(parents=True)
    for number in range(count):
        write_image(folder / f"image_{number:03d}.png", seed=first_seed + number)
    return write_media(folder / "videos", GOOD_VIDEOS[:2]).parent


def _stored_paths(index_dir: Path) -> list[str]:
    """Every row's path as the table holds it (read past the library's own checks)."""
    table = lancedb.connect(index_dir).open_table(ITEMS_TABLE).to_arrow()
    return [os.fsdecode(raw) for raw in table.column("path").to_pylist()]


def _files(*folders: Path) -> set[str]:
    return {str(path) for folder in folders for path in folder.rglob("*") if path.is_file()}


def _index_at_once(tmp_path: Path, model_folder: Path, index_dir: Path, folders: list[Path]) -> None:
    """Two real `unitrim index` processes, started at the same moment, one folder each."""
    go = tmp_path / "go"
    writers, ready = [], []
    for number, folder in enumerate(folders):
        ready.append(tmp_path / f"ready_{number}")
        arguments = ["index", str(folder), "--model", str(model_folder), "--index", str(index_dir), "--no-progress",
                     "--flush-every", "1000"]
        writers.append(subprocess.Popen(
            [sys.executable, "-c", WRITER, str(ready[-1]), str(go), *arguments], cwd=REPOSITORY,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"},
        ))
    deadline = time.monotonic() + 300
    while not all(path.exists() for path in ready):
        assert time.monotonic() < deadline and all(writer.poll() is None for writer in writers), "a writer failed to start"
        time.sleep(0.05)
    go.touch()
    for writer in writers:
        stdout, stderr = writer.communicate(timeout=300)
        assert writer.returncode == 0, stderr


# "same" (both writers on one folder) runs by default; the other two layouts take the same path with other folders.
@pytest.mark.parametrize(
    "folders", ["same", pytest.param("nested", marks=pytest.mark.slow), pytest.param("different", marks=pytest.mark.slow)]
)
def test_two_writers_at_once_store_every_file_once(tmp_path, model_folder, folders):
    first = _image_folder(tmp_path / "first", 24, first_seed=0)
    second = {"same": lambda: first, "nested": lambda: first / "videos",
              "different": lambda: _image_folder(tmp_path / "second", 24, first_seed=100)}[folders]()
    index_dir = tmp_path / "index"
    _index_at_once(tmp_path, model_folder, index_dir, [first, second])
    stored = _stored_paths(index_dir)
    assert sorted(stored) == sorted(_files(first, second))  # every file, each exactly once
    assert len(IndexStore.open(index_dir).items) == len(stored)


def test_a_repeated_path_is_a_corrupt_index(tmp_path, model_and_processor, capsys):
    model, processor = model_and_processor
    folder = write_media(tmp_path / "media", ("clip_a.mp4", "photo_a.png"))
    index_dir = tmp_path / "index"
    index_folder(folder, index_dir, model, processor, progress=False)
    table = lancedb.connect(index_dir).open_table(ITEMS_TABLE)
    table.add(table.to_arrow().slice(0, 1))  # what two racing commits left behind
    with pytest.raises(IndexFormatError, match="more than one row"):
        IndexStore.open(index_dir).items
    searcher = Searcher(index_dir, model, processor)
    with pytest.raises(IndexFormatError, match="more than one row"):
        searcher.search("a video", top_k=3, num_candidates=3)
    with pytest.raises(IndexFormatError, match="more than one row"):
        IndexStore.open(index_dir).load_features()
    with pytest.raises(IndexFormatError, match="more than one row"):
        index_folder(folder, index_dir, model, processor, progress=False)


def test_an_unreadable_subfolder_is_skipped_not_removed(tmp_path, model_and_processor, monkeypatch):
    model, processor = model_and_processor
    folder = write_media(tmp_path / "media", GOOD)
    index_dir = tmp_path / "index"
    index_folder(folder, index_dir, model, processor, progress=False)
    hidden = folder / "nested"
    inside = {str(path) for path in hidden.rglob("*") if path.is_file()}
    if os.geteuid() == 0:  # root reads any folder: make its listing fail as a chmod 000 would
        original = os.scandir

        def refusing_scandir(path="."):
            if Path(os.fsdecode(path)).absolute() == hidden:
                raise PermissionError(13, "Permission denied", os.fsdecode(path))
            return original(path)

        monkeypatch.setattr(os, "scandir", refusing_scandir)
    else:
        hidden.chmod(0)
    try:
        report = index_folder(folder, index_dir, model, processor, progress=False)
    finally:
        hidden.chmod(0o755)
        monkeypatch.undo()
    assert report.removed == [] and report.added == []
    assert {str(entry.path) for entry in report.skipped} == inside
    assert all("row is kept" in entry.reason for entry in report.skipped)
    assert sorted(_stored_paths(index_dir)) == sorted(_files(folder))
    again = index_folder(folder, index_dir, model, processor, progress=False)
    assert again.removed == [] and again.added == [] and again.skipped == [] and again.unchanged == len(GOOD)


def test_a_file_rewritten_during_a_reindex_keeps_its_row(tmp_path, model_and_processor, monkeypatch):
    model, processor = model_and_processor
    folder = write_media(tmp_path / "media", ("clip_a.mp4", "photo_a.png"))
    index_dir = tmp_path / "index"
    index_folder(folder, index_dir, model, processor, progress=False)
    photo = folder / "photo_a.png"
    write_image(photo, seed=50)  # changed: the re-index encodes it again
    original = type(processor).encode_images

    def rewriting_encode(self, path, *args, **kwargs):
        encoded = original(self, path, *args, **kwargs)
        write_image(Path(path), seed=51)  # rewritten again while it is being encoded
        return encoded

    monkeypatch.setattr(type(processor), "encode_images", rewriting_encode)
    report = index_folder(folder, index_dir, model, processor, progress=False)
    monkeypatch.undo()
    assert report.added == [] and report.removed == []
    assert [(entry.path.name, "replaced while being indexed" in entry.reason) for entry in report.skipped] == [
        ("photo_a.png", True)]
    assert str(photo) in _stored_paths(index_dir)  # the old row stays until a run encodes the new file
    again = index_folder(folder, index_dir, model, processor, progress=False)
    assert [Path(path).name for path in again.added] == ["photo_a.png"] and again.skipped == []
    assert sorted(_stored_paths(index_dir)) == sorted(_files(folder))


def test_a_full_disk_is_one_line_and_the_index_keeps_its_version(model_folder, tmp_path, monkeypatch, capsys) -> None:
    """Lance's "No space left on device" was a raw RuntimeError traceback (nothing was lost)."""
    from lancedb.table import LanceTable

    media = _image_folder(tmp_path / "media", 3, first_seed=40)
    index_dir = tmp_path / "index"
    assert main(["index", str(media), "--model", str(model_folder), "--index", str(index_dir), "--no-progress"]) == 0
    before = sorted(_stored_paths(index_dir))
    for number in range(3, 5):
        write_image(media / f"image_{number:03d}.png", seed=40 + number)

    def full_disk(*args, **kwargs):
        raise RuntimeError("lance error: LanceError(IO): No space left on device (os error 28), structural.rs:258:9")

    monkeypatch.setattr(LanceTable, "merge_insert", lambda self, on: type("Builder", (), {
        "when_matched_update_all": lambda b, *a, **k: b, "when_not_matched_insert_all": lambda b, *a, **k: b,
        "execute": full_disk})())
    capsys.readouterr()
    status = main(["index", str(media), "--model", str(model_folder), "--index", str(index_dir), "--no-progress"])
    error = capsys.readouterr().err
    assert status == 2 and "Traceback" not in error
    (line,) = [text for text in error.splitlines() if "error:" in text]
    assert "could not be written" in line and "No space left on device" in line and "last committed version" in line
    monkeypatch.undo()
    assert sorted(_stored_paths(index_dir)) == before
