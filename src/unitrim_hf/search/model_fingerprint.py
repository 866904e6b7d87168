"""A cheap fingerprint of a UniTriM model: a hash of its configuration and a hash sampled from every weight."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import torch

# Config keys that describe where or how a model was saved, not what it computes.
VOLATILE_CONFIG_KEYS = {"_name_or_path", "transformers_version", "torch_dtype", "dtype", "architectures", "auto_map"}
# Elements read (evenly spaced) from each parameter tensor for the weights hash.
SAMPLES_PER_TENSOR = 1024


@dataclass(frozen=True)
class ModelFingerprint:
    """
    Identifies the model that built an index.

    Args:
        config_sha256: hash of the configuration JSON (sorted keys, without save-location keys).
        weights_sha256: hash of the names, shapes and up to 1024 evenly spaced values (as float32) of every
            parameter and buffer; any retraining changes it, computing it costs milliseconds even for ViT-B/32.
        name_or_path: where the model was loaded from (informational, not compared).
    """

    config_sha256: str
    weights_sha256: str
    name_or_path: str = ""

    def matches(self, other: "ModelFingerprint") -> bool:
        return self.config_sha256 == other.config_sha256 and self.weights_sha256 == other.weights_sha256

    def describe(self) -> str:
        source = self.name_or_path or "an unnamed model"
        return f"{source} (config sha256 {self.config_sha256[:12]}, weights sha256 {self.weights_sha256[:12]})"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelFingerprint":
        return cls(values["config_sha256"], values["weights_sha256"], values.get("name_or_path", ""))


def config_sha256(config) -> str:
    """Hash of a `PretrainedConfig`'s full JSON without the keys in `VOLATILE_CONFIG_KEYS`."""
    values = json.loads(config.to_json_string(use_diff=False))

    def strip(node):
        if isinstance(node, dict):
            return {key: strip(value) for key, value in node.items() if key not in VOLATILE_CONFIG_KEYS}
        return node

    return hashlib.sha256(json.dumps(strip(values), sort_keys=True).encode()).hexdigest()


def sample_positions(numel: int) -> torch.Tensor:
    """
    `SAMPLES_PER_TENSOR` evenly spaced flat positions in a tensor of `numel` elements, as (SAMPLES_PER_TENSOR,)
    int64 on the CPU. Integer arithmetic: float32 linspace rounds large positions differently on CPU and CUDA,
    which would give one model two fingerprints.
    """
    return torch.arange(SAMPLES_PER_TENSOR, dtype=torch.int64) * (numel - 1) // (SAMPLES_PER_TENSOR - 1)


def weights_sha256(model: torch.nn.Module) -> str:
    """Hash of every tensor's name, shape and `SAMPLES_PER_TENSOR` evenly spaced values (cast to float32)."""
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict().items()):
            flat = tensor.detach().reshape(-1)
            if flat.numel() > SAMPLES_PER_TENSOR:
                flat = flat[sample_positions(flat.numel()).to(flat.device)]
            digest.update(f"{name}:{tuple(tensor.shape)}".encode())
            digest.update(flat.to(device="cpu", dtype=torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def model_fingerprint(model) -> ModelFingerprint:
    """The `ModelFingerprint` of a `UniTriMModel` (or any `PreTrainedModel`)."""
    return ModelFingerprint(
        config_sha256=config_sha256(model.config),
        weights_sha256=weights_sha256(model),
        name_or_path=str(getattr(model.config, "_name_or_path", "") or getattr(model, "name_or_path", "") or ""),
    )


__all__ = ["ModelFingerprint", "config_sha256", "model_fingerprint", "sample_positions", "weights_sha256"]
