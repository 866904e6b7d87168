"""The media wing: files to frames and pixels.

Video decoding (PyAV), the choice of frames, the frame sampler, image loading (Pillow) and the CLIP image
transform, the video writer and the detection of media files by content. It knows no model: nothing here imports
`unitrim_hf.modeling` (`tests/test_layout.py` keeps it so). Names load on first use.
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

# Public name -> the submodule that defines it.
_EXPORTS = {
    "FrameSampler": "frame_sampling",
    "SampledFrames": "frame_sampling",
    "FrameGrid": "frame_selection",
    "FrameTimes": "frame_selection",
    "select_frames": "frame_selection",
    "decode_frame_at": "video_decoding",
    "load_image_file": "image_loading",
    "pil_image_to_rgb": "image_loading",
    "CLIPFrameTransform": "image_transforms",
    "clip_transform": "image_transforms",
    "write_video": "video_writer",
    "MediaFile": "media_files",
    "MediaScan": "media_files",
    "SkippedFile": "media_files",
    "classify_file": "media_files",
    "scan_folder": "media_files",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = sorted(_EXPORTS)
