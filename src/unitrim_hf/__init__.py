"""UniTriM: one model that retrieves videos and images for a text query.

The package loads lazily: `import unitrim_hf` is instant (so the `unitrim` command answers `--help` and argument
errors without loading torch), and the first name taken from it (`from unitrim_hf import UniTriMModel`, or
`unitrim_hf.UniTriMConfig`) imports the classes and registers `UniTriMConfig`, `UniTriMModel` (and
`UniTriMProcessor`) with transformers' Auto classes. Nothing is downloaded at import.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public name -> the submodule that defines it.
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


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if name != "UniTriMError" and name != "VideoDecodingError":
        _register_auto_classes()
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "CLIPFrameTransform",
    "FrameSampler",
    "SampledFrames",
    "TaggerDataMissingError",
    "Triplet",
    "TripletParser",
    "UniTriMConfig",
    "UniTriMError",
    "UniTriMProcessor",
    "VideoDecodingError",
    "clip_transform",
    "load_clip_tokenizer",
    "triplet_f1",
    "UniTriMModel",
    "UniTriMOutput",
    "UniTriMPreTrainedModel",
    "UniTriMSimilarityOutput",
    "UniTriMTextFeatures",
    "UniTriMVisualFeatures",
]
