"""Many writers through Lance fragments, killed with SIGKILL at each step: a worker while it writes fragments, the
committer before and during its commit, a rank of `accelerate launch` mid-run. The index stays at its previous
version (or, killed during the commit, at the new one, whole), reads back verified, and the next run needs no
clean-up by hand. Also: the commit replaces the rows of the same paths, refuses when another writer committed, and
keeps the vector index (optimize folds the new rows in)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("lance")

from test_search_helpers import GOOD_IMAGES, GOOD_VIDEOS, make_model, save_model, write_image, write_media  # noqa: E402
from unitrim_hf.errors import IndexWriteError  # noqa: E402
from unitrim_hf.search import IndexStore, index_folder  # noqa: E402
from unitrim_hf.search.fragments import commit_item_fragments, items_dataset_uri, write_item_fragments  # noqa: E402
from unitrim_hf.search.index_rows import features_to_table  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
# A worker or committer of one run, as its own process: writes fragments of `copies` rows (new paths under the
# collection, plus a replacement of the first indexed file), then, in "commit" mode, commits them. It prints what
# it is about to do ("stage" mode: what it has done, then it waits), so that the test can kill it there.
WRITER = textwrap.dedent("""
    import sys
    from test_index_fragments import ghost_rows
    from unitrim_hf.search import IndexStore
    from unitrim_hf.search.fragments import commit_item_fragments, items_dataset_uri, write_item_fragments
    mode, index_dir, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = IndexStore.open(index_dir)
    rows, paths = ghost_rows(store, copies)
    uri = items_dataset_uri(store)
    if mode == "write":
        while True:
            print("writing", flush=True)
            write_item_fragments(uri, rows, max_rows_per_file=256)
    fragments = write_item_fragments(uri, rows)
    if mode == "stage":
        print("written", flush=True)
        sys.stdin.read()
    print("committing", flush=True)
    commit_item_fragments(uri, fragments, paths, store.version)
    print("committed", flush=True)
    sys.stdin.read()
""")


def ghost_rows(store: IndexStore, copies: int):
    """Rows of `copies` files that do not exist (`ghost_N` beside the first indexed file, its features) and a new
    row of the first file itself (a marker mtime); returns (rows, their paths)."""
    items, features = store.load_features()
    first = items[0]
    entries = [{"path": first.path, "kind": first.kind, "size": first.size, "mtime_ns": 12345,
                "content_sha256": first.content_sha256, "num_frames": first.num_frames}]
    entries += [entry | {"path": str(Path(first.path).with_name(f"ghost_{number}"))}
                for number in range(copies) for entry in [dict(entries[0])]]
    repeated = features.take([0] * len(entries))
    rows = features_to_table(store._items.schema, store.layout, entries, repeated, store.fingerprint.digest)
    return rows, [entry["path"] for entry in entries]


@pytest.fixture(scope="module")
def model_and_processor():
    return make_model(seed=0)


@pytest.fixture(scope="module")
def built_once(tmp_path_factory, model_and_processor) -> tuple[Path, Path]:
    model, processor = model_and_processor
    root = tmp_path_factory.mktemp("built")
    folder = write_media(root / "media", GOOD_VIDEOS[:2] + GOOD_IMAGES)
    index_folder(folder, root / "index", model, processor, progress=False)
    return folder, root / "index"


@pytest.fixture
def built(tmp_path, built_once) -> tuple[Path, Path]:
    """A fresh copy of a small collection and its index (the index's paths name the original folder)."""
    folder, index_dir = built_once
    shutil.copytree(index_dir, tmp_path / "index")
    return folder, tmp_path / "index"


def _start(mode: str, index_dir: Path, copies: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, mode, str(index_dir), str(copies)], cwd=REPOSITORY / "tests",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ | {"PYTHONPATH": os.pathsep.join([str(REPOSITORY / "tests"), *sys.path])},
    )


