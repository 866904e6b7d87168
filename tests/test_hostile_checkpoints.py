"""Model folders that lie: a config.json the weights contradict (refused before anything is built, in bounded time
and memory), and weights that miss or mis-shape a tensor (refused, named, by the library's own tools)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from unitrim_hf import UniTriMConfig, UniTriMModel
from unitrim_hf.errors import CheckpointMismatchError, UniTriMError
from unitrim_hf.model_folders import load_model_strictly
from unitrim_hf.modeling.checkpoint_consistency import CheckpointConfigMismatch, read_safetensors_shapes

# What a refusal may cost, far above what it takes (milliseconds, a few MB): building the 100,000-layer model took
# over 300 s and 6.9 GB.
MAX_SECONDS = 5.0
MAX_PYTHON_MEMORY_BYTES = 64 * 1024 * 1024
MISSING_TENSOR = "text_projection.weight"
MIS_SHAPED_TENSOR = "patch_selector.score.weight"


@pytest.fixture(scope="module")
def saved_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "model"
    UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny")).save_pretrained(folder)
    return folder


def _copy(saved_folder: Path, tmp_path: Path, name: str = "copy") -> Path:
    folder = tmp_path / name
    shutil.copytree(saved_folder, folder)
    return folder


def _edit_config(folder: Path, tower: str | None, field: str, value: object) -> None:
    config = json.loads((folder / "config.json").read_text())
    (config[tower] if tower else config)[field] = value
    (folder / "config.json").write_text(json.dumps(config))


def _edit_weights(folder: Path, edit) -> None:
    weights = load_file(folder / "model.safetensors")
    edit(weights)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})


def _refusal(folder: Path) -> tuple[CheckpointConfigMismatch, float, int]:
    """The error `from_pretrained` raises, the seconds it took and the peak of Python allocations meanwhile."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(CheckpointConfigMismatch) as caught:
            UniTriMModel.from_pretrained(folder)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return caught.value, seconds, peak


# ------------------------------------------------------------------------------------------ config against weights


def test_a_config_claiming_100000_text_layers_is_refused_in_bounded_time_and_memory(saved_folder, tmp_path) -> None:
    folder = _copy(saved_folder, tmp_path)
    _edit_config(folder, "text_config", "num_hidden_layers", 100_000)
    error, seconds, peak = _refusal(folder)
    assert seconds < MAX_SECONDS and peak < MAX_PYTHON_MEMORY_BYTES, (seconds, peak)
    assert error.field == "text_config.num_hidden_layers"
    assert str(folder) in str(error) and "100000" in str(error) and "2 text tower layers" in str(error)
    assert isinstance(error, ValueError)


def test_the_sharded_weights_of_a_folder_are_checked_too(tmp_path) -> None:
    folder = tmp_path / "sharded"
    UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny")).save_pretrained(folder, max_shard_size="1MB")
    assert (folder / "model.safetensors.index.json").is_file() and not (folder / "model.safetensors").exists()
    assert type(UniTriMModel.from_pretrained(folder)) is UniTriMModel
    _edit_config(folder, "vision_config", "num_hidden_layers", 100_000)
    error, seconds, _ = _refusal(folder)
    assert error.field == "vision_config.num_hidden_layers" and seconds < MAX_SECONDS


@pytest.mark.parametrize(
    ("tower", "field", "value"),
    [
        ("text_config", "hidden_size", -32),
        ("text_config", "num_hidden_layers", -2),
        ("text_config", "vocab_size", -5),
        ("vision_config", "patch_size", 0),
        (None, "projection_dim", -4),
        (None, "disentangler_hidden_dim", -1),
    ],
)
def test_negative_and_zero_sizes_are_refused_naming_the_field(saved_folder, tmp_path, tower, field, value) -> None:
    folder = _copy(saved_folder, tmp_path)
    _edit_config(folder, tower, field, value)
    error, seconds, peak = _refusal(folder)
    assert error.field == (f"{tower}.{field}" if tower else field) and repr(value) in error.detail
    assert seconds < MAX_SECONDS and peak < MAX_PYTHON_MEMORY_BYTES


@pytest.mark.parametrize(
    ("tower", "field", "value"),
    [
        ("vision_config", "hidden_size", 10**9),
        ("text_config", "vocab_size", 10**12),
        ("text_config", "intermediate_size", 10**10),
        ("vision_config", "image_size", 10**6),
        (None, "max_frame_positions", 10**9),
        (None, "projection_dim", 2**40),
        ("vision_config", "num_hidden_layers", 1),
        (None, "num_temporal_layers", 0),
        (None, "use_disentangler", False),
    ],
)
def test_sizes_the_weights_contradict_are_refused_naming_the_field(saved_folder, tmp_path, tower, field, value) -> None:
    folder = _copy(saved_folder, tmp_path)
    _edit_config(folder, tower, field, value)
    error, seconds, peak = _refusal(folder)
    assert error.field == (f"{tower}.{field}" if tower else field), error
    assert seconds < MAX_SECONDS and peak < MAX_PYTHON_MEMORY_BYTES


