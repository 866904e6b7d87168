"""A text query encoded once for search: its features, tokens, parsed triplets and coarse vectors."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..modeling.mgsa_scorer import coarse_text_embeds
from ..modeling.modeling_outputs import UniTriMTextFeatures
from ..media.media_files import IMAGE


@dataclass
class EncodedQuery:
    """
    Args:
        text: the query.
        features: `UniTriMTextFeatures` of the query (batch of 1, float32, on the model's device).
        input_ids: (L,) the query's token ids (to name the words of `features.word_embeds`).
        triplets: the parsed (subject, predicate, object) triplets, as the model saw them.
    """

    text: str
    features: UniTriMTextFeatures
    input_ids: torch.Tensor
    triplets: list[tuple[str, str, str]]

    def coarse_vector(self, kind: str) -> torch.Tensor:
        """(D,) the normalized coarse text vector for items of `kind` (see `mgsa_scorer.coarse_text_embeds`)."""
        return coarse_text_embeds(self.features.to(torch.float32), for_images=kind == IMAGE)[0]


@torch.inference_mode()
def encode_query(model, processor, text: str) -> EncodedQuery:
    """Tokenize, parse and encode one query with `model` (on its device)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a search query must be a non-empty string, got {text!r}")
    device = next(model.parameters()).device
    inputs = processor(text=[text])
    features = model.get_text_features(**{name: value.to(device) for name, value in inputs.items()})
    triplets = [tuple(triplet) for triplet in processor.parse_triplets(text)] if processor.use_triplets else []
    return EncodedQuery(text, features.to(torch.float32), inputs["input_ids"][0].cpu(), triplets)


__all__ = ["EncodedQuery", "encode_query"]
