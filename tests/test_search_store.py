"""The Lance index store under stress: corrupt rows, a killed re-index, concurrent readers, several processes,
atomic reports and hostile file names."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from test_search_helpers import GOOD_IMAGES, GOOD_VIDEOS, make_model, save_model, write_image, write_media
from unitrim_hf.search import IndexFormatError, IndexStore, Indexer, Searcher, index_folder, render_html, write_html
from unitrim_hf.search.cli import main

REPOSITORY = Path(__file__).resolve().parents[1]
GOOD = GOOD_VIDEOS + GOOD_IMAGES


@pytest.fixture(scope="module")
def model_and_processor():
    return make_model(seed=0)


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    return write_media(tmp_path_factory.mktemp("collection"), GOOD)


@pytest.fixture
def built(tmp_path, collection, model_and_processor) -> tuple[Path, Path]:
    """A fresh copy of the collection and its index."""
    model, processor = model_and_processor
    folder = tmp_path / "media"
    shutil.copytree(collection, folder)
    index_dir = tmp_path / "index"
    index_folder(folder, index_dir, model, processor, batch_size=4, progress=False)
    return folder, index_dir


def _touch_all(folder: Path) -> None:
    """Give every file a new modification time (its content unchanged): all of them must be re-encoded."""
    later = time.time_ns() + 10**9
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(later, later))


def _all_paths(searcher: Searcher) -> set[str]:
    results = searcher.search("a video", top_k=len(searcher), num_candidates=len(searcher), explain=False)
    return {result.path for result in results}


def test_a_flipped_byte_in_stored_features_is_an_index_format_error(built, model_and_processor, capsys):
    model, processor = model_and_processor
    _, index_dir = built
    items, features = IndexStore.open(index_dir).load_features()
    target = next(row for row, item in enumerate(items) if item.kind == "video")
    needle = features.frame_embeds[target].numpy().tobytes()
    data_files = [path for path in (index_dir / "items.lance" / "data").rglob("*.lance")]
    flipped = False
    for path in data_files:
        data = bytearray(path.read_bytes())
        offset = data.find(needle)
        if offset >= 0:
            data[offset + len(needle) // 2] ^= 0x10
            path.write_bytes(bytes(data))
            flipped = True
    assert flipped, "the stored frame features were not found in the data files"
    searcher = Searcher(index_dir, model, processor)
    with pytest.raises(IndexFormatError, match=Path(items[target].path).name) as raised:
        searcher.search("a video", top_k=len(searcher), num_candidates=len(searcher))
    assert "corrupt" in str(raised.value)
    model_dir = _saved_model(index_dir.parent)
    capsys.readouterr()
    assert main(["search", "a video", "--index", str(index_dir), "--model", str(model_dir), "--num-candidates", "50"]) == 2
    error = capsys.readouterr().err
    [line] = [line for line in error.splitlines() if line.startswith("unitrim search: error:")]
    assert "corrupt" in line and Path(items[target].path).name in line and "Traceback" not in error


def test_a_truncated_data_file_is_an_index_format_error(built, model_and_processor):
    model, processor = model_and_processor
    _, index_dir = built
    for path in (index_dir / "items.lance" / "data").rglob("*.lance"):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(IndexFormatError, match="cannot"):
        searcher = Searcher(index_dir, model, processor)
        searcher.search("a video", top_k=3)


def _saved_model(folder: Path) -> Path:
    target = folder / "saved_model"
    return target if target.is_dir() else save_model(target)


def test_cli_flipped_byte_is_one_line(built, capsys):
    """The same corruption through the command line: one line on stderr, exit status 2, no traceback."""
    folder, _ = built
    model_dir = _saved_model(folder.parent)
    index_dir = folder.parent / "cli_index"
    assert main(["index", str(folder), "--model", str(model_dir), "--index", str(index_dir), "--no-progress"]) == 0
    for path in (index_dir / "items.lance" / "data").rglob("*.lance"):
        data = bytearray(path.read_bytes())
        middle = len(data) // 3
        data[middle : middle + 64] = bytes(byte ^ 0xFF for byte in data[middle : middle + 64])
        path.write_bytes(bytes(data))
    capsys.readouterr()
    status = main(["search", "a video", "--index", str(index_dir), "--model", str(model_dir)])
    error = capsys.readouterr().err
    assert status == 2 and "Traceback" not in error
    assert len([line for line in error.splitlines() if line.startswith("unitrim search: error:")]) == 1


KILLED_REINDEX = textwrap.dedent("""
    import sys
    from unitrim_hf import UniTriMModel, UniTriMProcessor
    from unitrim_hf.search import Indexer
    model_dir, folder, index_dir = sys.argv[1:]
    model = UniTriMModel.from_pretrained(model_dir)
    processor = UniTriMProcessor.from_pretrained(model_dir)
    original = Indexer.encode
    def slow_encode(self, decoded):
        print("encoding", flush=True)
        import time; time.sleep(0.4)
        return original(self, decoded)
    Indexer.encode = slow_encode
    Indexer(index_dir, model, processor, batch_size=1, flush_every=1, progress=False).index_folder(folder)
    print("finished", flush=True)
