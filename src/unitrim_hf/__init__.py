"""UniTriM: one model that retrieves videos and images for a text query.

The package loads lazily: `import unitrim_hf` is instant (the command-line tools answer `--help` and refuse bad
arguments without importing torch). The first name taken from it (`from unitrim_hf import UniTriMModel`,
`unitrim_hf.UniTriMConfig`, ...), or importing it after transformers, imports the model code and registers
`UniTriMConfig`, `UniTriMModel` (and `UniTriMProcessor`) with transformers' Auto classes. Nothing is downloaded at
import.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__version__ = "0.1.0"

# Public name -> submodule that defines it.
_EXPORTS = {
    "UniTriMConfig": "configuration_unitrim",
    "UniTriMOutput": "modeling_outputs",
    "UniTriMSimilarityOutput": "modeling_outputs",
    "UniTriMTextFeatures": "modeling_outputs",
    "UniTriMVisualFeatures": "modeling_outputs",
    "UniTriMModel": "modeling_unitrim",
    "UniTriMPreTrainedModel": "modeling_unitrim",
    "UniTriMError": "errors",
    "VideoDecodingError": "errors",
    "FrameSampler": "frame_sampling",
    "SampledFrames": "frame_sampling",
    "CLIPFrameTransform": "image_transforms",
    "clip_transform": "image_transforms",
    "UniTriMProcessor": "processing_unitrim",
    "load_clip_tokenizer": "tokenization",
    "TaggerDataMissingError": "triplet_parser",
    "Triplet": "triplet_parser",
    "TripletParser": "triplet_parser",
    "triplet_f1": "triplet_parser",
}
_registered = False


def _register_auto_classes() -> None:
    """Register the config, model and processor with transformers' Auto classes (once)."""
    global _registered
    if _registered:
        return
    _registered = True
    from transformers import AutoConfig, AutoModel, AutoProcessor

    from .configuration_unitrim import UniTriMConfig
    from .modeling_unitrim import UniTriMModel
    from .processing_unitrim import UniTriMProcessor

    AutoConfig.register(UniTriMConfig.model_type, UniTriMConfig, exist_ok=True)
    AutoModel.register(UniTriMConfig, UniTriMModel, exist_ok=True)
    AutoProcessor.register(UniTriMConfig, UniTriMProcessor, exist_ok=True)
    # Saved folders carry their modeling code (auto_map), so they also load with trust_remote_code=True where the
    # package is not installed.
    UniTriMConfig.register_for_auto_class()
    UniTriMModel.register_for_auto_class("AutoModel")


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _register_auto_classes()
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)

if "transformers" in sys.modules:
    # transformers is already loaded (its Auto classes are about to be used): registering costs no extra import.
    _register_auto_classes()
