"""`unitrim index --engine ray` on a local Ray instance with two CPU workers: the index equals the one a single
process builds, row for row (new, changed and removed files; skipped files in the `skipped` table), also when a
worker is killed mid-run."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from test_search_helpers import BAD_FILES, GOOD_IMAGES, GOOD_VIDEOS, save_model, write_image, write_media
from unitrim_hf.search import IndexStore
from unitrim_hf.search.cli import main

ray = pytest.importorskip("ray")
pytest.importorskip("lance")

FEATURES = ("video_embeds", "frame_embeds", "video_mask", "timestamps", "patch_embeds", "patch_indices")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module (its start-up is the slow part): two CPUs, so two workers."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def assert_same_index(first_dir: Path, second_dir: Path) -> None:
    """The two indexes hold the same paths with the same file states and features, and skip the same files."""
    first, second = IndexStore.open(first_dir), IndexStore.open(second_dir)
    items_one, features_one = first.load_features()
    items_two, features_two = second.load_features()
    rows_one = {item.path: row for row, item in enumerate(items_one)}
    rows_two = {item.path: row for row, item in enumerate(items_two)}
    assert sorted(rows_one) == sorted(rows_two) and len(rows_two) == len(items_two)
    for path, row in rows_one.items():
        other = rows_two[path]
        for name in ("kind", "size", "mtime_ns", "content_sha256", "num_frames"):
            assert getattr(items_one[row], name) == getattr(items_two[other], name), (path, name)
        for name in FEATURES:
            torch.testing.assert_close(getattr(features_one, name)[row], getattr(features_two, name)[other],
                                       atol=2e-3, rtol=0, msg=f"{path} {name}")
    skipped = lambda store: sorted((entry["path"], entry["reason"]) for entry in store.skipped)  # noqa: E731
    assert skipped(first) == skipped(second)


def _indexer(folder: Path, model_dir: Path):
    def index(where: Path, *engine: str) -> int:
        return main(["index", str(folder), "--model", str(model_dir), "--index", str(where), "--no-progress",
                     "--batch-size", "2", "--flush-every", "2", *engine])
    return index


def test_a_ray_update_equals_a_one_process_update(tmp_path, local_ray, capsys):
    """Changed, removed, new and undecodable files of an existing index, encoded by two Ray workers."""
    model_dir = save_model(tmp_path / "model")
    folder = write_media(tmp_path / "media", GOOD_VIDEOS + GOOD_IMAGES + BAD_FILES)
    index = _indexer(folder, model_dir)
    one, two = tmp_path / "one", tmp_path / "two"
    assert index(one) == 0
    shutil.copytree(one, two)
    write_image(folder / GOOD_IMAGES[0], seed=50)  # changed: its row is replaced in the same commit, never doubled
    os.utime(folder / GOOD_IMAGES[0], ns=(10**18, 10**18))
    (folder / GOOD_VIDEOS[1]).unlink()
    shutil.copy(folder / GOOD_VIDEOS[0], folder / "copy.mp4")
    shutil.copy(folder / "truncated.webm", folder / "truncated_copy.webm")  # fails in a worker: skipped
    for name in GOOD_VIDEOS[2:]:
        os.utime(folder / name, ns=(10**18, 10**18))
    before = IndexStore.open(two).version
    assert index(one) == 0
    capsys.readouterr()
    assert index(two, "--engine", "ray", "--workers", "2") == 0
    output = capsys.readouterr().out
    assert "indexed 4 new or changed files" in output and "by 2 Ray workers" in output, output
    assert_same_index(one, two)
    assert any(entry["path"].endswith("truncated_copy.webm") for entry in IndexStore.open(two).skipped)
    assert IndexStore.open(two).version > before


@pytest.mark.slow
def test_a_ray_build_equals_a_one_process_build(tmp_path, local_ray):
    model_dir = save_model(tmp_path / "model")
    folder = write_media(tmp_path / "media", GOOD_VIDEOS + GOOD_IMAGES + BAD_FILES)
    index = _indexer(folder, model_dir)
    assert index(tmp_path / "one") == 0
    assert index(tmp_path / "two", "--engine", "ray", "--workers", "2") == 0
    assert_same_index(tmp_path / "one", tmp_path / "two")
    assert len(IndexStore.open(tmp_path / "two").skipped) == len(BAD_FILES)


def _encoder_actor_pids() -> list[int]:
    """Processes of this machine that run a Ray Data actor of `FragmentEncoder` (Ray names them in their title)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"FragmentEncoder" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_a_ray_worker_killed_mid_run_is_replaced_and_its_batch_run_again(tmp_path, local_ray):
    """SIGKILL of one encoder actor after the first fragments are written: Ray restarts it and runs its batch
    again; the fragments of the killed attempt are never committed, so every file has exactly one row."""
    model_dir = save_model(tmp_path / "model")
    folder = write_media(tmp_path / "media", GOOD_VIDEOS[:1])
    for number in range(40):
        write_image(folder / f"more_{number:02d}.png", seed=number)
    index = _indexer(folder, model_dir)
    assert index(tmp_path / "one") == 0
    two = tmp_path / "two"
    results: list[int] = []
    run = threading.Thread(target=lambda: results.append(index(two, "--engine", "ray", "--workers", "2")))
    run.start()
    deadline = time.monotonic() + 300
    while not list((two / "items.lance" / "data").glob("*.lance")) or not _encoder_actor_pids():
        assert run.is_alive() and time.monotonic() < deadline, "the Ray run ended before an actor could be killed"
        time.sleep(0.05)
    os.kill(_encoder_actor_pids()[0], signal.SIGKILL)
    run.join(timeout=600)
    assert results == [0]
    assert_same_index(tmp_path / "one", two)


def test_ray_options_without_the_ray_engine_are_argument_errors(tmp_path, capsys, monkeypatch):
    arguments = ["index", str(tmp_path), "--model", "m", "--index", str(tmp_path / "index")]
    for extra in (["--workers", "2"], ["--ray-address", "ray://head:10001"]):
        with pytest.raises(SystemExit) as raised:
            main(arguments + extra)
        assert raised.value.code == 2 and "go with --engine ray" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit):
        main(arguments + ["--engine", "ray"])
    assert "not under accelerate launch" in capsys.readouterr().err
