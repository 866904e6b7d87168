"""UniTriM: one model that retrieves videos and images for a text query.

Importing the package registers `UniTriMConfig`, `UniTriMModel` (and `UniTriMProcessor`) with transformers'
Auto classes. Nothing is downloaded at import.
"""

from transformers import AutoConfig, AutoModel, AutoProcessor

from .configuration_unitrim import UniTriMConfig
from .modeling_outputs import UniTriMOutput, UniTriMSimilarityOutput, UniTriMTextFeatures, UniTriMVisualFeatures
from .modeling_unitrim import UniTriMModel, UniTriMPreTrainedModel
from .errors import UniTriMError, VideoDecodingError
from .frame_sampling import FrameSampler, SampledFrames
from .image_transforms import CLIPFrameTransform, clip_transform
from .processing_unitrim import UniTriMProcessor
from .tokenization import load_clip_tokenizer
from .triplets import TaggerDataMissingError, Triplet, TripletParser, triplet_f1

__version__ = "0.1.0"

AutoConfig.register(UniTriMConfig.model_type, UniTriMConfig, exist_ok=True)
AutoModel.register(UniTriMConfig, UniTriMModel, exist_ok=True)
AutoProcessor.register(UniTriMConfig, UniTriMProcessor, exist_ok=True)
# Saved folders carry their modeling code (auto_map), so they also load with trust_remote_code=True where the
# package is not installed.
UniTriMConfig.register_for_auto_class()
UniTriMModel.register_for_auto_class("AutoModel")

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
