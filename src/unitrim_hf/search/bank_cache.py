"""Text features of the relevance caption bank, cached on disk per model so a search does not encode 48 captions
every time it starts.

The cache key is SHA-256 of the model fingerprint (configuration and every weight) and of the processor's
inputs for the bank (token ids, masks, triplet inputs: every tensor the text tower reads), so the same features
come back only for the same model and the same inputs. Files are safetensors under `UNITRIM_HF_CACHE`
(default `$XDG_CACHE_HOME/unitrim_hf`, else `~/.cache/unitrim_hf`), in `relevance_bank/`. A cache that cannot
be written (a read-only home) or a file that cannot be read back is not an error: the features are encoded.

Within a process the features are also kept per processor object (weakly: they go with the processor) and
model fingerprint, so opening many searchers with one model and processor reads the disk cache once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import weakref
from pathlib import Path

import torch

from ..modeling.modeling_outputs import UniTriMTextFeatures
from .model_fingerprint import ModelFingerprint

logger = logging.getLogger(__name__)

CACHE_ENV = "UNITRIM_HF_CACHE"
# processor -> {(config sha256, weights sha256, texts): features on the CPU}
_IN_MEMORY: "weakref.WeakKeyDictionary[object, dict[tuple, UniTriMTextFeatures]]" = weakref.WeakKeyDictionary()


def cache_folder() -> Path:
    """Where cached bank features live (`UNITRIM_HF_CACHE`, else the user's cache folder)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "relevance_bank"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "unitrim_hf" / "relevance_bank"


def cache_key(fingerprint: ModelFingerprint, inputs: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of the model's hashes and every input tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256(f"{fingerprint.config_sha256}:{fingerprint.weights_sha256}".encode())
    for name in sorted(inputs):
        value = inputs[name]
        if isinstance(value, torch.Tensor):
            digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _tensor_fields(features: UniTriMTextFeatures) -> dict[str, torch.Tensor]:
    """The tensor fields, each its own copy: with `image_text_feature="sentence"` (the baseline presets)
    `combined_embeds` is the sentence tensor itself, and safetensors refuses to save shared memory."""
    return {
        name: value.detach().cpu().clone(memory_format=torch.contiguous_format)
        for name, value in features.items()
        if isinstance(value, torch.Tensor)
    }


def _read(path: Path) -> UniTriMTextFeatures | None:
    from safetensors.torch import load_file

    try:
        return UniTriMTextFeatures(**load_file(path))
    except Exception as error:  # noqa: BLE001 - an unreadable cache file is only a cache miss
        logger.warning("ignoring the unreadable cached caption bank %s: %s", path, error)
        return None


def _write(path: Path, features: UniTriMTextFeatures) -> None:
    from safetensors.torch import save_file

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".bank-", suffix=".tmp")
        os.close(handle)
        try:
            save_file(_tensor_fields(features), temporary)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError as error:
        logger.info("the caption bank is not cached (%s)", error)


@torch.inference_mode()
def bank_text_features(model, processor, texts: list[str], fingerprint: ModelFingerprint) -> UniTriMTextFeatures:
    """
    Float32 `UniTriMTextFeatures` of `texts` (batch of len(texts)) on the model's device: read from the cache
    when this model encoded the same inputs before, else encoded in one batch and cached.
    """
    device = next(model.parameters()).device
    remembered = _IN_MEMORY.setdefault(processor, {})
    memory_key = (fingerprint.config_sha256, fingerprint.weights_sha256, tuple(texts), cache_folder())
    if memory_key in remembered:
        return remembered[memory_key].to(device)
    inputs = processor(text=list(texts))
    path = cache_folder() / f"{cache_key(fingerprint, inputs)[:40]}.safetensors"
    features = _read(path) if path.is_file() else None
    if features is None:
        features = model.get_text_features(**{name: value.to(device) for name, value in inputs.items()}).to(torch.float32)
        _write(path, features)
    remembered[memory_key] = features.to("cpu")
    return features.to(device)


__all__ = ["CACHE_ENV", "bank_text_features", "cache_folder", "cache_key"]