@pytest.mark.parametrize(
    ("tower", "field", "value"),
    [
        ("text_config", "num_hidden_layers", 100_000),
        ("vision_config", "hidden_size", 10**9),
        ("text_config", "vocab_size", 10**12),
        (None, "num_temporal_layers", 10**6),
    ],
)
def test_weights_that_hold_none_of_the_model_do_not_let_the_config_claim_any_size(
    saved_folder, tmp_path, tower, field, value
) -> None:
    """transformers initializes what the weights lack (a placeholder file loads with every tensor missing), so the
    configuration of a module the weights do not hold is bounded by the checkpoint's size instead."""
    folder = _copy(saved_folder, tmp_path)
    save_file({"tensor": torch.tensor([1, 2])}, folder / "model.safetensors", metadata={"format": "pt"})
    _, info = UniTriMModel.from_pretrained(folder, output_loading_info=True)
    assert info["unexpected_keys"] == {"tensor"} and MISSING_TENSOR in info["missing_keys"]
    _edit_config(folder, tower, field, value)
    error, seconds, peak = _refusal(folder)
    assert error.field in {f"{tower}.{field}", tower, field}, error
    assert seconds < MAX_SECONDS and peak < MAX_PYTHON_MEMORY_BYTES


def test_a_consistent_folder_and_the_callers_own_changes_load_as_in_transformers(saved_folder) -> None:
    assert type(UniTriMModel.from_pretrained(saved_folder)) is UniTriMModel
    # Keyword overrides and a `config=` object are the caller's: transformers' behaviour (initialized tensors).
    model, info = UniTriMModel.from_pretrained(saved_folder, num_temporal_layers=5, output_loading_info=True)
    assert len(model.temporal_encoder.layers) == 5 and "temporal_encoder.layers.4.qkv_proj.weight" in info["missing_keys"]
    config = UniTriMConfig.from_preset("unitrim-tiny", disentangler_hidden_dim=8)
    model, info = UniTriMModel.from_pretrained(
        saved_folder, config=config, ignore_mismatched_sizes=True, output_loading_info=True
    )
    assert model.disentangler.spatial_encoder[0].out_features == 8 and info["mismatched_keys"]


def test_a_hub_id_already_in_the_cache_is_checked_before_anything_is_built(saved_folder, tmp_path) -> None:
    revision = "0" * 40
    repository = tmp_path / "hub" / "models--acme--tiny"
    (repository / "refs").mkdir(parents=True)
    (repository / "refs" / "main").write_text(revision)
    snapshot = repository / "snapshots" / revision
    snapshot.parent.mkdir()
    shutil.copytree(saved_folder, snapshot)
    _edit_config(snapshot, "text_config", "num_hidden_layers", 100_000)
    start = time.perf_counter()
    with pytest.raises(CheckpointConfigMismatch, match="acme/tiny") as caught:
        UniTriMModel.from_pretrained("acme/tiny", cache_dir=tmp_path / "hub", local_files_only=True)
    assert caught.value.field == "text_config.num_hidden_layers" and time.perf_counter() - start < MAX_SECONDS


