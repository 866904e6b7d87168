"""Two-stage text search over an index: coarse candidates by the `sentence_video` score, then full MGSA.

Stage 1 scores every item of the requested kinds with the coarse text vector of its kind (sentence for videos,
t_sp for images when the model has a disentangler) against the stored video embedding, i.e. exactly the
model's `sentence_video` alignment, and keeps the best `num_candidates`. Stage 2 rescores those candidates with
`model.similarity` on their stored features (fp16 on disk, float32 for scoring) and sorts by the MGSA logits.
Because stage 2 is the exhaustive score restricted to the candidates, the returned order always equals the
exhaustive MGSA order on the returned items; only membership depends on the coarse stage (see
`evaluate_coarse_recall`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ..modeling_outputs import UniTriMVisualFeatures
from .coarse_stage import build_coarse_index
from .explain import Explanation, explain_match
from .index_store import IndexStore, StoredFeatures
from .media_files import IMAGE, MEDIA_KINDS, VIDEO
from .model_fingerprint import model_fingerprint
from .query import EncodedQuery, encode_query

KIND_FILTERS = ("all", VIDEO, IMAGE)
# Items converted from stored fp16 to float32 and scored per `model.similarity` call, so an exhaustive pass
# never holds a float32 copy of the whole index.
RESCORE_CHUNK_ITEMS = 4096


@dataclass
class SearchResult:
    """
    One retrieved item.

    Args:
        rank: 1-based position in the results.
        path: the media file.
        kind: "video" or "image".
        score: the MGSA logit (`logit_scale * mean(enabled alignments)`), what results are sorted by.
        alignment_scores: each enabled alignment's score (cosine scale).
        coarse_score: the stage-1 score (the `sentence_video` cosine).
        item_index: position of the item in the index manifest.
        explanation: why it matched (None when `explain=False`).
    """

    rank: int
    path: str
    kind: str
    score: float
    alignment_scores: dict[str, float]
    coarse_score: float
    item_index: int
    explanation: Explanation | None = None

    def to_dict(self) -> dict:
        values = {key: value for key, value in self.__dict__.items() if key != "explanation"}
        values["explanation"] = self.explanation.to_dict() if self.explanation is not None else None
        return values


@dataclass
class CoarseRecallReport:
    """Fraction of the exhaustive MGSA top-k found among the coarse stage's candidates.

    Args:
        recall: mean over queries (1.0: the two-stage search returns exactly the exhaustive top-k).
        per_query: recall of each query, in order.
        top_k, num_candidates: the settings measured.
    """

    recall: float
    per_query: list[float] = field(default_factory=list)
    top_k: int = 10
    num_candidates: int = 100


class Searcher:
    """
    Searches an index built by `Indexer` with the same model.

    Args:
        index_dir: the index folder.
        model: the `UniTriMModel` that built the index (checked by fingerprint); it is put in eval mode and left
            so (call `model.train()` afterwards to go on training it).
        processor: its `UniTriMProcessor` (query tokenisation and triplets).
        device: where scoring runs (default: the model's device).
        coarse_backend: "exact" (matrix product, default) or "faiss" (needs `pip install unitrim_hf[faiss]`).
        faiss_index_factory: FAISS index type for the "faiss" backend ("Flat" is exact).

    Raises:
        IndexModelMismatchError: the index was built by another model.
    """

    def __init__(
        self,
        index_dir: str | os.PathLike,
        model,
        processor,
        device: str | torch.device | None = None,
        coarse_backend: str = "exact",
        faiss_index_factory: str = "Flat",
    ) -> None:
        self.model = model.eval()
        if device is not None:
            self.model.to(device)
        self.device = next(model.parameters()).device
        self.processor = processor
        self.store = IndexStore.open(index_dir, model_fingerprint(model))
        self.items = list(self.store.items)
        self.features: StoredFeatures = self.store.load_features(self.items)
        self.kinds = [item.kind for item in self.items]
        self._positions = {
            kind: torch.tensor([i for i, item_kind in enumerate(self.kinds) if item_kind == kind], dtype=torch.long)
            for kind in MEDIA_KINDS
        }
        self._coarse = {
            kind: build_coarse_index(self.features.video_embeds[positions].float(), coarse_backend, faiss_index_factory)
            for kind, positions in self._positions.items()
        }

    def __len__(self) -> int:
        return len(self.items)

    # ------------------------------------------------------------------ stages
    def encode(self, query: str) -> EncodedQuery:
        return encode_query(self.model, self.processor, query)

    def _kinds(self, kind: str) -> tuple[str, ...]:
        if kind not in KIND_FILTERS:
            raise ValueError(f"kind must be one of {KIND_FILTERS}, got {kind!r}")
        return MEDIA_KINDS if kind == "all" else (kind,)

    def coarse_candidates(self, query: EncodedQuery, num_candidates: int, kind: str = "all") -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 1: the best `num_candidates` items (manifest positions) and their coarse scores, best first."""
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {num_candidates}")
        scores, positions = [], []
        for media_kind in self._kinds(kind):
            if len(self._positions[media_kind]) == 0:
                continue
            kind_scores, kind_rows = self._coarse[media_kind].search(query.coarse_vector(media_kind).cpu(), num_candidates)
            scores.append(kind_scores)
            positions.append(self._positions[media_kind][kind_rows])
        if not scores:
            return torch.zeros(0), torch.zeros(0, dtype=torch.long)
        scores, positions = torch.cat(scores), torch.cat(positions)
        # Order by score, then by manifest position for equal scores (deterministic across backends).
        order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), int(positions[i])))[:num_candidates]
        return scores[order], positions[order]

    def visual_features(self, positions: torch.Tensor, kind: str) -> UniTriMVisualFeatures:
        """The stored features of `positions` (all of `kind`) as float32 model features on the scoring device."""
        stored = self.features.take(positions)
        return UniTriMVisualFeatures(
            video_embeds=stored.video_embeds.float(),
            frame_embeds=stored.frame_embeds.float(),
            video_mask=stored.video_mask.bool(),
            patch_embeds=None if stored.patch_embeds is None else stored.patch_embeds.float(),
            is_image=kind == IMAGE,
        ).to(self.device)

    @torch.inference_mode()
    def rescore(self, query: EncodedQuery, positions: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Stage 2: MGSA logits (len(positions),) and per-alignment scores of the items at `positions`, scored
        `RESCORE_CHUNK_ITEMS` items at a time."""
        positions = torch.as_tensor(positions, dtype=torch.long)
        logits = torch.empty(len(positions))
        # Videos are scored by the enabled alignments, images by one text_image score: a name absent for an
        # item's kind stays NaN and is left out of its result.
        alignments: dict[str, torch.Tensor] = {}
        text = query.features.to(self.device)
        for media_kind in MEDIA_KINDS:
            of_kind = [i for i, position in enumerate(positions.tolist()) if self.kinds[position] == media_kind]
            for start in range(0, len(of_kind), RESCORE_CHUNK_ITEMS):
                selected = torch.tensor(of_kind[start : start + RESCORE_CHUNK_ITEMS], dtype=torch.long)
                output = self.model.similarity(text, self.visual_features(positions[selected], media_kind))
                logits[selected] = output.logits[0].float().cpu()
                for name, value in output.alignment_scores.items():
                    alignments.setdefault(name, torch.full((len(positions),), float("nan")))[selected] = value[0].float().cpu()
        return logits, alignments

    def exhaustive_scores(self, query: EncodedQuery, kind: str = "all") -> tuple[torch.Tensor, torch.Tensor]:
        """MGSA logits of every item of `kind` (brute force) and their manifest positions."""
        positions = torch.cat([self._positions[media_kind] for media_kind in self._kinds(kind)])
        return self.rescore(query, positions)[0], positions

    # ------------------------------------------------------------------ search
    def search(
        self,
        query: str | EncodedQuery,
        top_k: int = 10,
        kind: str = "all",
        num_candidates: int = 100,
        explain: bool = True,
    ) -> list[SearchResult]:
        """
        The `top_k` best items of `kind` ("all", "video", "image") for `query`, best first.

        Args:
            num_candidates: items kept by the coarse stage and rescored with MGSA (raised to `top_k` if lower);
                with `num_candidates >= len(self)` the search is exhaustive.
            explain: attach an `Explanation` to every result.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        encoded = query if isinstance(query, EncodedQuery) else self.encode(query)
        coarse_scores, positions = self.coarse_candidates(encoded, max(num_candidates, top_k), kind)
        if len(positions) == 0:
            return []
        logits, alignments = self.rescore(encoded, positions)
        order = sorted(range(len(positions)), key=lambda i: (-float(logits[i]), int(positions[i])))[:top_k]
        results = []
        for rank, i in enumerate(order, start=1):
            position = int(positions[i])
            item = self.items[position]
            result = SearchResult(
                rank=rank, path=item.path, kind=item.kind, score=float(logits[i]),
                alignment_scores={name: float(value[i]) for name, value in alignments.items() if not value[i].isnan()},
                coarse_score=float(coarse_scores[i]), item_index=position,
            )
            if explain:
                visual = self.visual_features(torch.tensor([position]), item.kind)
                result.explanation = explain_match(
                    encoded, visual, self.features.timestamps[position], self.processor.tokenizer
                )
            results.append(result)
        return results

    def evaluate_coarse_recall(
        self, queries: list[str], top_k: int = 10, num_candidates: int = 100, kind: str = "all"
    ) -> CoarseRecallReport:
        """Recall of the coarse stage: the share of each query's exhaustive MGSA top-k among its candidates."""
        per_query = []
        for text in queries:
            encoded = self.encode(text)
            logits, positions = self.exhaustive_scores(encoded, kind)
            if len(positions) == 0:
                continue
            order = sorted(range(len(positions)), key=lambda i: (-float(logits[i]), int(positions[i])))[:top_k]
            best = {int(positions[i]) for i in order}
            candidates = set(self.coarse_candidates(encoded, num_candidates, kind)[1].tolist())
            per_query.append(len(best & candidates) / len(best))
        recall = sum(per_query) / len(per_query) if per_query else 0.0
        return CoarseRecallReport(recall, per_query, top_k, num_candidates)


__all__ = ["CoarseRecallReport", "KIND_FILTERS", "SearchResult", "Searcher"]