""")


def test_kill_during_reindex_of_changed_files_keeps_every_item_searchable(tmp_path, collection):
    model_dir = save_model(tmp_path / "model")
    folder = tmp_path / "media"
    shutil.copytree(collection, folder)
    index_dir = tmp_path / "index"
    from unitrim_hf import UniTriMModel, UniTriMProcessor

    model, processor = UniTriMModel.from_pretrained(model_dir), UniTriMProcessor.from_pretrained(model_dir)
    index_folder(folder, index_dir, model, processor, progress=False)
    before = IndexStore.open(index_dir).version
    _touch_all(folder)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_REINDEX, str(model_dir), str(folder), str(index_dir)],
        stdout=subprocess.PIPE, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 240
        while IndexStore.open(index_dir).version < before + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert IndexStore.open(index_dir).version >= before + 3, "the re-index committed nothing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    store = IndexStore.open(index_dir)
    items = store.items
    re_encoded = [item for item in items if item.mtime_ns == (folder / Path(item.path).relative_to(folder)).stat().st_mtime_ns]
    assert 0 < len(re_encoded) < len(GOOD), "the kill should land in the middle of the re-index"
    searcher = Searcher(index_dir, model, processor)
    expected = {str(folder / name) for name in GOOD}
    assert len(searcher) == len(GOOD) and _all_paths(searcher) == expected
    report = index_folder(folder, index_dir, model, processor, progress=False)
    assert report.unchanged == len(re_encoded) and len(report.added) == len(GOOD) - len(re_encoded)
    assert _all_paths(Searcher(index_dir, model, processor)) == expected


def test_readers_during_writes_see_a_whole_version(built, model_and_processor):
    """While a writer re-indexes every file (one commit per file), readers only ever see complete versions:
    every item present once, every row's checksum valid; a pinned searcher keeps its version."""
    model, processor = model_and_processor
    folder, index_dir = built
    pinned = Searcher(index_dir, model, processor)
    pinned_mtimes = {item.path: item.mtime_ns for item in pinned.store.items}
    expected = {str(folder / name) for name in GOOD}
    errors: list[BaseException] = []
    versions: set[int] = set()
    done = threading.Event()

    def read_repeatedly() -> None:
        try:
            while not done.is_set():
                store = IndexStore.open(index_dir)
                items, features = store.load_features()  # verifies every checksum
                versions.add(store.version)
                paths = [item.path for item in items]
                assert sorted(paths) == sorted(expected) and len(features) == len(expected)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    try:
        for _ in range(2):
            _touch_all(folder)
            Indexer(index_dir, model, processor, batch_size=1, flush_every=1, progress=False).index_folder(folder)
    finally:
        done.set()
        reader.join()
    assert not errors, errors[0]
    assert len(versions) >= 2
    assert {item.path: item.mtime_ns for item in pinned.store.items} == pinned_mtimes
    assert _all_paths(pinned) == expected
    pinned.refresh()
    assert {item.path: item.mtime_ns for item in pinned.store.items} != pinned_mtimes