def test_a_damaged_safetensors_header_is_refused_without_reading_it(tmp_path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    with pytest.raises(ValueError, match="header of"):
        read_safetensors_shapes(path)
    path.write_bytes(struct.pack("<Q", 10) + b"{}")
    with pytest.raises(ValueError, match="truncated"):
        read_safetensors_shapes(path)


# ------------------------------------------------------------------------------------------ missing and mis-shaped


@pytest.fixture(scope="module")
def damaged_folders(saved_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("damaged")
    missing = _copy(saved_folder, root, "missing")
    _edit_weights(missing, lambda weights: weights.pop(MISSING_TENSOR))
    mis_shaped = _copy(saved_folder, root, "mis_shaped")
    _edit_weights(mis_shaped, lambda weights: weights.__setitem__(MIS_SHAPED_TENSOR, torch.zeros(2, 16)))
    not_finite = _copy(saved_folder, root, "not_finite")
    _edit_weights(not_finite, lambda weights: weights[MISSING_TENSOR].view(-1).__setitem__(3, float("nan")))
    return {"missing": missing, "mis_shaped": mis_shaped, "not_finite": not_finite}


def test_user_code_keeps_transformers_behaviour_for_a_missing_tensor(damaged_folders) -> None:
    model, info = UniTriMModel.from_pretrained(damaged_folders["missing"], output_loading_info=True)
    assert info["missing_keys"] == {MISSING_TENSOR} and model.text_projection.weight.shape == (32, 32)


def test_the_strict_loader_refuses_missing_and_mis_shaped_tensors_naming_them(saved_folder, damaged_folders) -> None:
    assert type(load_model_strictly(UniTriMModel, saved_folder)) is UniTriMModel
    with pytest.raises(CheckpointMismatchError, match=f"lack `{MISSING_TENSOR}`"):
        load_model_strictly(UniTriMModel, damaged_folders["missing"])
    with pytest.raises(CheckpointMismatchError, match=rf"`{MIS_SHAPED_TENSOR}` of shape \[2, 16\]") as caught:
        load_model_strictly(UniTriMModel, damaged_folders["mis_shaped"])
    assert isinstance(caught.value, UniTriMError) and isinstance(caught.value, ValueError)


def _tool_commands(folder: Path, tmp_path: Path) -> dict[str, list[str]]:
    media = tmp_path / "media"
    media.mkdir(exist_ok=True)
    return {
        "unitrim index": [sys.executable, "-m", "unitrim_hf.search.cli", "index", str(media), "--model", str(folder),
                          "--index", str(tmp_path / "index"), "--no-progress"],
        "unitrim search": [sys.executable, "-m", "unitrim_hf.search.cli", "search", "a red square", "--model",
                           str(folder), "--index", str(tmp_path / "index")],
        "unitrim-eval": [sys.executable, "-m", "unitrim_hf.evaluation.cli", "--model", str(folder), "--benchmark",
                         "synthetic", "--data_dir", str(tmp_path / "data"), "--no_progress"],
        "train.py --do_eval_only": [sys.executable, str(Path(__file__).resolve().parents[1] / "train.py"),
                                    "--do_eval_only", "--model_name_or_path", str(folder),
                                    "--output_dir", str(tmp_path / "eval_only")],
    }


def _run_tool(command: list[str]) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=environment)


def _error_lines(completed: subprocess.CompletedProcess) -> list[str]:
    return [line for line in completed.stderr.splitlines() if "error:" in line]


TOOLS = ["unitrim index", "unitrim search", "unitrim-eval", "train.py --do_eval_only"]
DAMAGES = [
    ("missing", f"lack `{MISSING_TENSOR}`"), ("mis_shaped", f"`{MIS_SHAPED_TENSOR}` of shape [2, 16]"),
    # A NaN weight emptied the index before LanceDB refused its vectors, and made a search print "(no results)".
    ("not_finite", f"NaN or infinite values in `{MISSING_TENSOR}`"),
]
# Every tool meets one damage and every damage one tool in the default run; the other pairs run with --run-slow.
TOOL_DAMAGE_PAIRS = [
    pytest.param(tool, damage, named, marks=() if index % len(DAMAGES) == tool_index % len(DAMAGES) else pytest.mark.slow)
    for tool_index, tool in enumerate(TOOLS)
    for index, (damage, named) in enumerate(DAMAGES)
]


@pytest.mark.parametrize(("tool", "damage", "named"), TOOL_DAMAGE_PAIRS)
def test_the_tools_refuse_a_damaged_checkpoint_in_one_line(damaged_folders, tmp_path, tool, damage, named) -> None:
    completed = _run_tool(_tool_commands(damaged_folders[damage], tmp_path)[tool])
    assert completed.returncode != 0, completed.stdout
    lines = _error_lines(completed)
    assert len(lines) == 1 and named in lines[0] and str(damaged_folders[damage]) in lines[0], completed.stderr
    assert "Traceback" not in completed.stderr and "LOAD REPORT" not in completed.stderr
    assert not (tmp_path / "index").exists()


def test_a_tool_refuses_a_100000_layer_config_at_once(saved_folder, tmp_path) -> None:
    folder = _copy(saved_folder, tmp_path)
    _edit_config(folder, "text_config", "num_hidden_layers", 100_000)
    start = time.perf_counter()
    completed = _run_tool(_tool_commands(folder, tmp_path)["unitrim index"])
    assert time.perf_counter() - start < 60
    assert completed.returncode == 2 and "Traceback" not in completed.stderr, completed.stderr
    (line,) = _error_lines(completed)
    assert "`text_config.num_hidden_layers` is 100000" in line and str(folder) in line


def test_a_pickle_that_is_not_plain_weights_is_one_line(saved_folder, tmp_path) -> None:
    """A `.bin` pickle that references a function: torch.load(weights_only=True) refuses it with a bare
    UnpicklingError traceback in the tools."""
    import pickle

    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text((saved_folder / "config.json").read_text())
    with open(folder / "pytorch_model.bin", "wb") as handle:
        pickle.dump({"text_projection.weight": os.getcwd}, handle)
    with pytest.raises(CheckpointMismatchError, match=r"a pickle \(.bin\) that torch.load refuses to load safely"):
        load_model_strictly(UniTriMModel, folder)