def _kill_after(process: subprocess.Popen, line: str, delay: float, times: int = 1) -> None:
    """SIGKILL `process` `delay` seconds after it printed `line` for the `times`-th time."""
    seen = 0
    while seen < times:
        printed = process.stdout.readline()
        assert printed, f"the writer ended early: {process.stderr.read()[-3000:]}"
        seen += printed.strip() == line
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


def _data_files(index_dir: Path) -> set[Path]:
    return set((index_dir / "items.lance" / "data").glob("*.lance"))


def _assert_converges(folder: Path, index_dir: Path, model_and_processor) -> None:
    """The next run, with nothing cleaned up, leaves exactly the collection's files, each once, verified."""
    model, processor = model_and_processor
    index_folder(folder, index_dir, model, processor, progress=False)
    items, _ = IndexStore.open(index_dir).load_features()  # every checksum, one row per path
    assert sorted(item.path for item in items) == sorted(
        str(path) for path in folder.rglob("*") if path.is_file())


def test_a_worker_killed_while_writing_fragments_leaves_the_index_as_it_was(built, model_and_processor):
    folder, index_dir = built
    before = IndexStore.open(index_dir)
    version, paths, files = before.version, sorted(item.path for item in before.items), _data_files(index_dir)
    worker = _start("write", index_dir, copies=3000)
    _kill_after(worker, "writing", delay=0.05, times=2)  # into its second round of fragment files
    assert _data_files(index_dir) - files, "the worker was killed before it wrote any fragment"
    after = IndexStore.open(index_dir)
    assert after.version == version and sorted(item.path for item in after.items) == paths
    after.load_features()
    _assert_converges(folder, index_dir, model_and_processor)


@pytest.mark.slow  # each kill starts a process that imports torch and Lance: one kill test runs by default
@pytest.mark.parametrize("delay", [0.0, 0.01, 0.03])
def test_a_committer_killed_during_its_commit_leaves_one_version_whole(built, model_and_processor, delay):
    """Killed as it starts committing (or a little later): the previous version, or the new one with every row."""
    folder, index_dir = built
    before = IndexStore.open(index_dir)
    version, paths = before.version, sorted(item.path for item in before.items)
    committer = _start("commit", index_dir, copies=2000)
    _kill_after(committer, "committing", delay)
    after = IndexStore.open(index_dir)
    items, _ = after.load_features()
    if after.version == version:
        assert sorted(item.path for item in items) == paths
    else:
        assert after.version == version + 1 and len(items) == len(paths) + 2000
        assert [item.mtime_ns for item in items if item.path == before.items[0].path] == [12345]
    _assert_converges(folder, index_dir, model_and_processor)


@pytest.mark.slow
def test_a_committer_killed_before_its_commit_leaves_the_index_as_it_was(built, model_and_processor):
    folder, index_dir = built
    before = IndexStore.open(index_dir)
    version, paths = before.version, sorted(item.path for item in before.items)
    committer = _start("stage", index_dir, copies=10)
    _kill_after(committer, "written", delay=0.0)  # fragments of every worker in hand, nothing committed
    after = IndexStore.open(index_dir)
    assert after.version == version and sorted(item.path for item in after.items) == paths
    _assert_converges(folder, index_dir, model_and_processor)


def test_the_commit_replaces_rows_of_the_same_paths_and_refuses_after_another_writer(built):
    _, index_dir = built
    store = IndexStore.open(index_dir)
    rows, paths = ghost_rows(store, copies=2)
    uri = items_dataset_uri(store)
    first = write_item_fragments(uri, rows.slice(0, 2))
    second = write_item_fragments(uri, rows.slice(2))
    read_version = store.version
    assert commit_item_fragments(uri, first + second, paths, read_version) == read_version + 1
    store.refresh()
    items = store.items
    assert sorted(item.path for item in items) == sorted(set(item.path for item in items))
    assert len(items) == len(IndexStore.open(index_dir, version=read_version).items) + 2
    assert [item.mtime_ns for item in items if item.path == paths[0]] == [12345]
    late = write_item_fragments(uri, rows.slice(0, 1))
    with pytest.raises(IndexWriteError, match=f"changed by another writer since version {read_version}"):
        commit_item_fragments(uri, late, paths[:1], read_version)
    assert IndexStore.open(index_dir).version == read_version + 1


