"""Retrieval evaluation: the field's metrics (R@K, MdR, MnR) and DSL re-weighting."""

from .metrics import (
    inverted_softmax,
    retrieval_metrics_table,
    text_to_video_metrics,
    video_to_text_metrics,
)

__all__ = [
    "inverted_softmax",
    "retrieval_metrics_table",
    "text_to_video_metrics",
    "video_to_text_metrics",
]
