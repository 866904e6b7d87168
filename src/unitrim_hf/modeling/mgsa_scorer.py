"""Multi-granularity semantic alignment (MGSA) as objects: one `Alignment` per (text, visual) granularity pair,
and the `MGSAScorer` that owns the enabled alignments, the tiling of large galleries and the compiled path.

The alignments and the fields each granularity reads are those of `alignment_table`. Each granularity turns a
feature batch into *units*: L2-normalized vectors (batch, units, D) with a validity mask (None when every unit is
real). An alignment scores text units against visual units: one cosine when both sides have one unit, else
attention over the similarity matrix (`pooling`). A still image is scored by the single `text_image` alignment: the
text's `image_text_embeds` against CLIP's image embedding. Imports only torch (and the package's torch-only
modules).

Vocabulary: an alignment's *scores* are its (num_texts, num_visuals) matrix on the cosine scale; the *logits* are
`logit_scale * mean(scores of the enabled alignments)` (an alignment of `UNSCALED_ALIGNMENTS` enters the mean
without the scale); `MGSAScorer.similarity` computes both.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from .alignment_table import (
    ALIGNMENT_GRANULARITIES,
    FRAME_SOFTMAX_ALIGNMENTS,
    IMAGE_ALIGNMENT,
    IMAGE_ALIGNMENT_GRANULARITIES,
    ISA_ALIGNMENTS,
    TEXT_GRANULARITY_FIELDS,
    UNSCALED_ALIGNMENTS,
    VISUAL_GRANULARITY_FIELDS,
)
from .aosm import AlignmentMixing, AOSMWeights, mixed_fine_grained_scores
from .frame_softmax_pooling import frame_softmax_scores
from .interactive_similarity_aggregation import (
    ISAMixing,
    ISAWeights,
    bilinear_sentence_video_scores,
    sentence_frame_isa_scores,
    word_token_isa_scores,
)
from .modeling_outputs import UniTriMSimilarityOutput, UniTriMTextFeatures, UniTriMVisualFeatures
from .pooling import cosine_scores, fine_grained_scores, l2_normalize

DEFAULT_MAX_BLOCK_ELEMENTS = 2**22  # a 16 MiB float32 tile: measured faster on CPU than 64 MiB (cache)
DEFAULT_VISUAL_BLOCK_SIZE = 512


@dataclass
class Units:
    """
    Normalized units of one granularity of a feature batch.

    Args:
        embeds (`(B, n, D)`): L2-normalized unit vectors (padding units are zero); UCoFiA's `token` units are
            left as they are, as its code leaves them.
        mask (`(B, n)` bool, optional): true for real units; None when all are real.
    """

    embeds: torch.Tensor
    mask: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return self.embeds.shape[1]

    def take(self, rows: slice | torch.Tensor) -> "Units":
        return Units(self.embeds[rows], None if self.mask is None else self.mask[rows])


def _masked_units(embeds: torch.Tensor, mask: torch.Tensor) -> Units:
    """Units with their mask, dropped when every unit is real (its softmax bias would add exact zeros)."""
    mask = mask.bool()
    return Units(l2_normalize(embeds), None if bool(mask.all()) else mask)


def _sorted_by_length(units: Units) -> tuple[Units, torch.Tensor]:
    """The rows of `units` ordered by their number of real units, and that order (row indices). Tiles of rows of
    equal length then carry no padding, which the scorer trims away (fewer products, no mask)."""
    device = units.embeds.device
    if units.mask is None:
        return units, torch.arange(units.embeds.shape[0], device=device)
    order = torch.argsort(units.mask.sum(dim=1), stable=True)
    return Units(units.embeds[order], units.mask[order]), order


def _patch_units(features: UniTriMVisualFeatures) -> Units:
    batch_size, num_frames, top_k, embed_dim = features.patch_embeds.shape
    mask = features.video_mask.bool()[:, :, None].expand(-1, -1, top_k).reshape(batch_size, num_frames * top_k)
    return _masked_units(features.patch_embeds.reshape(batch_size, num_frames * top_k, embed_dim), mask)


def _token_units(features: UniTriMVisualFeatures) -> Units:
    """UCoFiA's kept tokens of every frame as they are (its code does not normalize them), frame-major."""
    if features.token_embeds is None:
        raise ValueError(
            "The `word_token_isa` alignment reads `token_embeds` (UCoFiA's kept tokens of every frame), which these "
            "visual features do not hold (features stored in a search index do not keep them)."
        )
    batch_size, num_frames, per_frame, embed_dim = features.token_embeds.shape
    mask = features.video_mask.bool()[:, :, None].expand(-1, -1, per_frame).reshape(batch_size, num_frames * per_frame)
    embeds = features.token_embeds.reshape(batch_size, num_frames * per_frame, embed_dim)
    return Units(embeds, None if bool(mask.all()) else mask)