@pytest.mark.slow
def test_a_rank_killed_mid_run_under_accelerate_leaves_the_index_as_it_was(tmp_path, model_and_processor):
    """Two `accelerate launch` ranks writing fragments of 40 images, one at a time; rank 1 is killed after its
    first fragment: the launch fails, the index keeps its version, a plain rerun indexes every file."""
    model_dir = save_model(tmp_path / "model")
    folder = write_media(tmp_path / "media", GOOD_IMAGES[:1])
    index_dir = tmp_path / "index"
    model, processor = model_and_processor
    index_folder(folder, index_dir, model, processor, progress=False)
    version, files = IndexStore.open(index_dir).version, _data_files(index_dir)
    for number in range(40):
        write_image(folder / f"more_{number:02d}.png", seed=number)
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", str(29600 + os.getpid() % 1000)]
    run = subprocess.Popen(
        launcher + ["-m", "unitrim_hf.search.cli", "index", str(folder), "--model", str(model_dir), "--index",
                    str(index_dir), "--no-progress", "--batch-size", "1", "--flush-every", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env=os.environ | {"ACCELERATE_USE_CPU": "true", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + 300
    rank_one = None
    while rank_one is None or not _data_files(index_dir) - files:
        assert run.poll() is None and time.monotonic() < deadline, run.stderr.read()[-3000:]
        rank_one = rank_one or _process_with_rank(1)
        time.sleep(0.02)
    os.kill(rank_one, signal.SIGKILL)
    run.communicate(timeout=300)
    assert run.returncode != 0
    assert IndexStore.open(index_dir).version == version
    _assert_converges(folder, index_dir, model_and_processor)


def _process_with_rank(rank: int) -> int | None:
    """The pid of a process of this user whose environment says RANK=`rank` and that runs unitrim's cli."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"RANK={rank}".encode() in environment and b"unitrim_hf.search.cli" in command:
            return int(entry.name)
    return None


@pytest.mark.slow  # 300 images indexed, then an IVF-PQ index trained
def test_a_fragment_commit_keeps_the_vector_index_and_optimize_folds_the_new_rows_in(tmp_path, model_and_processor):
    model, processor = model_and_processor
    folder = write_media(tmp_path / "media", GOOD_VIDEOS[:1])
    for number in range(300):
        write_image(folder / f"image_{number:03d}.png", seed=number)
    index_dir = tmp_path / "index"
    index_folder(folder, index_dir, model, processor, progress=False, batch_size=64, flush_every=400)
    store = IndexStore.open(index_dir)
    assert store.ensure_vector_index(min_rows=1, num_partitions=2, num_sub_vectors=4)
    rows, paths = ghost_rows(store, copies=50)  # 50 new rows and one replaced
    uri = items_dataset_uri(store)
    commit_item_fragments(uri, write_item_fragments(uri, rows), paths, store.version)
    store.refresh()
    stats = store._items.index_stats("vector_idx")
    assert (stats.num_indexed_rows, stats.num_unindexed_rows) == (300, 51)  # the replaced row left the index
    store.ensure_vector_index(min_rows=1)
    store.refresh()
    stats = store._items.index_stats("vector_idx")
    assert (stats.num_indexed_rows, stats.num_unindexed_rows) == (351, 0)
    items, _ = store.load_features()
    assert len(items) == len({item.path for item in items}) == 351
    nearest = store.nearest(rows.column("vector").to_numpy(zero_copy_only=False)[0], 60)
    assert len({item.path for item in nearest.items}) == 60
