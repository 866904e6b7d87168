"""End-to-end training runs on a small synthetic benchmark: train.py, two CPU processes, kill-and-resume."""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from unitrim_hf import UniTriMModel
from unitrim_hf.evaluation.report import round_metrics
from unitrim_hf.training import checkpointing, cli
from unitrim_hf.training.checkpointing import CHECKPOINT_FOLDER, complete_checkpoints

REPOSITORY = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")
# 32 training videos, batch 8: 4 optimizer steps per epoch.
SMALL_RUN = [
    "--preset", "unitrim-tiny", "--synthetic_num_train", "32", "--synthetic_num_test", "12",
    "--num_frames", "4", "--max_length", "16", "--per_device_train_batch_size", "8",
    "--per_device_eval_batch_size", "16", "--report_to", "none", "--logging_steps", "1",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synthetic_data")


def _environment() -> dict[str, str]:
    environment = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    environment["PYTHONPATH"] = os.pathsep.join([str(REPOSITORY / "src"), environment.get("PYTHONPATH", "")])
    return environment


def _digest(output_dir: Path, rank: int = 0) -> dict:
    return json.loads((output_dir / "debug" / f"rank{rank}.json").read_text())


def test_train_py_few_steps_writes_a_loadable_model_and_metrics(tmp_path, data_dir, caplog) -> None:
    output_dir = tmp_path / "run"
    completed = subprocess.run(
        [sys.executable, str(REPOSITORY / "train.py"), "--output_dir", str(output_dir), "--data_dir", str(data_dir),
         *SMALL_RUN, "--max_steps", "4", "--logging_steps", "1", "--report_to", "jsonl"],
        cwd=tmp_path, env=_environment(), capture_output=True, text=True, timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    log = [json.loads(line) for line in (output_dir / "logs" / "training_log.jsonl").read_text().splitlines()]
    train_rows = [row for row in log if "train/loss" in row]
    assert [row["step"] for row in train_rows] == [1, 2, 3, 4]
    for row in train_rows:
        for name in ("train/loss", "train/loss_text_video", "train/loss_text_image", "train/loss_reconstruction", "train/loss_orthogonality"):
            assert math.isfinite(row[name]), (name, row)
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert set(metrics["metrics"]) == {"text_to_video", "video_to_text", "text_to_image", "image_to_text"}
    assert (output_dir / "best_model" / "metrics.json").is_file()
    model = UniTriMModel.from_pretrained(output_dir / "best_model")
    assert model.config.num_temporal_layers == 4
    assert "Sample search" in completed.stdout and "top 3 keyframe images" in completed.stdout
    assert "| text → video |" in completed.stdout

    # --do_eval_only on the saved best model reproduces the metrics recorded with it, written into the training run's
    # own folder as eval_metrics.json: the run's metrics.json is left as it was.
    run_metrics = (output_dir / "metrics.json").read_bytes()
    result = cli.run(["--do_eval_only", "--model_name_or_path", str(output_dir / "best_model"), "--output_dir",
                       str(output_dir), "--data_dir", str(data_dir), *SMALL_RUN])
    recorded = json.loads((output_dir / "best_model" / "metrics.json").read_text())
    assert round_metrics(result.evaluation.metrics) == recorded["metrics"]
    assert (output_dir / "metrics.json").read_bytes() == run_metrics
    assert json.loads((output_dir / "eval_metrics.json").read_text())["metrics"] == recorded["metrics"]
    assert (output_dir / "eval_metrics.md").is_file()
    # Metrics files keep two decimals (12 queries: 100 / 12 = 8.33, never 8.333333333333332).
    for values in recorded["metrics"].values():
        assert all(value == round(value, 2) for value in values.values())

    # Evaluating it on its own training videos works, with a warning that the numbers measure memorisation.
    with caplog.at_level(logging.WARNING):
        cli.run(["--do_eval_only", "--model_name_or_path", str(output_dir / "best_model"), "--output_dir",
                 str(tmp_path / "eval_train"), "--data_dir", str(data_dir), *SMALL_RUN, "--eval_split", "train"])
    assert "32 of the 32 evaluation videos are training videos" in caplog.text


def _free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]


# The documented CPU launch line (docs/training.md): without --multi_gpu, accelerate starts a single process.
CPU_LAUNCH = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]


