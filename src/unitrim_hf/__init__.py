"""UniTriM: one model that retrieves videos and images for a text query.

Importing the package is cheap: names load on first use (as transformers does with `_LazyModule`), the
sub-packages (`modeling`, `media`, `data`, `training`, `evaluation`, `search`) too, and `UniTriMConfig`, `UniTriMModel` and
`UniTriMProcessor` are registered with transformers' Auto classes as soon as those load (see
`auto_registration`). Nothing is downloaded at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .auto_registration import register_with_auto_classes
from .lazy_exports import lazy_exports

__version__ = "0.1.0"

# Public name -> module that defines it.
_EXPORTS = {
    "UniTriMConfig": "modeling.configuration_unitrim",
    "UniTriMModel": "modeling.modeling_unitrim",
    "UniTriMPreTrainedModel": "modeling.modeling_unitrim",
    "UniTriMOutput": "modeling.modeling_outputs",
    "UniTriMSimilarityOutput": "modeling.modeling_outputs",
    "UniTriMTextFeatures": "modeling.modeling_outputs",
    "UniTriMVisualFeatures": "modeling.modeling_outputs",
    "FrameSampler": "media.frame_sampling",
    "SampledFrames": "media.frame_sampling",
    "CLIPFrameTransform": "media.image_transforms",
    "clip_transform": "media.image_transforms",
    "UniTriMProcessor": "processing_unitrim",
    "load_clip_tokenizer": "tokenization",
    "Triplet": "triplets",
    "TripletParser": "triplets",
    "triplet_f1": "triplets",
}
# Every error class, from the one module that defines them all.
_EXPORTS.update({name: "errors" for name in (
    "BenchmarkFormatError", "CheckpointError", "FrameCacheMismatchError", "ImageDecodingError", "IndexFormatError",
    "IndexModelMismatchError", "NonFiniteLossError", "RecipeError", "TaggerDataMissingError", "TrainingArgumentError",
    "UniTriMError", "UnsafePickleError", "UnsupportedDistributionError", "VideoDecodingError",
)})
_SUBPACKAGES = ("data", "evaluation", "media", "modeling", "search", "training")

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .errors import (
        BenchmarkFormatError, CheckpointError, FrameCacheMismatchError, ImageDecodingError, IndexFormatError,
        IndexModelMismatchError, NonFiniteLossError, RecipeError, TaggerDataMissingError, TrainingArgumentError,
        UniTriMError, UnsafePickleError, UnsupportedDistributionError, VideoDecodingError,
    )
    from .media.frame_sampling import FrameSampler, SampledFrames
    from .media.image_transforms import CLIPFrameTransform, clip_transform
    from .modeling.configuration_unitrim import UniTriMConfig
    from .modeling.modeling_outputs import UniTriMOutput, UniTriMSimilarityOutput, UniTriMTextFeatures, UniTriMVisualFeatures
    from .modeling.modeling_unitrim import UniTriMModel, UniTriMPreTrainedModel
    from .processing_unitrim import UniTriMProcessor
    from .tokenization import load_clip_tokenizer
    from .triplets import Triplet, TripletParser, triplet_f1


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), _SUBPACKAGES)


register_with_auto_classes()
