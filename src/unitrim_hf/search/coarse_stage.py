"""Coarse candidate retrieval over the items' video embeddings: exact matrix product, or FAISS (optional)."""

from __future__ import annotations

import torch

FAISS_INSTALL_HINT = "the FAISS coarse stage needs faiss-cpu: pip install unitrim_hf[faiss]"


def import_faiss():
    """The `faiss` module, imported only when the FAISS coarse stage is used."""
    try:
        import faiss
    except ImportError as error:
        raise ImportError(FAISS_INSTALL_HINT) from error
    return faiss


class ExactCoarseIndex:
    """
    Inner products of a query vector with every stored video embedding (what the model's `sentence_video`
    alignment computes), then the top candidates.

    Args:
        video_embeds: (num_items, D) float32 stored video embeddings (L2-normalised when encoded).
    """

    def __init__(self, video_embeds: torch.Tensor) -> None:
        self.video_embeds = video_embeds.float()

    def __len__(self) -> int:
        return self.video_embeds.shape[0]

    def search(self, query: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(D,) query -> the `count` best (scores, item positions), best first; ties go to the lower position."""
        scores = self.video_embeds @ query.float()
        count = min(count, len(self))
        # A stable sort keeps equal scores in item order, so the candidate set is deterministic.
        order = torch.sort(scores, descending=True, stable=True).indices[:count]
        return scores[order], order


class FaissCoarseIndex:
    """
    The same coarse stage through a FAISS inner-product index (`index_factory` string, e.g. "Flat" for exact
    search, "HNSW32" or "IVF1024,Flat" for approximate search of millions of items).

    Args:
        video_embeds: (num_items, D) float32.
        index_factory: FAISS factory description; trained on `video_embeds` when the type needs training.
    """

    def __init__(self, video_embeds: torch.Tensor, index_factory: str = "Flat") -> None:
        faiss = import_faiss()
        vectors = video_embeds.float().contiguous().numpy()
        self.index = faiss.index_factory(vectors.shape[1], index_factory, faiss.METRIC_INNER_PRODUCT)
        if not self.index.is_trained and len(vectors):
            self.index.train(vectors)
        if len(vectors):
            self.index.add(vectors)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, query: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        count = min(count, len(self))
        if count == 0:
            return torch.zeros(0), torch.zeros(0, dtype=torch.long)
        scores, positions = self.index.search(query.float().reshape(1, -1).contiguous().numpy(), count)
        keep = positions[0] >= 0  # approximate indexes may return fewer than `count`
        return torch.from_numpy(scores[0][keep]), torch.from_numpy(positions[0][keep]).long()


def build_coarse_index(video_embeds: torch.Tensor, backend: str = "exact", index_factory: str = "Flat"):
    """An `ExactCoarseIndex` ("exact") or a `FaissCoarseIndex` ("faiss")."""
    if backend == "exact":
        return ExactCoarseIndex(video_embeds)
    if backend == "faiss":
        return FaissCoarseIndex(video_embeds, index_factory)
    raise ValueError(f"coarse backend must be 'exact' or 'faiss', got {backend!r}")


__all__ = ["ExactCoarseIndex", "FaissCoarseIndex", "FAISS_INSTALL_HINT", "build_coarse_index", "import_faiss"]