@pytest.mark.timeout(300)
def test_two_cpu_processes_with_the_defaults_train_evaluate_and_save_once(tmp_path) -> None:
    """`accelerate launch` with two processes and the defaults users get: evaluation on, default trackers, a fresh
    benchmark and frame cache, checkpoints, best and final models; one writer per artefact."""
    output_dir, data_dir = tmp_path / "ddp", tmp_path / "fresh_data"
    environment = _environment()
    environment["ACCELERATE_USE_CPU"] = "true"
    # 32 videos, 4 per process and step: 4 optimizer steps per epoch, 2 epochs.
    completed = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", *CPU_LAUNCH, "--main_process_port", str(_free_port()),
         str(REPOSITORY / "train.py"), "--output_dir", str(output_dir), "--data_dir", str(data_dir),
         "--synthetic_num_train", "32", "--synthetic_num_test", "12", "--num_frames", "4",
         "--per_device_train_batch_size", "4", "--num_train_epochs", "2", "--debug_dump_parameters"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=280,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rank0, rank1 = _digest(output_dir, 0), _digest(output_dir, 1)
    assert rank0["num_processes"] == rank1["num_processes"] == 2
    assert rank0["global_step"] == rank1["global_step"] == 8
    assert rank0["parameter_sha256"] == rank1["parameter_sha256"]
    # Local texts (4) against the videos gathered from both processes (8).
    assert rank0["logits_per_text_video_shapes"] == rank1["logits_per_text_video_shapes"] == [[4, 8]] * 4

    # Written once, by the main process: the frame caches, models, metrics, log and checkpoints.
    assert sorted(path.name for path in (data_dir / "frame_cache").iterdir()) == ["test-4f-32px", "train-4f-32px"]
    assert not list((data_dir / "frame_cache").rglob("*.partial"))
    for folder in ("best_model", "final_model"):
        assert UniTriMModel.from_pretrained(output_dir / folder).config.num_temporal_layers == 4
        assert json.loads((output_dir / folder / "training_data.json").read_text())["num_videos"] == 32
    assert json.loads((output_dir / "metrics.json").read_text())["settings"]["model"] == "final model (step 8)"
    assert json.loads((output_dir / "best_model" / "metrics.json").read_text())["settings"]["model"].startswith("best model")
    log = [json.loads(line) for line in (output_dir / "logs" / "training_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log if "train/loss" in row] == [8]  # every 10 steps (default) and the last
    assert [row["step"] for row in log if "eval/text_to_video/R@1" in row] == [4, 8]
    assert [folder.name for folder in complete_checkpoints(output_dir)] == ["checkpoint-000004", "checkpoint-000008"]
    assert {"rng_state_0.safetensors", "rng_state_1.safetensors"} <= set(
        json.loads((output_dir / CHECKPOINT_FOLDER / "checkpoint-000008" / "trainer_state.json").read_text())["files"])
    assert not list(output_dir.rglob(".tmp-*"))
    # One results table, labelled with the model it belongs to.
    assert completed.stdout.count("Retrieval of the final model (step 8)") == 1
    assert completed.stdout.count("Best model: step") == 1


def _run(output_dir: Path, data_dir: Path, *extra: str):
    return cli.run(["--output_dir", str(output_dir), "--data_dir", str(data_dir), *SMALL_RUN,
                     "--max_steps", "6", "--save_steps", "2", "--debug_dump_parameters", *extra])


@pytest.mark.timeout(400)
def test_interrupted_and_crashed_runs_resume_to_the_uninterrupted_parameters(tmp_path, data_dir, monkeypatch) -> None:
    reference = _run(tmp_path / "uninterrupted", data_dir)
    assert reference.global_step == 6
    expected = _digest(tmp_path / "uninterrupted")["parameter_sha256"]

    # Stopped mid-epoch (step 3 of 4), then resumed from the latest checkpoint.
    stopped = tmp_path / "stopped"
    assert _run(stopped, data_dir, "--stop_after_steps", "3").global_step == 3
    assert complete_checkpoints(stopped)[-1].name == "checkpoint-000003"
    _run(stopped, data_dir, "--resume_from_checkpoint", "latest")
    assert _digest(stopped)["parameter_sha256"] == expected

    # A crash in the middle of the second save (step 4): "latest" stays the complete step-2 checkpoint.
    crashed = tmp_path / "crashed"
    original_save_optimizer = checkpointing.save_optimizer
    calls = {"count": 0}

    def failing_save_optimizer(optimizer, folder):
        calls["count"] += 1
        if calls["count"] == 2:
            (Path(folder) / "optimizer.safetensors").write_bytes(b"half-written")
            raise OSError("disk full (simulated)")
        return original_save_optimizer(optimizer, folder)

    monkeypatch.setattr(checkpointing, "save_optimizer", failing_save_optimizer)
    with pytest.raises(OSError, match="simulated"):
        _run(crashed, data_dir)
    monkeypatch.setattr(checkpointing, "save_optimizer", original_save_optimizer)
    assert [folder.name for folder in complete_checkpoints(crashed)] == ["checkpoint-000002"]
    assert (crashed / CHECKPOINT_FOLDER / ".tmp-checkpoint-000004").is_dir()
    _run(crashed, data_dir, "--resume_from_checkpoint", "latest")
    assert _digest(crashed)["parameter_sha256"] == expected


# The main job's learning bar: the test split has 100 videos with one (unique) caption each, so a model that has
# learned nothing ranks the right video first with probability 1/100 (chance R@1 = 1 %). We require 20 % (20x
# chance; the default run measures about 40 %) — far beyond what ties or luck can give on 100 queries.
LEARNING_BAR_R_AT_1 = 20.0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_default_main_job_learns_well_above_chance(tmp_path) -> None:
    import time

    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(REPOSITORY / "train.py")], cwd=tmp_path, env=_environment(),
        capture_output=True, text=True, timeout=580,
    )
    wall_seconds = time.perf_counter() - started
    assert completed.returncode == 0, completed.stderr[-3000:]
    metrics = json.loads((tmp_path / "outputs" / "unitrim-synthetic" / "metrics.json").read_text())
    assert metrics["num_videos"] == 100
    text_to_video = metrics["metrics"]["text_to_video"]["R@1"]
    print(f"main job: {wall_seconds:.0f} s, text->video R@1 {text_to_video} (chance 1.0)")
    assert text_to_video >= LEARNING_BAR_R_AT_1
    assert metrics["metrics"]["text_to_image"]["R@1"] >= LEARNING_BAR_R_AT_1 / 2


