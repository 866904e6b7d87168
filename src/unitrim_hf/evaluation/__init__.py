"""Retrieval evaluation: the field's metrics (R@K, MdR, MnR), DSL re-weighting and the evaluation runner."""

from .metrics import (
    inverted_softmax,
    retrieval_metrics_table,
    text_to_video_metrics,
    video_to_text_metrics,
)
from .report import load_report, render_markdown, save_report
from .runner import RetrievalEvaluation, evaluate_retrieval

__all__ = [
    "RetrievalEvaluation",
    "evaluate_retrieval",
    "inverted_softmax",
    "load_report",
    "render_markdown",
    "retrieval_metrics_table",
    "save_report",
    "text_to_video_metrics",
    "video_to_text_metrics",
]
