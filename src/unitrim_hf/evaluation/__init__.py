"""Retrieval evaluation: the field's metrics (R@K, MdR, MnR), test-time post-processing (DSL, QB-Norm, SK-norm)
and the evaluation runner.

Names load on first use, so `unitrim-eval --help` and its argument errors answer before torch loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

# Public name -> module of this package that defines it.
_EXPORTS = {
    "inverted_softmax": "metrics",
    "retrieval_metrics_table": "metrics",
    "text_to_video_metrics": "metrics",
    "video_to_text_metrics": "metrics",
    "dual_softmax_text_to_video": "postprocessing",
    "dual_softmax_video_to_text": "postprocessing",
    "querybank_normalize": "postprocessing",
    "sinkhorn_normalize": "postprocessing",
    "DualSoftmax": "postprocessing_options",
    "QueryBankNorm": "postprocessing_options",
    "SinkhornNorm": "postprocessing_options",
    "parse_postprocessing": "postprocessing_options",
    "load_report": "report",
    "render_markdown": "report",
    "save_report": "report",
    "RetrievalEvaluation": "runner",
    "evaluate_retrieval": "runner",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .metrics import inverted_softmax, retrieval_metrics_table, text_to_video_metrics, video_to_text_metrics
    from .postprocessing import (
        dual_softmax_text_to_video,
        dual_softmax_video_to_text,
        querybank_normalize,
        sinkhorn_normalize,
    )
    from .postprocessing_options import DualSoftmax, QueryBankNorm, SinkhornNorm, parse_postprocessing
    from .report import load_report, render_markdown, save_report
    from .runner import RetrievalEvaluation, evaluate_retrieval


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