def test_two_processes_index_like_one(tmp_path, collection):
    """`accelerate launch` with two CPU processes splits the files; the result equals a one-process index."""
    pytest.importorskip("accelerate")
    model_dir = save_model(tmp_path / "model")
    folder = tmp_path / "media"
    shutil.copytree(collection, folder)
    (folder / "notes.txt").write_text("not media\n")
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["index", str(folder), "--model", str(model_dir), "--index", str(one), "--no-progress"]) == 0
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", str(29500 + os.getpid() % 1000)]
    completed = subprocess.run(
        launcher + ["-m", "unitrim_hf.search.cli", "index", str(folder), "--model", str(model_dir), "--index",
                    str(two), "--no-progress"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env=os.environ | {"ACCELERATE_USE_CPU": "true", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "by 2 processes" in completed.stdout and completed.stdout.count("indexed ") == 1
    first, second = IndexStore.open(one), IndexStore.open(two)
    items_one, features_one = first.load_features()
    items_two, features_two = second.load_features()
    by_path = lambda items: {item.path: row for row, item in enumerate(items)}  # noqa: E731
    rows_one, rows_two = by_path(items_one), by_path(items_two)
    assert set(rows_one) == set(rows_two) == {str(folder / name) for name in GOOD}
    for path, row in rows_one.items():
        other = rows_two[path]
        assert items_one[row].content_sha256 == items_two[other].content_sha256
        for name in ("video_embeds", "frame_embeds", "video_mask", "timestamps", "patch_embeds", "patch_indices"):
            torch.testing.assert_close(getattr(features_one, name)[row], getattr(features_two, name)[other],
                                       atol=2e-3, rtol=0, msg=f"{path} {name}")
    assert [entry["path"] for entry in first.skipped] == [entry["path"] for entry in second.skipped]
    assert sorted(os.listdir(two)) == sorted([".unitrim-writer.lock", "items.lance", "skipped.lance"])  # no side tables


def test_failing_html_write_leaves_the_earlier_report_unchanged(built, model_and_processor, tmp_path, monkeypatch):
    model, processor = model_and_processor
    _, index_dir = built
    results = Searcher(index_dir, model, processor).search("a video", top_k=3)
    page = tmp_path / "report.html"
    write_html(page, "a video", results)
    earlier = page.read_bytes()
    import unitrim_hf.search.atomic_write as atomic_write

    def failing_fsync(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_write.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        write_html(page, "another query", results)
    assert page.read_bytes() == earlier
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".report")) == []


def test_hostile_file_names_are_shown_escaped(tmp_path, collection, model_and_processor, capsys):
    model, processor = model_and_processor
    folder = tmp_path / "media"
    folder.mkdir()
    raw_name = os.fsdecode(b"caf\xe9_not_utf8.png")  # Latin-1 byte: not UTF-8
    bidi_name = "invoice\u202egnp.exe.png"
    shutil.copy2(collection / "photo_a.png", folder / raw_name)
    shutil.copy2(collection / "clip_a.mp4", folder / bidi_name)
    index_dir = tmp_path / "index"
    index_folder(folder, index_dir, model, processor, progress=False)
    results = Searcher(index_dir, model, processor).search("a photo", top_k=5)
    assert {result.path for result in results} == {str(folder / raw_name), str(folder / bidi_name)}
    shown = {result.display_path for result in results}
    assert str(folder) + "/caf\\xe9_not_utf8.png" in shown and str(folder) + "/invoice\\u202egnp.exe.png" in shown
    page = write_html(tmp_path / "r.html", "a photo", results).read_text(encoding="utf-8")
    assert "\u202e" not in page and "caf\\xe9" in page and page.count('src="data:image/png;base64,') == 2
    from unitrim_hf.search import format_table, write_json

    table = format_table(results)
    assert "\u202e" not in table and "\\u202e" in table
    table.encode("utf-8")  # printable
    written = json.loads(write_json(tmp_path / "r.json", "a photo", results).read_text())
    assert {entry["path"] for entry in written["results"]} == shown


def test_cli_rejects_bad_arguments_quickly_and_clearly(tmp_path, capsys):
    for arguments, message in [
        (["search", "q", "--index", "i", "--model", "m", "--num-candidates", "-5"], "must be >= 1, got -5"),
        (["search", "q", "--index", "i", "--model", "m", "--top-k", "0"], "must be >= 1, got 0"),
        (["index", str(tmp_path / "missing"), "--index", str(tmp_path / "index"), "--model", "m"], "not an existing folder"),
        (["search", os.fsdecode(b"caf\xe9"), "--index", "i", "--model", "m"], "not valid UTF-8"),
    ]:
        with pytest.raises(SystemExit) as exited:
            main(arguments)
        assert exited.value.code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "index").exists()


def test_a_query_with_undecodable_bytes_is_a_value_error(built, model_and_processor):
    model, processor = model_and_processor
    searcher = Searcher(built[1], model, processor)
    with pytest.raises(ValueError, match="not valid UTF-8"):
        searcher.search(os.fsdecode(b"a caf\xe9"))


def test_cli_help_does_not_import_torch():
    """Arguments are parsed before the heavy libraries load (what keeps `unitrim --help` fast)."""
    probe = ("import sys\nfrom unitrim_hf.search.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(name for name in ('torch', 'lancedb', 'pyarrow') if name in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "usage: unitrim" in completed.stdout and completed.stdout.strip().endswith("[]")


def test_replaced_and_bomb_files_never_break_the_html_report(built, model_and_processor, tmp_path, capsys):
    """A file replaced after indexing (here by a decompression-bomb image) is noted on its card, never decoded
    as if it were the indexed file; a bomb that passes the change check is caught while decoding."""
    model, processor = model_and_processor
    folder, index_dir = built
    target = folder / "photo_a.png"
    Image.new("1", (20_000, 20_000)).save(target)  # 400 megapixels: Pillow refuses to decode it
    model_dir = _saved_model(tmp_path)
    # The index was built with the fixture model (seed 0) = the saved one.
    status = main(["search", "a photo", "--index", str(index_dir), "--model", str(model_dir), "--top-k", "10",
                   "--kind", "image", "--html", str(tmp_path / "r.html")])
    out = capsys.readouterr().out
    assert status == 0 and "changed or disappeared since they were indexed" in out
    page = (tmp_path / "r.html").read_text()
    assert "changed since it was indexed" in page
    results = Searcher(index_dir, model, processor).search("a photo", top_k=10, kind="image")
    bomb = next(result for result in results if result.path == str(target))
    bomb.size = -1  # as if the swap kept size and time: the decoder is reached
    page = render_html("a photo", [bomb])
    assert "thumbnail unavailable: ImageDecodingError" in page and "photo_a.png" in page


def test_an_index_at_a_uri_uses_the_object_store_path(tmp_path, collection, model_and_processor):
    """The same code reads and writes an index named by URI (here file://, the object-store code path that
    s3:// and gs:// take)."""
    model, processor = model_and_processor
    uri = (tmp_path / "index").as_uri()
    report = index_folder(collection, uri, model, processor, progress=False)
    assert len(report.added) == len(GOOD) and (tmp_path / "index" / "items.lance").is_dir()
    assert len(Searcher(uri, model, processor)) == len(GOOD)


def test_a_file_replaced_while_being_indexed_is_a_counted_skip(tmp_path, collection, model_and_processor, monkeypatch):
    model, processor = model_and_processor
    folder = tmp_path / "media"
    folder.mkdir()
    for name in ("photo_a.png", "clip_a.mp4"):
        shutil.copy2(collection / name, folder / name)
    original = type(processor).encode_images

    def replacing_encode(self, path, *args, **kwargs):
        encoded = original(self, path, *args, **kwargs)
        write_image(Path(path), seed=99)  # another picture lands while the first one is being encoded
        return encoded

    monkeypatch.setattr(type(processor), "encode_images", replacing_encode)
    report = index_folder(folder, tmp_path / "index", model, processor, progress=False)
    assert [Path(path).name for path in report.added] == ["clip_a.mp4"]
    [skipped] = report.skipped
    assert skipped.path.name == "photo_a.png" and "replaced while being indexed" in skipped.reason
    monkeypatch.undo()
    again = index_folder(folder, tmp_path / "index", model, processor, progress=False)
    assert [Path(path).name for path in again.added] == ["photo_a.png"] and again.skipped == []