@dataclass(frozen=True)
class Granularity:
    """A level of text or visual detail: the feature fields it reads and how they become units."""

    name: str
    fields: tuple[str, ...]
    units: Callable[[Any], Units]


# How each granularity of the table becomes units.
_TEXT_UNITS: dict[str, Callable[[UniTriMTextFeatures], Units]] = {
    "sentence": lambda text: Units(l2_normalize(text.sentence_embeds)[:, None]),
    "triplet": lambda text: _masked_units(text.triplet_embeds, text.triplet_mask),
    "word": lambda text: _masked_units(text.word_embeds, text.word_mask),
    "image_text": lambda text: Units(l2_normalize(text.image_text_embeds)[:, None]),
}
_VISUAL_UNITS: dict[str, Callable[[UniTriMVisualFeatures], Units]] = {
    "video": lambda visual: Units(visual.video_embeds[:, None]),
    "frame": lambda visual: _masked_units(visual.frame_embeds, visual.video_mask),
    "patch": _patch_units,
    "image": lambda visual: Units(visual.video_embeds[:, None]),
    "token": _token_units,
}
TEXT_GRANULARITIES = {
    name: Granularity(name, fields, _TEXT_UNITS[name]) for name, fields in TEXT_GRANULARITY_FIELDS.items()
}
VISUAL_GRANULARITIES = {
    name: Granularity(name, fields, _VISUAL_UNITS[name]) for name, fields in VISUAL_GRANULARITY_FIELDS.items()
}


# The granularities whose padding positions X-CLIP keeps in its softmaxes (`mask_padding=False`): the word
# positions and the frame slots; UCoFiA also the tokens of every slot. UniTriM's own units (triplets, patches) are
# always masked.
UNMASKABLE_GRANULARITIES = ("word", "frame", "token")


@dataclass(frozen=True, eq=False)
class Alignment:
    """
    One MGSA alignment: text units of one granularity against visual units of another.

    `mask_padding=False` keeps every word position and frame slot in the softmax poolings (X-CLIP's computation);
    `mixing` holds the alignment's AOSM matrices (`aosm`) or UCoFiA's ISA matrices, None for temperature-only
    pooling.
    """

    name: str
    text_granularity: str
    visual_granularity: str
    mask_padding: bool = True
    mixing: AlignmentMixing | ISAMixing | None = None

    @property
    def text_fields(self) -> tuple[str, ...]:
        return TEXT_GRANULARITIES[self.text_granularity].fields

    @property
    def visual_fields(self) -> tuple[str, ...]:
        return VISUAL_GRANULARITIES[self.visual_granularity].fields

    def text_units(self, text: UniTriMTextFeatures) -> Units:
        return self._unmasked_if_asked(self.text_granularity, TEXT_GRANULARITIES[self.text_granularity].units(text))

    def visual_units(self, visual: UniTriMVisualFeatures) -> Units:
        units = VISUAL_GRANULARITIES[self.visual_granularity].units(visual)
        return self._unmasked_if_asked(self.visual_granularity, units)

    def _unmasked_if_asked(self, granularity: str, units: Units) -> Units:
        if self.mask_padding or granularity not in UNMASKABLE_GRANULARITIES or self.name in FRAME_SOFTMAX_ALIGNMENTS:
            return units
        return Units(units.embeds)

    def score_units(self, text: Units, visual: Units, temperature: float) -> torch.Tensor:
        """(num_texts, num_visuals) scores of normalized units."""
        if self.name in FRAME_SOFTMAX_ALIGNMENTS:
            return frame_softmax_scores(text.embeds[:, 0], visual.embeds, visual.mask)
        if isinstance(self.mixing, ISAMixing):
            return self._score_isa(text, visual, temperature)
        if self.mixing is not None:
            return mixed_fine_grained_scores(text.embeds, text.mask, visual.embeds, visual.mask, temperature, self.mixing)
        if text.length == 1 and visual.length == 1:
            return cosine_scores(text.embeds[:, 0], visual.embeds[:, 0])
        return fine_grained_scores(text.embeds, text.mask, visual.embeds, visual.mask, temperature)

    def _score_isa(self, text: Units, visual: Units, temperature: float) -> torch.Tensor:
        if self.name == "sentence_video_bilinear":
            return bilinear_sentence_video_scores(text.embeds[:, 0], visual.embeds[:, 0], self.mixing)
        if self.name == "sentence_frame_isa":
            return sentence_frame_isa_scores(text.embeds[:, 0], visual.embeds, visual.mask, temperature, self.mixing)
        return word_token_isa_scores(text.embeds, text.mask, visual.embeds, visual.mask, temperature, self.mixing)

    def score(self, text: UniTriMTextFeatures, visual: UniTriMVisualFeatures, temperature: float) -> torch.Tensor:
        """(num_texts, num_visuals) scores of two feature batches."""
        return self.score_units(self.text_units(text), self.visual_units(visual), temperature)


