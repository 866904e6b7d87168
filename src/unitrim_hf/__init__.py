"""UniTriM: one model that retrieves videos and images for a text query.

Importing the package is cheap: names load on first use (as transformers does with `_LazyModule`), the
sub-packages `data`, `training`, `evaluation` and `search` too, and `UniTriMConfig`, `UniTriMModel` and
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
    "UniTriMConfig": "configuration_unitrim",
    "UniTriMModel": "modeling_unitrim",
    "UniTriMPreTrainedModel": "modeling_unitrim",
    "UniTriMOutput": "modeling_outputs",
    "UniTriMSimilarityOutput": "modeling_outputs",
    "UniTriMTextFeatures": "modeling_outputs",
    "UniTriMVisualFeatures": "modeling_outputs",
    "UniTriMError": "errors",
    "VideoDecodingError": "errors",
    "FrameSampler": "frame_sampling",
    "SampledFrames": "frame_sampling",
    "CLIPFrameTransform": "image_transforms",
    "clip_transform": "image_transforms",
    "UniTriMProcessor": "processing_unitrim",
    "load_clip_tokenizer": "tokenization",
    "TaggerDataMissingError": "triplets",
    "Triplet": "triplets",
    "TripletParser": "triplets",
    "triplet_f1": "triplets",
}
_SUBPACKAGES = ("data", "evaluation", "search", "training")

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .configuration_unitrim import UniTriMConfig
    from .errors import UniTriMError, VideoDecodingError
    from .frame_sampling import FrameSampler, SampledFrames
    from .image_transforms import CLIPFrameTransform, clip_transform
    from .modeling_outputs import UniTriMOutput, UniTriMSimilarityOutput, UniTriMTextFeatures, UniTriMVisualFeatures
    from .modeling_unitrim import UniTriMModel, UniTriMPreTrainedModel
    from .processing_unitrim import UniTriMProcessor
    from .tokenization import load_clip_tokenizer
    from .triplets import TaggerDataMissingError, Triplet, TripletParser, triplet_f1


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), _SUBPACKAGES)


register_with_auto_classes()