# A fast run for the epoch-order and resume tests: 16 videos, 2 frames, the smallest preset.
FAST_RUN = [
    "--preset", "clip4clip-meanp-tiny", "--synthetic_num_train", "16", "--synthetic_num_test", "8",
    "--num_frames", "2", "--max_length", "16", "--per_device_train_batch_size", "4", "--report_to", "none",
    "--do_eval", "false", "--debug_dump_parameters",
]


def test_each_epoch_has_its_own_order_and_caption_draws(tmp_path, monkeypatch) -> None:
    from unitrim_hf.training import batches as training_data

    seen: list[tuple[int, list[int]]] = []
    original_iter = training_data.EpochShuffleSampler.__iter__

    def recording_iter(self):
        order = list(original_iter(self))
        seen.append((self.epoch, order))
        return iter(order)

    dataset_epochs: list[int] = []
    original_getitem = training_data.VideoCaptionDataset.__getitem__

    def recording_getitem(self, item):
        dataset_epochs.append(self.epoch)
        return original_getitem(self, item)

    monkeypatch.setattr(training_data.EpochShuffleSampler, "__iter__", recording_iter)
    monkeypatch.setattr(training_data.VideoCaptionDataset, "__getitem__", recording_getitem)
    cli.run(["--output_dir", str(tmp_path / "run"), "--data_dir", str(tmp_path / "data"), *FAST_RUN,
             "--num_train_epochs", "3"])
    assert [epoch for epoch, _ in seen] == [0, 1, 2]
    orders = [tuple(order) for _, order in seen]
    assert len(set(orders)) == 3
    # 4 batches of 4 per epoch: the dataset sees the epoch of the loop (its caption draws depend on it).
    assert dataset_epochs == [0] * 16 + [1] * 16 + [2] * 16