ALIGNMENTS = {name: Alignment(name, *granularities) for name, granularities in ALIGNMENT_GRANULARITIES.items()}
TEXT_IMAGE = Alignment(IMAGE_ALIGNMENT, *IMAGE_ALIGNMENT_GRANULARITIES)


def coarse_text_embeds(text: UniTriMTextFeatures, for_images: bool) -> torch.Tensor:
    """
    (B, D) the normalized text vector of the coarse score: the sentence feature for videos (`sentence_video`),
    `image_text_embeds` for still images (their whole score). A nearest-neighbour index of `video_embeds` with
    these vectors finds the best candidates by that score.
    """
    alignment = TEXT_IMAGE if for_images else ALIGNMENTS["sentence_video"]
    return alignment.text_units(text).embeds[:, 0]


class MGSAScorer:
    """
    Scores texts against videos (the enabled alignments) or still images (`text_image`); the logits are
    `logit_scale * mean(alignment scores)`.

    Args:
        alignments: names of the enabled alignments (keys of `ALIGNMENTS`), in the order they are reported.
        aggregation_temperature: softmax temperature of the fine-grained pooling.
        compile: `"auto"` (default) compiles the tile scoring with `torch.compile` for galleries on CUDA, where it
            pays, and falls back to eager scoring (with a warning, for the rest of the scorer's life) if compiling
            or running the compiled code fails, e.g. without a working Triton; `True` always, and its failures
            are raised; `False` never (eager on CPU, where compiling does not pay).
        mask_padding: False keeps padded word positions and frame slots in the poolings (X-CLIP's computation).
        aosm: X-CLIP's AOSM matrices (a module of the model, read at every use); None: temperature-only pooling.
        isa: UCoFiA's ISA matrices, needed by its alignments (`ISA_ALIGNMENTS`).
    """

    def __init__(
        self,
        alignments: Sequence[str],
        aggregation_temperature: float,
        compile: bool | str = "auto",
        mask_padding: bool = True,
        aosm: AOSMWeights | None = None,
        isa: ISAWeights | None = None,
    ) -> None:
        unknown = [name for name in alignments if name not in ALIGNMENTS]
        if unknown or not alignments:
            raise ValueError(f"Unknown or no alignments {list(alignments)}; choose from {list(ALIGNMENTS)}.")
        if compile not in (True, False, "auto"):
            raise ValueError(f"compile must be True, False or 'auto', got {compile!r}.")
        without_matrices = [name for name in alignments if name in ISA_ALIGNMENTS and isa is None]
        if without_matrices:
            raise ValueError(f"The UCoFiA alignments {without_matrices} need the model's ISA matrices (`ISAWeights`).")
        self.mask_padding = mask_padding
        self.aosm = aosm
        self.isa = isa
        self.alignments = tuple(
            replace(
                ALIGNMENTS[name], mask_padding=mask_padding, mixing=self._mixing_for(name)
            )
            for name in alignments
        )
        self.aggregation_temperature = aggregation_temperature
        self.compile_mode = compile
        self.compile_options: dict[str, Any] = {"dynamic": True}
        self._compiled_score_units: Callable[..., torch.Tensor] | None = None

    @classmethod
    def from_config(
        cls, config: Any, aosm: AOSMWeights | None = None, isa: ISAWeights | None = None
    ) -> "MGSAScorer":
        """The scorer a `UniTriMConfig` describes (`alignments`, `aggregation_temperature`, `mask_padding`), with
        the model's AOSM matrices when it has them."""
        return cls(
            config.alignments, config.aggregation_temperature, mask_padding=config.mask_padding, aosm=aosm, isa=isa
        )

    def _mixing_for(self, name: str) -> AlignmentMixing | ISAMixing | None:
        if name in ISA_ALIGNMENTS:
            return self.isa.mixing_for(name)
        return None if self.aosm is None else self.aosm.mixing_for(name)

    def with_alignments(self, alignments: Sequence[str]) -> "MGSAScorer":
        """A scorer of `alignments` with this one's temperature, padding rule, AOSM matrices and compile setting."""
        scorer = MGSAScorer(
            alignments, self.aggregation_temperature, self.compile_mode, self.mask_padding, self.aosm, self.isa
        )
        scorer.compile_options = dict(self.compile_options)
        return scorer

    def only(self, name: str) -> "MGSAScorer":
        """A scorer with the single alignment `name` (same temperature, padding rule, matrices, compile setting)."""
        return self.with_alignments([name])

    def alignments_for(self, visual: UniTriMVisualFeatures) -> tuple[Alignment, ...]:
        """The alignments that score `visual`: the enabled ones for videos, `text_image` for still images."""
        return (TEXT_IMAGE,) if visual.is_image else self.alignments

    # ------------------------------------------------------------------ compilation of the tiles

    def compile(self, **compile_options: Any) -> None:
        """Always compile the tile scoring with `torch.compile(**compile_options)` (default `dynamic=True`)."""
        self.compile_mode = True
        self.compile_options = {"dynamic": True, **compile_options}
        self._compiled_score_units = None

    def _tile_function(self, device: torch.device, num_pairs: int) -> Callable[..., torch.Tensor]:
        use_compiled = self.compile_mode is True or (
            self.compile_mode == "auto" and device.type == "cuda" and num_pairs >= 2**16
        )
        if not use_compiled:
            return Alignment.score_units
        if self._compiled_score_units is None:
            compiled = torch.compile(Alignment.score_units, **self.compile_options)
            self._compiled_score_units = compiled if self.compile_mode is True else self._eager_on_failure(compiled)
        return self._compiled_score_units

    def _eager_on_failure(self, compiled: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        """`compiled`, replaced by eager scoring for good the first time it raises (compilation happens on the
        first call, so a missing compiler toolchain surfaces there)."""

        def score_units(*arguments: Any) -> torch.Tensor:
            try:
                return compiled(*arguments)
            except Exception as error:  # torch.compile raises many types (BackendCompilerFailed, OSError, ...)
                warnings.warn(
                    f"torch.compile of the MGSA scoring failed ({type(error).__name__}: {str(error)[:300]}); scoring "
                    "eagerly from now on. Pass compile=False to the scorer (or fix the compiler toolchain) to "
                    "silence this.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.compile_mode = False
                self._compiled_score_units = None
                return Alignment.score_units(*arguments)

        return score_units

    def units_per_pair(self, text: UniTriMTextFeatures, visual: UniTriMVisualFeatures) -> dict[str, int]:
        """{alignment name: text units x visual units} one pair's similarity matrix holds."""
        sizes = {}
        for alignment in self.alignments_for(visual):
            text_units = alignment.text_units(text.take(slice(0, 1))).length
            sizes[alignment.name] = text_units * alignment.visual_units(visual.take(slice(0, 1))).length
        return sizes

    def similarity(
        self,
        text: UniTriMTextFeatures,
        visual: UniTriMVisualFeatures,
        logit_scale: torch.Tensor,
        text_block_size: int | None = None,
        visual_block_size: int | None = None,
        max_block_elements: int | None = DEFAULT_MAX_BLOCK_ELEMENTS,
    ) -> UniTriMSimilarityOutput:
        """
        Score every text against every visual: each enabled alignment's scores (for images, the single
        `text_image` score) and the logits, `logit_scale * mean(scores)`.

        By default the pairs are scored tile by tile, so that memory stays bounded for large galleries; the result
        does not depend on the tile sizes. Features are normalized once, and texts (videos) are tiled in the order
        of their number of words or triplets (frames), so that a tile carries little padding. With
        `max_block_elements=None` every pair is scored in one block, eagerly: what the training loss uses (a batch,
        differentiable).

        Args:
            text: features of num_texts captions.
            visual: features of num_visuals videos or images.
            logit_scale: `()` the (exponentiated) logit scale.
            text_block_size, visual_block_size: tile sizes; by default up to 512 visuals per tile and, for each
                alignment, as many texts as keep its tile similarity tensor (texts x visuals x text units x
                visual units) within `max_block_elements` entries.
            max_block_elements: the bound of the default text tile size; None: one block.

        Returns:
            `UniTriMSimilarityOutput` with `logits` and one (num_texts, num_visuals) score matrix per alignment.
        """
        if (text_block_size is not None and text_block_size < 1) or (
            visual_block_size is not None and visual_block_size < 1
        ):
            raise ValueError("text_block_size and visual_block_size must be >= 1.")
        if max_block_elements is None:
            scores = self._scores_in_one_block(text, visual)
            return UniTriMSimilarityOutput(logits=mean_logits(scores, logit_scale), alignment_scores=scores)
        scores = self._scores_in_tiles(text, visual, text_block_size, visual_block_size, max_block_elements)
        num_texts, num_visuals = text.batch_size, visual.batch_size
        logits = text.sentence_embeds.new_empty(num_texts, num_visuals)
        rows_per_chunk = max(1, max_block_elements // max(num_visuals * len(scores), 1))
        for start in range(0, num_texts, rows_per_chunk):  # the mean in chunks: no (alignments, N, N) copy
            rows = slice(start, start + rows_per_chunk)
            logits[rows] = mean_logits({name: score[rows] for name, score in scores.items()}, logit_scale)
        return UniTriMSimilarityOutput(logits=logits, alignment_scores=scores)

    def _scores_in_one_block(self, text: UniTriMTextFeatures, visual: UniTriMVisualFeatures) -> dict[str, torch.Tensor]:
        text_units, visual_units = {}, {}  # each granularity normalized once, shared by the alignments using it
        scores = {}
        for alignment in self.alignments_for(visual):
            if alignment.text_granularity not in text_units:
                text_units[alignment.text_granularity] = alignment.text_units(text)
            if alignment.visual_granularity not in visual_units:
                visual_units[alignment.visual_granularity] = alignment.visual_units(visual)
            scores[alignment.name] = alignment.score_units(
                text_units[alignment.text_granularity], visual_units[alignment.visual_granularity],
                self.aggregation_temperature,
            )
        return scores

    def _scores_in_tiles(
        self,
        text: UniTriMTextFeatures,
        visual: UniTriMVisualFeatures,
        text_block_size: int | None,
        visual_block_size: int | None,
        max_block_elements: int,
    ) -> dict[str, torch.Tensor]:
        num_texts, num_visuals = text.batch_size, visual.batch_size
        visual_block = visual_block_size or min(max(num_visuals, 1), DEFAULT_VISUAL_BLOCK_SIZE)
        score_tile = self._tile_function(text.sentence_embeds.device, num_texts * num_visuals)
        scores = {}
        prepared: dict[tuple[str, str], tuple[Units, torch.Tensor]] = {}  # each granularity normalized once
        for alignment in self.alignments_for(visual):
            if ("text", alignment.text_granularity) not in prepared:
                prepared["text", alignment.text_granularity] = _sorted_by_length(alignment.text_units(text))
            if ("visual", alignment.visual_granularity) not in prepared:
                prepared["visual", alignment.visual_granularity] = _sorted_by_length(alignment.visual_units(visual))
            text_units, text_order = prepared["text", alignment.text_granularity]
            visual_units, visual_order = prepared["visual", alignment.visual_granularity]
            text_block = text_block_size or max(
                1, max_block_elements // (visual_block * text_units.length * visual_units.length)
            )
            score = text_units.embeds.new_empty(num_texts, num_visuals)
            for text_start in range(0, num_texts, text_block):
                text_rows = text_order[text_start : text_start + text_block]
                text_tile = text_units.take(slice(text_start, text_start + text_block))
                for visual_start in range(0, num_visuals, visual_block):
                    visual_rows = visual_order[visual_start : visual_start + visual_block]
                    tile = score_tile(
                        alignment, text_tile, visual_units.take(slice(visual_start, visual_start + visual_block)),
                        self.aggregation_temperature,
                    )
                    score.index_put_((text_rows[:, None], visual_rows[None, :]), tile)
            scores[alignment.name] = score
        return scores


def alignment_logits(scores: dict[str, torch.Tensor], logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each alignment's contribution to the logits: `logit_scale * score`, the score itself for the alignments of
    `UNSCALED_ALIGNMENTS` (UCoFiA's patch-word level). UCoFiA's SK-norm normalizes these one by one."""
    return {name: score if name in UNSCALED_ALIGNMENTS else logit_scale * score for name, score in scores.items()}


def mean_logits(scores: dict[str, torch.Tensor], logit_scale: torch.Tensor) -> torch.Tensor:
    """`logit_scale * mean(scores)` of the alignments' (num_texts, num_visuals) score matrices (the mean of
    `alignment_logits` when an unscaled alignment is enabled)."""
    if not any(name in UNSCALED_ALIGNMENTS for name in scores):
        return logit_scale * torch.stack(list(scores.values())).mean(dim=0)
    return torch.stack(list(alignment_logits(scores, logit_scale).values())).mean(dim=0)
