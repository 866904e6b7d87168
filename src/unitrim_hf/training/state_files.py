"""Training state as safetensors and JSON files only: nothing in a checkpoint is unpickled, so nothing in it runs.

- the model's parameters: `model.safetensors` (`safetensors.torch.save_model`, shared tensors kept once);
- the optimizer: its tensors (`state.<parameter index>.<name>`) in `optimizer.safetensors`, its parameter groups
  and non-tensor state in `optimizer.json`;
- the learning-rate schedule and the mixed-precision loss scaler: `scheduler.json`, `scaler.json`;
- the random generators of each process: `rng_state_<rank>.safetensors` (torch CPU and CUDA) and
  `rng_state_<rank>.json` (Python's `random`, NumPy's global generator).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

MODEL_FILE = "model.safetensors"
OPTIMIZER_TENSORS_FILE = "optimizer.safetensors"
OPTIMIZER_JSON_FILE = "optimizer.json"
SCHEDULER_FILE = "scheduler.json"
SCALER_FILE = "scaler.json"


def rng_file_names(rank: int) -> tuple[str, str]:
    return f"rng_state_{rank}.safetensors", f"rng_state_{rank}.json"


def _write_json(path: Path, values: Any) -> None:
    path.write_text(json.dumps(values, indent=1, allow_nan=False))


def save_model_parameters(model: torch.nn.Module, folder: Path) -> None:
    save_model(model, str(folder / MODEL_FILE))


def load_model_parameters(model: torch.nn.Module, folder: Path) -> None:
    load_model(model, str(folder / MODEL_FILE), strict=True, device=str(next(model.parameters()).device))


def save_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    """`optimizer.state_dict()` split into its tensors (safetensors) and everything else (JSON)."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    other_state: dict[str, dict[str, Any]] = {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().contiguous().cpu()
            else:
                other_state.setdefault(str(index), {})[name] = value
    save_file(tensors, str(folder / OPTIMIZER_TENSORS_FILE))
    _write_json(folder / OPTIMIZER_JSON_FILE, {"param_groups": state_dict["param_groups"], "other_state": other_state})


def load_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    """Inverse of `save_optimizer` (the optimizer moves the state to its parameters' devices)."""
    described = json.loads((folder / OPTIMIZER_JSON_FILE).read_text())
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in load_file(str(folder / OPTIMIZER_TENSORS_FILE)).items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = tensor
    for index, values in described["other_state"].items():
        state.setdefault(int(index), {}).update(values)
    groups = described["param_groups"]
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_json_state(component: Any, path: Path) -> None:
    """A scheduler's or scaler's `state_dict()` (plain numbers and lists) as JSON."""
    _write_json(path, component.state_dict())


def load_json_state(component: Any, path: Path) -> None:
    component.load_state_dict(json.loads(path.read_text()))


def save_rng_state(folder: Path, rank: int) -> None:
    """This process's generators: torch CPU (and CUDA) as tensors, Python's and NumPy's as JSON."""
    tensor_file, json_file = rng_file_names(rank)
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for device, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{device}"] = state
    save_file(tensors, str(folder / tensor_file))
    python_version, python_state, python_gauss = random.getstate()
    numpy_name, numpy_keys, numpy_position, numpy_has_gauss, numpy_gauss = np.random.get_state()
    _write_json(folder / json_file, {
        "python": [python_version, list(python_state), python_gauss],
        "numpy": [numpy_name, numpy_keys.tolist(), int(numpy_position), int(numpy_has_gauss), float(numpy_gauss)],
    })


def load_rng_state(folder: Path, rank: int) -> bool:
    """Restore this process's generators; False when the checkpoint has none for `rank` (other process count)."""
    tensor_file, json_file = rng_file_names(rank)
    if not (folder / tensor_file).is_file():
        return False
    tensors = load_file(str(folder / tensor_file))
    torch.set_rng_state(tensors["torch_cpu"])
    cuda_states = [tensors[key] for key in sorted(tensors) if key.startswith("torch_cuda_")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    values = json.loads((folder / json_file).read_text())
    python_version, python_state, python_gauss = values["python"]
    random.setstate((python_version, tuple(python_state), python_gauss))
    numpy_name, numpy_keys, numpy_position, numpy_has_gauss, numpy_gauss = values["numpy"]
    np.random.set_state((numpy_name, np.asarray(numpy_keys, dtype=np.uint32), numpy_position, numpy_has_gauss, numpy_gauss))
    return True
