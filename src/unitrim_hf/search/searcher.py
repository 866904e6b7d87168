"""Two-stage text search over an index: coarse candidates by the `sentence_video` score, then full MGSA.

Stage 1 scores items of the requested kinds with the coarse text vector of their kind (sentence for videos,
t_sp for images when the model has a disentangler) against the stored video embedding, i.e. exactly the
model's `sentence_video` alignment, through the index's vector search (exact on small tables, IVF-PQ with exact
re-ranking on large ones), and keeps the best `num_candidates`. The candidates' rows come back with their
features (checksums verified). Stage 2 rescores them with `model.similarity` (fp16 stored, float32 scored) and
sorts by the MGSA logits. Each result also gets a relevance z-score and label (`relevance`): its score against
the scores that a fixed bank of generic captions gives the same item. Because stage 2 is the exhaustive score restricted to the candidates, the returned
order always equals the exhaustive MGSA order on the returned items; only membership depends on the coarse
stage (see `evaluate_coarse_recall`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ..modeling.modeling_outputs import UniTriMVisualFeatures
from .display import display_text
from .explain import Explanation, explain_match
from .index_rows import IndexedItem, StoredFeatures
from .index_table import DEFAULT_NPROBES, DEFAULT_REFINE_FACTOR, IndexStore
from ..media.media_files import IMAGE, MEDIA_KINDS, VIDEO
from .model_fingerprint import model_fingerprint
from .query import EncodedQuery, encode_query
from .ranking import best_first
from .bank_cache import bank_text_features
from ..modeling.query_bank import GENERIC_CAPTIONS
from ..modeling.relevance import bank_z, relevance_label

KIND_FILTERS = ("all", VIDEO, IMAGE)
# Items converted from stored fp16 to float32 and scored per `model.similarity` call, so an exhaustive pass
# never holds a float32 copy of the whole index.
RESCORE_CHUNK_ITEMS = 4096
# The longest query accepted, in characters: the text tower reads only its first tokens (the caption length,
# 32 for the presets), so a longer text is a mistake (a pasted file), refused rather than silently cut.
MAX_QUERY_CHARACTERS = 1000


@dataclass
class SearchResult:
    """
    One retrieved item.

    Args:
        rank: 1-based position in the results.
        path: the media file (a `str` that opens it; undecodable bytes kept as surrogates).
        display_path: the path as safe text for showing (see `display.display_text`).
        kind: "video" or "image".
        score: the MGSA logit (`logit_scale * mean(enabled alignments)`), what results are sorted by.
        alignment_scores: each enabled alignment's score (cosine scale).
        coarse_score: the stage-1 score (the `sentence_video` cosine).
        item_index: the item's row id in the index version searched (`Searcher.read_rows`).
        size, mtime_ns: of the file when it was indexed (it has changed since when they differ now).
        explanation: why it matched (None when `explain=False`).
        relevance: the z-score of `score` against the scores of the generic-caption bank for the same item
            (`modeling.relevance`; NaN when undefined or not computed).
        relevance_label: "match", "weak" or "no match" (`relevance.relevance_label`).
    """

    rank: int
    path: str
    kind: str
    score: float
    alignment_scores: dict[str, float]
    coarse_score: float
    item_index: int
    display_path: str = ""
    size: int = -1
    mtime_ns: int = -1
    explanation: Explanation | None = None
    relevance: float = float("nan")
    relevance_label: str = ""

    def __post_init__(self) -> None:
        if not self.display_path:
            self.display_path = display_text(self.path)

    def to_dict(self) -> dict:
        values = {key: value for key, value in self.__dict__.items() if key not in ("explanation", "path")}
        values["path"] = self.display_path
        values["explanation"] = self.explanation.to_dict() if self.explanation is not None else None
        values["relevance"] = None if self.relevance != self.relevance else round(self.relevance, 4)  # NaN: null
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


@dataclass
class Candidates:
    """Coarse candidates, best first: items, coarse scores (num,) and their stored features."""

    items: list[IndexedItem]
    scores: torch.Tensor
    features: StoredFeatures

    def __len__(self) -> int:
        return len(self.items)


class Searcher:
    """
    Searches an index built by `Indexer` with the same model, on the index version committed when it opens
    (writers committing meanwhile are not seen; `refresh()` moves to the latest version).

    Args:
        index_dir: the index folder or object-store URI.
        model: the `UniTriMModel` that built the index (checked by fingerprint); it is put in eval mode and left
            so (call `model.train()` afterwards to go on training it).
        processor: its `UniTriMProcessor` (query tokenization and triplets).
        device: where scoring runs (default: the model's device).
        nprobes, refine_factor: settings of the IVF-PQ coarse stage once the index has a vector index.
        storage_options: LanceDB storage options for object stores.

    Raises:
        IndexModelMismatchError: the index was built by another model.
        IndexFormatError: no index there, or an unreadable one.
    """

    def __init__(
        self,
        index_dir: str | os.PathLike,
        model,
        processor,
        device: str | torch.device | None = None,
        nprobes: int = DEFAULT_NPROBES,
        refine_factor: int | None = DEFAULT_REFINE_FACTOR,
        storage_options: dict | None = None,
    ) -> None:
        self.model = model.eval()
        if device is not None:
            self.model.to(device)
        self.device = next(model.parameters()).device
        self.processor = processor
        self.nprobes = nprobes
        self.refine_factor = refine_factor
        self.fingerprint = model_fingerprint(model)
        self.store = IndexStore.open(index_dir, self.fingerprint, storage_options=storage_options)
        self.store.pin()
        self._verify_coarse_stage()
        self._count_kinds()
        self._bank_features = None

    def _verify_coarse_stage(self) -> None:
        """Without a vector index the coarse stage scans every vector: check them all once per pinned version (an
        index's vectors were checked when it was built or last folded rows in)."""
        if not self.store.has_vector_index():
            self.store.verify_vectors()

    def _count_kinds(self) -> None:
        # Items per kind in the pinned version: a kind filter is only applied where both kinds are present.
        self._kind_counts = {kind: self.store.count(kind) for kind in MEDIA_KINDS}

    @property
    def version(self) -> int:
        """The index version searched."""
        return self.store.version

    def refresh(self) -> None:
        """Search the latest committed version from now on."""
        self.store.refresh()
        self.store.pin()
        self._verify_coarse_stage()
        self._count_kinds()

    def __len__(self) -> int:
        return sum(self._kind_counts.values())

    # ------------------------------------------------------------------ stages
    def encode(self, query: str) -> EncodedQuery:
        """The encoded query.

        Raises:
            ValueError: `query` is empty, longer than `MAX_QUERY_CHARACTERS`, or not valid Unicode text (e.g.
                undecodable bytes kept as surrogates).
        """
        if isinstance(query, str):
            try:
                query.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"the query is not valid UTF-8 text: {display_text(query)!r}") from None
            if len(query) > MAX_QUERY_CHARACTERS:
                raise ValueError(
                    f"the query is too long ({len(query)} characters; at most {MAX_QUERY_CHARACTERS})"
                )
        return encode_query(self.model, self.processor, query)

    def _kinds(self, kind: str) -> tuple[str, ...]:
        if kind not in KIND_FILTERS:
            raise ValueError(f"kind must be one of {KIND_FILTERS}, got {kind!r}")
        return MEDIA_KINDS if kind == "all" else (kind,)

    def coarse_candidates(self, query: EncodedQuery, num_candidates: int, kind: str = "all") -> Candidates:
        """Stage 1: the best `num_candidates` items of `kind` by their coarse score, best first (equal scores:
        lower row id first), with their verified stored features."""
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {num_candidates}")
        items, scores, parts = [], [], []
        total = sum(self._kind_counts.values())
        for media_kind in self._kinds(kind):
            if self._kind_counts[media_kind] == 0:
                continue
            only_kind = self._kind_counts[media_kind] == total
            matches = self.store.nearest(
                query.coarse_vector(media_kind).cpu(), num_candidates, None if only_kind else media_kind,
                self.nprobes, self.refine_factor,
            )
            items += matches.items
            scores += matches.scores
            parts.append(matches.features)
        order = best_first(torch.tensor(scores, dtype=torch.float64), [item.row_id for item in items], num_candidates)
        features = StoredFeatures.concatenate(parts).take(order) if order else None
        return Candidates([items[i] for i in order], torch.tensor([scores[i] for i in order]), features)

    def visual_features(self, features: StoredFeatures, kind: str) -> UniTriMVisualFeatures:
        """Stored features (all of `kind`) as float32 model features on the scoring device."""
        return UniTriMVisualFeatures(
            pooler_output=features.video_embeds.float(),
            frame_embeds=features.frame_embeds.float(),
            video_mask=features.video_mask.bool(),
            patch_embeds=None if features.patch_embeds is None else features.patch_embeds.float(),
            patch_indices=features.patch_indices,
            # A model that matches images as pseudo-videos (TS2-Net) stored video features for them.
            is_image=kind == IMAGE and not self.model.config.image_as_pseudo_video,
        ).to(self.device)

    @torch.inference_mode()
    def rescore(
        self, query: EncodedQuery, items: list[IndexedItem], features: StoredFeatures
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Stage 2: MGSA logits (len(items),) and per-alignment scores of `items` with their `features`, scored
        `RESCORE_CHUNK_ITEMS` items at a time."""
        logits = torch.empty(len(items))
        # Videos are scored by the enabled alignments, images by one text_image score: a name absent for an
        # item's kind stays NaN and is left out of its result.
        alignments: dict[str, torch.Tensor] = {}
        text = query.features.to(self.device)
        for media_kind in MEDIA_KINDS:
            of_kind = [i for i, item in enumerate(items) if item.kind == media_kind]
            for start in range(0, len(of_kind), RESCORE_CHUNK_ITEMS):
                selected = torch.tensor(of_kind[start : start + RESCORE_CHUNK_ITEMS], dtype=torch.long)
                output = self.model.similarity(text, self.visual_features(features.take(selected), media_kind))
                logits[selected] = output.logits[0].float().cpu()
                for name, value in output.alignment_scores.items():
                    alignments.setdefault(name, torch.full((len(items),), float("nan")))[selected] = value[0].float().cpu()
        return logits, alignments

    def bank_features(self):
        """`UniTriMTextFeatures` of the generic-caption bank (len(GENERIC_CAPTIONS) texts), taken the first time
        relevance is computed (from the on-disk cache of this model's bank features, else encoded in one batch
        and cached: `bank_cache`) and kept."""
        if self._bank_features is None:
            self._bank_features = bank_text_features(self.model, self.processor, list(GENERIC_CAPTIONS), self.fingerprint)
        return self._bank_features

    @torch.inference_mode()
    def relevance(self, scores: torch.Tensor, items: list[IndexedItem], features: StoredFeatures) -> torch.Tensor:
        """
        (num_items,) relevance z-scores (`modeling.relevance.bank_z`) of the query's MGSA logits `scores`
        (num_items,) of `items` with their stored `features`, against the generic-caption bank's logits of the
        same items.
        """
        z = torch.full((len(items),), float("nan"), dtype=torch.float64)
        bank = self.bank_features()
        for kind in MEDIA_KINDS:
            selected = torch.tensor([i for i, item in enumerate(items) if item.kind == kind], dtype=torch.long)
            if len(selected):
                output = self.model.similarity(bank, self.visual_features(features.take(selected), kind))
                z[selected] = bank_z(scores[selected], output.logits.float().cpu())
        return z

    def exhaustive_scores(self, query: EncodedQuery, kind: str = "all") -> tuple[torch.Tensor, list[IndexedItem]]:
        """MGSA logits of every item of `kind` (brute force, read `RESCORE_CHUNK_ITEMS` rows at a time) and the
        items, in table order."""
        logits, items = [], []
        for media_kind in self._kinds(kind):
            for batch_items, features in self.store.iter_features(media_kind, RESCORE_CHUNK_ITEMS):
                logits.append(self.rescore(query, batch_items, features)[0])
                items += batch_items
        return (torch.cat(logits) if logits else torch.zeros(0)), items

    def read_rows(self, row_ids: list[int]) -> tuple[list[IndexedItem], StoredFeatures]:
        """Items and verified features of rows (`SearchResult.item_index`) of the version searched."""
        return self.store.read_rows(row_ids)

    # ------------------------------------------------------------------ search
    def search(
        self,
        query: str | EncodedQuery,
        top_k: int = 10,
        kind: str = "all",
        num_candidates: int = 100,
        explain: bool = True,
        relevance: bool = True,
    ) -> list[SearchResult]:
        """
        The `top_k` best items of `kind` ("all", "video", "image") for `query`, best first.

        Args:
            num_candidates: items kept by the coarse stage and rescored with MGSA (raised to `top_k` if lower);
                with `num_candidates >= len(self)` on a table without a vector index the search is exhaustive.
            explain: attach an `Explanation` to every result.
            relevance: compute each result's relevance z-score and label (the results scored once more by the
                generic-caption bank; the bank is encoded on the first call).

        Raises:
            ValueError: `top_k` or `num_candidates` below 1, or an unknown `kind`.
            IndexFormatError: a candidate's stored row is corrupt (its checksum fails).
        """
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {num_candidates}")
        encoded = query if isinstance(query, EncodedQuery) else self.encode(query)
        candidates = self.coarse_candidates(encoded, max(num_candidates, top_k), kind)
        if len(candidates) == 0:
            return []
        logits, alignments = self.rescore(encoded, candidates.items, candidates.features)
        items = candidates.items
        order = best_first(logits, [item.row_id for item in items], top_k)
        z = (self.relevance(logits[order], [items[i] for i in order], candidates.features.take(order)) if relevance
             else torch.full((len(order),), float("nan")))
        results = []
        for rank, i in enumerate(order, start=1):
            item = items[i]
            result = SearchResult(
                rank=rank, path=item.path, kind=item.kind, score=float(logits[i]),
                alignment_scores={name: float(value[i]) for name, value in alignments.items() if not value[i].isnan()},
                coarse_score=float(candidates.scores[i]), item_index=item.row_id, display_path=item.display_path,
                size=item.size, mtime_ns=item.mtime_ns, relevance=float(z[rank - 1]),
                relevance_label=relevance_label(float(z[rank - 1])) if relevance else "",
            )
            if explain:
                visual = self.visual_features(candidates.features.take([i]), item.kind)
                result.explanation = explain_match(
                    encoded, visual, candidates.features.timestamps[i], self.processor.tokenizer
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
            logits, items = self.exhaustive_scores(encoded, kind)
            if not items:
                continue
            best = {items[i].path for i in best_first(logits, [item.row_id for item in items], top_k)}
            candidates = {item.path for item in self.coarse_candidates(encoded, num_candidates, kind).items}
            per_query.append(len(best & candidates) / len(best))
        recall = sum(per_query) / len(per_query) if per_query else 0.0
        return CoarseRecallReport(recall, per_query, top_k, num_candidates)


__all__ = ["Candidates", "CoarseRecallReport", "KIND_FILTERS", "MAX_QUERY_CHARACTERS", "SearchResult", "Searcher"]
