"""Benchmarks as `datasets` builders (MSR-VTT, MSVD, DiDeMo, SyntheticTriM), keyframes and the frame cache."""

from .base import VideoBenchmarkBuilder, VideoBenchmarkConfig, caption_to_video, video_table
from .didemo import DiDeMo
from ..errors import BenchmarkFormatError, UnsafePickleError
from ..errors import FrameCacheMismatchError
from .frame_cache import load_frame_cache, prepare_frames, read_cached_batch, to_model_resolution
from .keyframes import CLIPFrameEmbedder, keyframe_dataset, select_keyframe_index
from .loading import load_benchmark
from .msrvtt import MSRVTT
from .msvd import MSVD
from .safe_pickle import load_caption_pickle, load_restricted_pickle
from .synthetic import ClipSpec, ObjectSpec, describe_clip, generate_clip_specs, render_clip
from .synthetic_trim import SyntheticTriM
from .synthetic_writer import write_synthetic_benchmark

__all__ = [
    "BenchmarkFormatError",
    "CLIPFrameEmbedder",
    "ClipSpec",
    "DiDeMo",
    "FrameCacheMismatchError",
    "MSRVTT",
    "MSVD",
    "ObjectSpec",
    "SyntheticTriM",
    "UnsafePickleError",
    "VideoBenchmarkBuilder",
    "VideoBenchmarkConfig",
    "caption_to_video",
    "describe_clip",
    "generate_clip_specs",
    "keyframe_dataset",
    "load_benchmark",
    "load_caption_pickle",
    "load_frame_cache",
    "load_restricted_pickle",
    "prepare_frames",
    "read_cached_batch",
    "render_clip",
    "select_keyframe_index",
    "to_model_resolution",
    "video_table",
    "write_synthetic_benchmark",
]
