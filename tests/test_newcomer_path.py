"""What a newcomer meets first: the synthetic benchmark read with the settings its folder records, model folders that
do not exist reported as such, train.py's refusals as one line before any work, eval-only metrics beside (never
over) a run's, the model card's license and requirements, and report files with the umask's mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from unitrim_hf.benchmark_names import ANNOTATION_FILES, SYNTHETIC_DEFAULTS, resolve_synthetic_settings
from unitrim_hf.errors import BenchmarkFormatError, MissingModelFolderError, TrainingArgumentError
from unitrim_hf.model_folders import check_model_folder, looks_like_local_path

REPOSITORY = Path(__file__).resolve().parents[1]


def _environment() -> dict[str, str]:
    environment = dict(os.environ, HF_HUB_OFFLINE="1")
    environment["PYTHONPATH"] = os.pathsep.join([str(REPOSITORY / "src"), environment.get("PYTHONPATH", "")])
    return environment


@pytest.fixture(scope="module")
def small_benchmark(tmp_path_factory) -> Path:
    """A synthetic benchmark of 6 training and 3 test clips (not the default size), seed 2."""
    from unitrim_hf.data import write_synthetic_benchmark

    return write_synthetic_benchmark(tmp_path_factory.mktemp("small") / "data", num_train=6, num_test=3, seed=2)


# ---------------------------------------------------------------- 1. one set of defaults, read from the folder


def test_every_writer_and_reader_of_the_synthetic_benchmark_has_the_main_jobs_defaults() -> None:
    import inspect

    from unitrim_hf.data import write_synthetic_benchmark
    from unitrim_hf.data.synthetic_trim import SyntheticTriMConfig
    from unitrim_hf.training.arguments import DATASET_DEFAULTS, DataArguments

    assert SYNTHETIC_DEFAULTS == {
        "num_train": 400, "num_test": 100, "seed": 0, "num_frames": 16, "frame_size": 64, "fps": 8.0, "scenes": "mixed",
    }
    # No second set of numbers anywhere: every other place leaves the settings to the folder or to SYNTHETIC_DEFAULTS.
    signature = inspect.signature(write_synthetic_benchmark)
    assert all(signature.parameters[name].default is None for name in SYNTHETIC_DEFAULTS)
    config = SyntheticTriMConfig(name="x")
    assert all(getattr(config, name) is None for name in SYNTHETIC_DEFAULTS)
    assert not any(key.startswith("synthetic_") for key in DATASET_DEFAULTS["synthetic"])
    assert DataArguments().synthetic_settings() == {"num_train": None, "num_test": None, "seed": None, "scenes": None}
    assert resolve_synthetic_settings("/nonexistent/synthetic") == SYNTHETIC_DEFAULTS


def test_load_benchmark_reads_a_generated_folder_with_its_own_settings(small_benchmark, tmp_path) -> None:
    from unitrim_hf.data import load_benchmark

    manifest = json.loads((small_benchmark / "synthetic_trim.json").read_text())
    assert (manifest["num_train"], manifest["num_test"], manifest["seed"]) == (6, 3, 2)
    test = load_benchmark("synthetic", small_benchmark, "test", cache_dir=tmp_path / "cache")  # as the README shows
    assert test.num_rows == 3
    train = load_benchmark("synthetic", small_benchmark, "train", cache_dir=tmp_path / "cache", num_train=6, seed=2)
    assert len(set(train["video_id"])) == 6


@pytest.mark.parametrize("setting, value", [("num_train", 7), ("seed", 0), ("frame_size", 32)])
def test_a_setting_that_contradicts_the_folder_is_refused_naming_it_and_the_folder(small_benchmark, tmp_path, setting, value) -> None:
    from unitrim_hf.data import load_benchmark, write_synthetic_benchmark

    with pytest.raises(BenchmarkFormatError, match=rf"{setting}={value} contradicts the synthetic benchmark in {small_benchmark}"):
        load_benchmark("synthetic", small_benchmark, "test", cache_dir=tmp_path / "cache", **{setting: value})
    with pytest.raises(BenchmarkFormatError, match=rf"{setting}={value} contradicts"):
        write_synthetic_benchmark(small_benchmark, **{setting: value})


def test_train_py_reads_the_folders_settings_and_names_its_own_flag_when_contradicted(small_benchmark) -> None:
    from unitrim_hf.training import parse_arguments
    from unitrim_hf.training.builders import load_split
    from unitrim_hf.training.preflight import check_before_work

    arguments = parse_arguments(["--data_dir", str(small_benchmark), "--output_dir", str(small_benchmark.parent / "run")])
    check_before_work(*arguments)
    assert load_split(arguments[1], "test").num_rows == 3  # no --synthetic_num_test needed
    contradicting = parse_arguments(["--data_dir", str(small_benchmark), "--synthetic_num_train", "400",
                                     "--output_dir", str(small_benchmark.parent / "run")])
    with pytest.raises(TrainingArgumentError, match=rf"--synthetic_num_train 400 contradicts the synthetic benchmark in {small_benchmark}.*--data_dir"):
        check_before_work(*contradicting)


def test_comparison_runs_read_the_folders_settings(small_benchmark, tmp_path) -> None:
    """`unitrim-compare` hands the folder to train.py: its runs need no size flags for an existing folder."""
    from unitrim_hf.comparison.recipes import Recipe, Variant
    from unitrim_hf.comparison.runs import build_run_specs
    from unitrim_hf.training import parse_arguments
    from unitrim_hf.training.builders import load_split

    recipe = Recipe("presets", [Variant("clip4clip-meanp-tiny", "clip4clip-meanp-tiny")])
    recipe.training["data_dir"] = str(small_benchmark)
    (spec,) = build_run_specs(recipe, tmp_path / "runs")[:1]
    assert load_split(parse_arguments(spec.argv)[1], "test").num_rows == 3


# ---------------------------------------------------------------- 2. a model folder that does not exist


@pytest.mark.parametrize("name", ["runs/tiny/bset", "./model", "~/models/unitrim", "/models/unitrim", "..", "C:\\models\\x",
                                  "my model", "outputs/"])
def test_arguments_that_can_only_be_folders_look_like_local_paths(name) -> None:
    assert looks_like_local_path(name)


@pytest.mark.parametrize("name", ["openai/clip-vit-base-patch32", "gpt2", "your-name/unitrim-msrvtt"])
def test_hub_ids_do_not_look_like_local_paths(name) -> None:
    assert not looks_like_local_path(name)
    check_model_folder(name)  # left to from_pretrained


def test_a_hub_shaped_name_whose_first_part_exists_here_is_a_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    with pytest.raises(MissingModelFolderError, match="^no such model folder: outputs/best_modl$"):
        check_model_folder("outputs/best_modl")
    (tmp_path / "outputs" / "best_model").mkdir()
    check_model_folder("outputs/best_model")
    check_model_folder(tmp_path / "outputs" / "best_model")
    check_model_folder(None)


TOOLS = {
    "unitrim-eval": "from unitrim_hf.evaluation.cli import main; status = main(['--model', 'runs/tiny/bset', "
                    "'--benchmark', 'synthetic', '--data_dir', 'data/synthetic'])",
    "unitrim index": "from unitrim_hf.search.cli import main; status = main(['index', '.', '--model', 'runs/tiny/bset', "
                     "'--index', 'idx'])",
    "unitrim search": "from unitrim_hf.search.cli import main; status = main(['search', 'a dog', '--model', "
                      "'runs/tiny/bset', '--index', 'idx'])",
    "unitrim-train": "from unitrim_hf.training.cli import main; status = main(['--model_name_or_path', "
                     "'runs/tiny/bset', '--do_eval_only'])",
    "unitrim-train --clip_model_name_or_path": "from unitrim_hf.training.cli import main; status = main(["
                                               "'--clip_model_name_or_path', 'runs/tiny/bset'])",
    "unitrim-compare": "from unitrim_hf.comparison.cli import main; status = main(['--presets', 'unitrim-tiny', "
                       "'--clip_model_name_or_path', 'runs/tiny/bset'])",
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_every_tool_reports_a_missing_model_folder_in_one_line_before_torch_loads(tool, tmp_path) -> None:
    script = (
        "import sys\ntry:\n    " + TOOLS[tool] + "\nexcept SystemExit as exit:\n    status = exit.code\n"
        "print('torch loaded' if 'torch' in sys.modules else 'torch not loaded')\nsys.exit(status)\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_environment(), capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.strip().splitlines() == [completed.stderr.strip()], completed.stderr
    assert completed.stderr.strip().endswith("no such model folder: runs/tiny/bset")
    assert "huggingface.co" not in completed.stderr and "Repo id" not in completed.stderr
    assert completed.stdout.strip() == "torch not loaded"


# ---------------------------------------------------------------- 4. train.py's refusals: one line, before any work


def _train_main(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    from unitrim_hf.training import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    return error


def test_an_output_folder_with_checkpoints_is_refused_in_one_line_naming_the_flags(tmp_path, capsys) -> None:
    checkpoint = tmp_path / "run" / "checkpoints" / "checkpoint-000012"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    error = _train_main(["--output_dir", str(tmp_path / "run"), "--data_dir", str(tmp_path / "data")], capsys)
    assert error.startswith(f"unitrim-train: error: --output_dir {tmp_path / 'run'} already holds checkpoints")
    assert "checkpoint-000012" in error and "--resume_from_checkpoint latest" in error and "--overwrite_output_dir" in error
    assert not (tmp_path / "data").exists()  # nothing was prepared


def test_the_msrvtt_config_without_its_data_is_refused_in_one_line_saying_where_the_data_goes(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPOSITORY)
    assert not Path("/data/msrvtt").exists()
    error = _train_main(["--config", "configs/msrvtt.yaml", "--output_dir", str(tmp_path / "run")], capsys)
    assert error.startswith("unitrim-train: error: --data_dir /data/msrvtt: no such folder.")
    assert "MSRVTT_data.json" in error and "docs/datasets.md" in error and "pass --data_dir" in error


def test_a_benchmark_folder_without_its_annotation_files_is_refused_naming_them(tmp_path, capsys) -> None:
    (tmp_path / "msvd").mkdir()
    (tmp_path / "msvd" / "raw-captions.pkl").write_bytes(b"")
    error = _train_main(["--dataset", "msvd", "--data_dir", str(tmp_path / "msvd"), "--output_dir", str(tmp_path / "run")], capsys)
    assert "no train_list.txt, val_list.txt, test_list.txt in this folder" in error and "raw-captions.pkl," not in error


def test_the_annotation_files_checked_are_the_ones_the_builders_read() -> None:
    from unitrim_hf.data.didemo import DIDEMO_SPLITS
    from unitrim_hf.data.msrvtt import MSRVTT
    from unitrim_hf.data.msvd import MSVD, MSVD_SPLIT_LISTS

    assert set(ANNOTATION_FILES["msrvtt"]) == {MSRVTT.ANNOTATION_JSON, "MSRVTT_train.{config}.csv", MSRVTT.TEST_CSV}
    assert set(ANNOTATION_FILES["msvd"]) == {MSVD.CAPTIONS_FILE, *MSVD_SPLIT_LISTS.values()}
    assert set(ANNOTATION_FILES["didemo"]) == {json_name for json_name, _ in DIDEMO_SPLITS.values()}


def test_evaluation_only_writes_eval_metrics_beside_the_runs_metrics(tmp_path) -> None:
    from types import SimpleNamespace

    import torch

    from unitrim_hf.evaluation import RetrievalEvaluation
    from unitrim_hf.training.loop import Trainer

    (tmp_path / "metrics.json").write_text('{"the": "training run"}')
    evaluation = RetrievalEvaluation(metrics={"text_to_video": {"R@1": 40.0}}, dsl_metrics=None, alignment_metrics=None,
                                     num_captions=1, num_videos=1, skipped_videos=[], settings={})
    trainer = Trainer.__new__(Trainer)
    trainer.model, trainer.output_dir = torch.nn.Linear(1, 1), tmp_path
    trainer.accelerator = SimpleNamespace(device="cpu", is_main_process=True)
    trainer.model_args = SimpleNamespace(model_name_or_path=str(tmp_path / "model"))
    trainer.eval_split = {"video_path": []}
    trainer.evaluate = lambda label: evaluation
    result = trainer._evaluate_only()
    assert result.evaluation is evaluation
    assert (tmp_path / "metrics.json").read_text() == '{"the": "training run"}'
    assert json.loads((tmp_path / "eval_metrics.json").read_text())["metrics"] == {"text_to_video": {"R@1": 40.0}}
    assert (tmp_path / "eval_metrics.md").is_file()


# ---------------------------------------------------------------- 5. model card; report files' mode


def test_the_model_card_has_the_librarys_license_and_the_remote_code_requirements() -> None:
    from huggingface_hub import ModelCard

    from unitrim_hf import UniTriMConfig
    from unitrim_hf.training.model_card import remote_code_requirements, render_model_card

    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    card = render_model_card(UniTriMConfig.from_preset("unitrim-tiny"), model_id="someone/unitrim", base_model=None,
                             dataset_name="synthetic")
    assert ModelCard(card).data.to_dict()["license"] == project["license"]["text"].lower() == "apache-2.0"
    assert "license: mit" not in card
    assert "trust_remote_code=True" in card
    for package in ("Pillow", "nltk", "av", "torch", "transformers"):
        (requirement,) = [item for item in remote_code_requirements() if item.split(">=")[0] == package]
        assert f"`{requirement}`" in card
        assert requirement in project["dependencies"]  # the versions the package itself requires


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_and_reports_get_the_mode_the_umask_gives(tmp_path, umask, mode) -> None:
    from unitrim_hf.search.atomic_write import write_text_atomically
    from unitrim_hf.search.report import write_html, write_json

    previous = os.umask(umask)
    try:
        written = [write_text_atomically(tmp_path / "plain.txt", "x"), write_json(tmp_path / "results.json", "q", []),
                   write_html(tmp_path / "results.html", "q", [])]
    finally:
        os.umask(previous)
    assert {oct(path.stat().st_mode & 0o777) for path in written} == {oct(mode)}
