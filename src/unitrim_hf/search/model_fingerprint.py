"""The fingerprint of a UniTriM model: a hash of its configuration and a hash of every byte of every weight."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import torch

from ..errors import IndexFormatError

# Config keys that describe where or how a model was saved, not what it computes.
VOLATILE_CONFIG_KEYS = {"_name_or_path", "transformers_version", "torch_dtype", "dtype", "architectures", "auto_map"}


@dataclass(frozen=True)
class ModelFingerprint:
    """
    Identifies the model that built an index.

    Args:
        config_sha256: hash of the configuration JSON (sorted keys, without save-location keys).
        weights_sha256: hash of the name, dtype, shape and all bytes of every parameter and buffer: one changed
            weight changes it (about a second for ViT-B/32 on one CPU core).
        name_or_path: where the model was loaded from (informational, not compared).
    """

    config_sha256: str
    weights_sha256: str
    name_or_path: str = ""

    def matches(self, other: "ModelFingerprint") -> bool:
        return self.config_sha256 == other.config_sha256 and self.weights_sha256 == other.weights_sha256

    @property
    def digest(self) -> str:
        """One string for both hashes (stored on every row of an index)."""
        return f"{self.config_sha256[:16]}-{self.weights_sha256[:16]}"

    def describe(self) -> str:
        source = self.name_or_path or "an unnamed model"
        return f"{source} (config sha256 {self.config_sha256[:12]}, weights sha256 {self.weights_sha256[:12]})"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelFingerprint":
        """
        The fingerprint stored as `values` (from [`~ModelFingerprint.to_dict`]).

        Raises:
            IndexFormatError: `values` is not a dict, or a field is missing or not a string (naming the field).
        """
        if not isinstance(values, dict):
            raise IndexFormatError(f"the model fingerprint must be an object, got {type(values).__name__}")
        return cls(
            _string_field(values, "config_sha256"), _string_field(values, "weights_sha256"),
            _string_field(values, "name_or_path", required=False),
        )


def _string_field(values: dict, name: str, required: bool = True) -> str:
    """`values[name]`, which must be a string (`""` when absent and not `required`)."""
    if name not in values:
        if required:
            raise IndexFormatError(f"the model fingerprint has no field {name!r}")
        return ""
    value = values[name]
    if not isinstance(value, str):
        raise IndexFormatError(f"the model fingerprint field {name!r} must be a string, got {type(value).__name__}")
    return value


def config_sha256(config) -> str:
    """Hash of a `PretrainedConfig`'s full JSON without the keys in `VOLATILE_CONFIG_KEYS`."""
    values = json.loads(config.to_json_string(use_diff=False))

    def strip(node):
        if isinstance(node, dict):
            return {key: strip(value) for key, value in node.items() if key not in VOLATILE_CONFIG_KEYS}
        return node

    return hashlib.sha256(json.dumps(strip(values), sort_keys=True).encode()).hexdigest()


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over every state-dict tensor (sorted by name): its name, dtype, shape and raw bytes on the CPU."""
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            flat = tensor.detach().to("cpu").contiguous().reshape(-1)
            digest.update(flat.view(torch.uint8).numpy().data if flat.numel() else b"")
    return digest.hexdigest()


def model_fingerprint(model) -> ModelFingerprint:
    """The `ModelFingerprint` of a `UniTriMModel` (or any `PreTrainedModel`)."""
    return ModelFingerprint(
        config_sha256=config_sha256(model.config),
        weights_sha256=weights_sha256(model),
        name_or_path=str(getattr(model.config, "_name_or_path", "") or getattr(model, "name_or_path", "") or ""),
    )


__all__ = ["ModelFingerprint", "config_sha256", "model_fingerprint", "weights_sha256"]