@pytest.mark.timeout(300)
@pytest.mark.parametrize("accumulation", ["1", "2"])
def test_resume_inside_a_later_epoch_is_bit_identical(tmp_path, accumulation) -> None:
    def run(output_dir: Path, *extra: str):
        return cli.run(["--output_dir", str(output_dir), "--data_dir", str(tmp_path / "data"), *FAST_RUN,
                        "--num_train_epochs", "2", "--gradient_accumulation_steps", accumulation, *extra])

    # 16 videos / batch 4 = 4 batches per epoch: 4 (or 2 with accumulation 2) optimizer steps per epoch.
    steps_per_epoch = 4 // int(accumulation)
    stop_at = steps_per_epoch + 1  # inside the second epoch
    reference = run(tmp_path / "uninterrupted")
    assert reference.global_step == 2 * steps_per_epoch
    stopped = tmp_path / "stopped"
    assert run(stopped, "--stop_after_steps", str(stop_at)).global_step == stop_at
    resumed = run(stopped, "--resume_from_checkpoint", "latest")
    assert resumed.global_step == 2 * steps_per_epoch
    assert _digest(stopped)["parameter_sha256"] == _digest(tmp_path / "uninterrupted")["parameter_sha256"]


def test_a_fresh_run_refuses_an_earlier_runs_checkpoints_unless_overwriting(tmp_path, monkeypatch) -> None:
    from unitrim_hf.errors import TrainingArgumentError
    from unitrim_hf.training import parse_arguments

    output_dir = tmp_path / "run"
    arguments = ["--output_dir", str(output_dir), "--data_dir", str(tmp_path / "data"), *FAST_RUN, "--max_steps", "6",
                 "--save_steps", "1", "--save_total_limit", "2", "--report_to", "jsonl", "--logging_steps", "1"]
    cli.run(arguments)
    assert [folder.name for folder in complete_checkpoints(output_dir)] == ["checkpoint-000005", "checkpoint-000006"]
    with pytest.raises(TrainingArgumentError, match="--overwrite_output_dir"):  # before the model is built
        cli.run([*arguments, "--max_steps", "2"])
    assert [folder.name for folder in complete_checkpoints(output_dir)] == ["checkpoint-000005", "checkpoint-000006"]

    # Overwriting: the earlier run's checkpoints, models and log are gone; "latest" is this run's.
    result = cli.run([*arguments, "--max_steps", "2", "--overwrite_output_dir"])
    assert result.global_step == 2
    assert [folder.name for folder in complete_checkpoints(output_dir)] == ["checkpoint-000001", "checkpoint-000002"]
    log = [json.loads(line) for line in (output_dir / "logs" / "training_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log if "train/loss" in row] == [1, 2]

    # The no-argument main job overwrites its own default folder (so `python train.py` twice works); others do not.
    monkeypatch.chdir(tmp_path)
    assert parse_arguments([])[2].overwrite_output_dir is True
    assert parse_arguments(["--output_dir", "elsewhere"])[2].overwrite_output_dir is False
    assert parse_arguments(["--dataset", "msrvtt", "--data_dir", "d", "--output_dir", "outputs/unitrim-synthetic"])[2].overwrite_output_dir is False


def test_logit_scale_is_kept_at_or_below_clips_cap(tmp_path, data_dir) -> None:
    # Starting above the cap (as a model could after an unclamped update), every logged step is back within it.
    output_dir = tmp_path / "run"
    result = cli.run(
        ["--output_dir", str(output_dir), "--data_dir", str(data_dir), *SMALL_RUN, "--max_steps", "2",
         "--do_eval", "false", "--report_to", "jsonl", "--config_overrides", '{"logit_scale_init_value": 5.0}']
    )
    assert result.global_step == 2
    log = [json.loads(line) for line in (output_dir / "logs" / "training_log.jsonl").read_text().splitlines()]
    scales = [row["train/logit_scale"] for row in log if "train/logit_scale" in row]
    assert scales and all(scale <= 100.0 + 1e-3 for scale in scales)
