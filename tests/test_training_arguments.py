"""Bad settings are refused before any work: one line on stderr naming the argument, exit status 2, no traceback."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unitrim_hf.modeling.switches import config_field_names
from unitrim_hf.training import launch_check

REPOSITORY = Path(__file__).resolve().parents[1]


def _train_py(arguments: list[str], tmp_path: Path, **environment: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    env.pop("HF_TOKEN", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPOSITORY / "src"), env.get("PYTHONPATH", "")])
    for name, value in environment.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run([sys.executable, str(REPOSITORY / "train.py"), "--output_dir", str(tmp_path / "run"), *arguments],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


BAD_SETTINGS = [
    (["--learning_rate", "-0.0001"], "--learning_rate"),
    (["--learning_rate=-1e-4"], "--learning_rate"),
    (["--learning_rate", "fast"], "--learning_rate"),
    (["--learning_rate", "0"], "--learning_rate"),
    (["--learning_rate", "nan"], "--learning_rate"),
    (["--learning_rate", "inf"], "--learning_rate"),
    (["--clip_learning_rate", "-1"], "--clip_learning_rate"),
    (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size"),
    (["--per_device_eval_batch_size", "0"], "--per_device_eval_batch_size"),
    (["--num_train_epochs", "0"], "--num_train_epochs"),
    (["--config_overrides", '{"patch_topk": 4}'], "--config_overrides"),
    (["--config_overrides", "[1, 2]"], "--config_overrides"),
    (["--push_to_hub"], "--push_to_hub needs --hub_model_id"),
    (["--push_to_hub", "--hub_model_id", "org/model"], "HF_HUB_OFFLINE"),
    (["--dataset", "kinetics"], "--dataset"),
    (["--warmup_ratio", "1.5"], "--warmup_ratio"),
    # Values the model or the data would refuse only after torch, the data and the model are loaded:
    (["--seed", "-1"], "--seed must be in [0, 2**32)"),
    (["--preset", "nosuch"], "--preset 'nosuch' is not one of ["),
    (["--max_length", "100000"], "--max_length must be at most the text tower's 77 positions"),
    (["--config_overrides", '{"patch_top_k": -4}'], "patch_top_k"),
    (["--config_overrides", '{"patch_top_k": 100000}'], "patch_top_k must be at most the 16 patches"),
    (["--config_overrides", '{"patch_top_k": "4"}'], "patch_top_k must be an integer"),
    (["--config_overrides", '{"num_temporal_layers": -1}'], "num_temporal_layers"),
    (["--config_overrides", '{"alignments": []}'], "alignments"),
    (["--config_overrides", '{"alignments": ["sentence_videos"]}'], "Unknown alignments ['sentence_videos']"),
    (["--config_overrides", '{"use_triplets": 1}'], "use_triplets must be true or false"),
    (["--preset", "ts2net-tiny", "--config_overrides", '{"token_shift_layers": [1, "a"]}'],
     "token_shift_layers must be a list of layer indices or null"),
]


@pytest.mark.parametrize("arguments, named", BAD_SETTINGS, ids=[" ".join(arguments) for arguments, _ in BAD_SETTINGS])
def test_a_bad_setting_exits_2_with_one_line_naming_it(tmp_path, arguments, named) -> None:
    completed = _train_py(arguments, tmp_path)
    assert completed.returncode == 2, completed.stderr[-2000:]
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("unitrim-train: error:") and named in lines[0], completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "run").exists()  # refused before any work


def test_push_to_hub_without_a_token_is_refused_at_start(tmp_path) -> None:
    completed = _train_py(["--push_to_hub", "--hub_model_id", "org/model"], tmp_path, HF_HUB_OFFLINE=None)
    assert completed.returncode == 2, completed.stderr[-2000:]
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "--push_to_hub needs a Hugging Face token" in lines[0]


def test_an_unknown_argument_is_argparses_exit_2(tmp_path) -> None:
    completed = _train_py(["--learning_rat", "1e-4"], tmp_path, HF_HUB_OFFLINE="1")  # no prefix matching
    assert completed.returncode == 2 and "unrecognized arguments: --learning_rat" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


def test_help_lists_every_argument(tmp_path) -> None:
    completed = _train_py(["--help"], tmp_path)
    assert completed.returncode == 0
    for name in ("--learning_rate", "--config_overrides", "--push_to_hub", "--resume_from_checkpoint", "--config"):
        assert name in completed.stdout


def test_help_and_argument_checks_do_not_import_torch() -> None:
    script = (
        "import sys\n"
        "from unitrim_hf.training import cli\n"
        "from unitrim_hf.training import parse_arguments\n"
        "parse_arguments(['--output_dir', 'x'])\n"
        "try:\n"
        "    cli.main(['--learning_rate', '0'])\n"
        "except SystemExit as stop:\n"
        "    assert stop.code == 2\n"
        "print(sorted(name for name in ('torch', 'transformers', 'datasets') if name in sys.modules))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"


def test_unknown_preset_overrides_are_refused_in_the_config_too() -> None:
    from transformers import PretrainedConfig

    from unitrim_hf import UniTriMConfig

    with pytest.raises(ValueError, match="'patch_topk' \\(did you mean 'patch_top_k'\\?\\)"):
        UniTriMConfig.from_preset("unitrim-tiny", patch_topk=4)
    assert UniTriMConfig.from_preset("unitrim-tiny", patch_top_k=4).patch_top_k == 4
    # The command line's check reads the same fields (declared once, in a module that needs no transformers).
    assert config_field_names() == {field.name for field in dataclasses.fields(UniTriMConfig)} - {
        field.name for field in dataclasses.fields(PretrainedConfig)
    }


def test_zero_epochs_are_allowed_when_only_evaluating() -> None:
    from unitrim_hf.training import parse_arguments

    parse_arguments(["--do_eval_only", "--model_name_or_path", "some/model", "--num_train_epochs", "0"])


@pytest.mark.parametrize(
    "command, expected",
    [
        (["/venv/bin/accelerate", "launch", "--num_processes", "2", "train.py"], 2),
        (["python", "-m", "accelerate.commands.launch", "--num_processes=4", "train.py"], 4),
        (["/venv/bin/accelerate", "launch", "train.py"], None),
        (["python", "train.py", "--num_processes", "2"], None),
    ],
)
def test_the_requested_number_of_processes_is_read_from_the_launcher(command, expected) -> None:
    assert launch_check.requested_num_processes(command) == expected


def test_a_launch_that_runs_fewer_processes_than_asked_warns(monkeypatch, caplog) -> None:
    monkeypatch.setattr(launch_check, "parent_command_line", lambda: ["accelerate", "launch", "--num_processes", "2", "train.py"])
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with caplog.at_level(logging.WARNING):
        assert launch_check.warn_if_fewer_processes_than_requested() == 2
    assert "asked for 2 processes but this run has 1" in caplog.text and "--multi_gpu" in caplog.text
    caplog.clear()
    monkeypatch.setenv("WORLD_SIZE", "2")
    with caplog.at_level(logging.WARNING):
        launch_check.warn_if_fewer_processes_than_requested()
    assert caplog.text == ""


def test_benchmark_names_and_aliases_are_one_list() -> None:
    from unitrim_hf.benchmark_names import BENCHMARK_NAMES
    from unitrim_hf.data.loading import BENCHMARKS
    from unitrim_hf.training import parse_arguments
    from unitrim_hf.training.arguments import DATASET_DEFAULTS

    assert set(DATASET_DEFAULTS) == set(BENCHMARKS) == set(BENCHMARK_NAMES)
    assert parse_arguments(["--dataset", "MSR-VTT", "--data_dir", "/data/msrvtt"])[1].dataset_name == "msrvtt"


class RefusingHub:
    token = "hf_stand_in"

    def create_repo(self, **kwargs):
        raise ConnectionError("Max retries exceeded with url: https://huggingface.co/api/repos/create\nmore detail")


class RecordingHub:
    token = "hf_stand_in"

    def __init__(self) -> None:
        self.created: list[dict] = []

    def create_repo(self, **kwargs):
        self.created.append(kwargs)


def test_the_hub_repository_is_created_at_start_or_the_run_refused(monkeypatch) -> None:
    from unitrim_hf.errors import TrainingArgumentError
    from unitrim_hf.training.hub import prepare_hub_repository

    monkeypatch.delenv("RANK", raising=False)
    hub = RecordingHub()
    prepare_hub_repository("org/model", private=True, api=hub)
    assert hub.created == [{"repo_id": "org/model", "repo_type": "model", "private": True, "exist_ok": True}]
    with pytest.raises(TrainingArgumentError, match=r"^--hub_model_id org/model: cannot create the repository on the Hub \(Max retries exceeded[^\n]*\)\.$"):
        prepare_hub_repository("org/model", api=RefusingHub())
    # Other processes of a distributed run leave the creation to the main one.
    monkeypatch.setenv("RANK", "1")
    other = RecordingHub()
    prepare_hub_repository("org/model", api=other)
    assert other.created == []
