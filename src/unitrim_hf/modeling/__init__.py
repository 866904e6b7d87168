"""The model wing: everything `save_pretrained` ships as model code.

Configuration, model, outputs, the MGSA scorer and its pooling, losses, patch selection, the temporal encoder, the
disentangler, keyed initialization, input validation and conversion from CLIP. Its modules import only torch,
transformers and each other (relative imports of siblings), so that a saved folder carries them as remote code;
`tests/test_layout.py` keeps it so. Names load on first use: importing this package loads neither torch nor
transformers.
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

# Public name -> the submodule that defines it.
_EXPORTS = {
    "UniTriMConfig": "configuration_unitrim",
    "UniTriMModel": "modeling_unitrim",
    "UniTriMPreTrainedModel": "modeling_unitrim",
    "UniTriMOutput": "modeling_outputs",
    "UniTriMSimilarityOutput": "modeling_outputs",
    "UniTriMTextFeatures": "modeling_outputs",
    "UniTriMVisualFeatures": "modeling_outputs",
    "MGSAScorer": "mgsa_scorer",
    "UniTriMLoss": "losses",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = sorted(_EXPORTS)
