"""`evaluate_retrieval`: the field's retrieval protocol on one split, from one encoding pass.

Captions x videos scores come from `UniTriMModel.similarity`; text->video and video->text use
`text_to_video_metrics` / `video_to_text_metrics` with the split's `caption_to_video`
(several captions per video, as MSVD, are handled there). Text->image uses one keyframe per video.
Test-time post-processing (DSL, QB-Norm, SK-norm) is reported separately, in `postprocessed_metrics`, never mixed
into `metrics`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch

from ..data.base import video_table
from ..modeling.mgsa_scorer import alignment_logits
from .encoding import encode_captions, encode_videos_and_keyframes
from .metrics import text_to_video_metrics, video_to_text_metrics
from .postprocessing import (
    dual_softmax_text_to_video,
    dual_softmax_video_to_text,
    querybank_activated_queries,
    querybank_normalize,
    sinkhorn_normalize,
)
from .postprocessing_options import DualSoftmax, PostProcessingMethod, QueryBankNorm, parse_postprocessing, postprocessing_settings
from .query_bank import bank_captions, log_shared_caption_texts, refuse_leaking_query_bank
from .report import render_markdown, save_report

logger = logging.getLogger(__name__)

ALL_ALIGNMENTS_KEY = "all"
_SKIPPED_SHOWN_IN_LOG = 10


@dataclass
class RetrievalEvaluation:
    """Results of `evaluate_retrieval`.

    Attributes:
        metrics: `{"text_to_video", "video_to_text"[, "text_to_image", "image_to_text"]}` -> `{R@1, R@5,
            R@10, MdR, MnR, Rsum, num_queries}` (recalls in percent, Rsum = R@1 + R@5 + R@10).
        dsl_metrics: the same keys after DSL re-ranking (transductive), or None when not asked (also in
            `postprocessed_metrics["dsl"]`).
        alignment_metrics: `{alignment name or "all": {"text_to_video": {...}, "video_to_text": {...}}}`,
            each enabled alignment scored alone, and their mean (= the model's ranking), or None.
        num_captions: caption queries evaluated (after leaving out the captions of skipped videos).
        num_videos: videos evaluated.
        skipped_videos: ids of the videos that could not be decoded (left out with their captions).
        skipped_reasons: `{video_id: reason}` for them.
        settings: how the run was made (frames, max_length, source of frames, ...).
        timings: seconds spent encoding captions, videos and scoring.
        postprocessed_metrics: `{method ("dsl", "qb_norm", "sk_norm"): {direction: {...}}}` for the post-processing
            asked for, or None. QB-Norm and SK-norm re-rank the text-query directions only (text->video,
            text->image): their bank holds captions.
    """

    metrics: dict[str, dict[str, float]]
    dsl_metrics: dict[str, dict[str, float]] | None
    alignment_metrics: dict[str, dict[str, dict[str, float]]] | None
    num_captions: int
    num_videos: int
    skipped_videos: list[str]
    skipped_reasons: dict[str, str] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    postprocessed_metrics: dict[str, dict[str, dict[str, float]]] | None = None

    def to_dict(self) -> dict:
        """A JSON-serializable dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RetrievalEvaluation":
        """Inverse of `to_dict` (e.g. from a saved `metrics.json`)."""
        return cls(**values)

    def to_markdown(self) -> str:
        """Markdown report: main table, post-processed tables beside it (when present), per-alignment table."""
        return render_markdown(self.to_dict())

    def save(self, output_dir: str | Path, stem: str = "metrics") -> None:
        """Write `<stem>.json` and `<stem>.md` (`metrics.json` and `metrics.md` by default) into `output_dir`
        (created)."""
        save_report(self.to_dict(), output_dir, stem)


def with_rsum(metrics: dict[str, float]) -> dict[str, float]:
    """`metrics` plus `Rsum` = R@1 + R@5 + R@10."""
    return {**metrics, "Rsum": metrics["R@1"] + metrics["R@5"] + metrics["R@10"]}


def bidirectional_metrics(sim: torch.Tensor, caption_to_video: torch.Tensor, forward: str, backward: str) -> dict[str, dict[str, float]]:
    """`{forward: text->visual metrics, backward: visual->text metrics}` of a (num_captions, num_visuals) matrix."""
    return {
        forward: with_rsum(text_to_video_metrics(sim, caption_to_video)),
        backward: with_rsum(video_to_text_metrics(sim, caption_to_video)),
    }


def leave_out_skipped_videos(
    num_videos: int, kept_positions: list[int], caption_to_video: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The captions of the kept videos and their targets among the kept videos, renumbered 0..n-1.

    Args:
        num_videos: videos of the split.
        kept_positions: positions (in the split's video order) of the videos that could be read.
        caption_to_video (`(num_captions,)`): each caption's video position.

    Returns:
        (kept_captions, targets): int64 positions of the captions whose video was kept, and their videos' new
        positions.
    """
    new_index = np.full(num_videos, -1, dtype=np.int64)
    new_index[np.asarray(kept_positions, dtype=np.int64)] = np.arange(len(kept_positions))
    kept_captions = np.flatnonzero(new_index[caption_to_video] >= 0)
    return kept_captions, new_index[caption_to_video[kept_captions]]


def split_captions(dataset: datasets.Dataset) -> tuple[list[str], np.ndarray]:
    """Caption queries of a split and the video position of each.

    Accepts one row per caption (column `caption`: MSR-VTT, MSVD, SyntheticTriM, DiDeMo paragraphs) or one
    row per video (column `captions`, builders' `one_row_per_video`).

    Returns:
        (captions, caption_to_video) with caption_to_video int64 (num_captions,) positions in the video order.
    """
    columns = dataset.column_names
    if "video_index" not in columns:
        raise ValueError(f"the dataset needs a 'video_index' column (a split of the unitrim_hf.data builders); has {columns}")
    video_indices = [int(index) for index in dataset["video_index"]]
    if "caption" in columns:
        return list(dataset["caption"]), np.asarray(video_indices, dtype=np.int64)
    if "captions" in columns:
        captions, targets = [], []
        for video_index, texts in zip(video_indices, dataset["captions"]):
            captions.extend(texts)
            targets.extend([video_index] * len(texts))
        return captions, np.asarray(targets, dtype=np.int64)
    raise ValueError(f"the dataset needs a 'caption' or 'captions' column; has {columns}")


def _log_skipped(skipped: dict[str, str], num_videos: int, num_dropped_captions: int) -> None:
    ids = list(skipped)
    logger.warning(
        "%d of %d videos could not be decoded and are left out of the evaluation with their %d captions: %s%s",
        len(ids), num_videos, num_dropped_captions,
        ", ".join(f"{video_id} ({skipped[video_id]})" for video_id in ids[:_SKIPPED_SHOWN_IN_LOG]),
        " ..." if len(ids) > _SKIPPED_SHOWN_IN_LOG else "",
    )


def evaluate_retrieval(
    model,
    processor,
    dataset: datasets.Dataset,
    *,
    frame_cache: datasets.Dataset | None = None,
    max_length: int | None = None,
    batch_size: int = 16,
    device=None,
    include_images: bool = True,
    dsl: bool = False,
    postprocessing=None,
    query_bank: datasets.Dataset | None = None,
    per_alignment: bool = True,
    block_size: int = 256,
    show_progress: bool = True,
    is_main_process: bool = True,
) -> RetrievalEvaluation:
    """Text<->video (and text<->image) retrieval metrics of `model` on one split.

    Args:
        model: a [`UniTriMModel`]; put in eval mode for the run, its training mode restored after.
        processor: its [`UniTriMProcessor`] (frame sampler, image size, tokenizer).
        dataset: a split of the `unitrim_hf.data` builders (`caption` or `captions`, `video_id`,
            `video_path`, `video_index`).
        frame_cache: frames cached by `unitrim_hf.data.prepare_frames` for this split (matched by
            `video_id`); without it each video is decoded with `processor.frame_sampler`.
        max_length: caption tokens (None: the processor's; pass 64 for DiDeMo paragraphs).
        batch_size: captions / videos per forward pass.
        device: where to run; the model is moved there. None: the model's device.
        include_images: also text->image / image->text on one keyframe per video.
        dsl: also report DSL re-ranked metrics (in `dsl_metrics` and `postprocessed_metrics`); the same as
            naming `dsl` in `postprocessing`.
        postprocessing: test-time post-processing reported beside the plain metrics, in `postprocessed_metrics`:
            a method name, a list of names or `{name: settings}` (see `parse_postprocessing`): `dsl`, `qb_norm`,
            `sk_norm`. None: none.
        query_bank: the training split whose captions form the query bank of `qb_norm` and `sk_norm` (encoded by
            `model`); refused when it shares a video with `dataset`.
        per_alignment: also score each enabled alignment alone and their mean, from the same similarity pass.
        block_size: texts and videos per block of `UniTriMModel.similarity`.
        show_progress: tqdm progress bars (only where `is_main_process`).
        is_main_process: False on the other processes of a distributed run (no progress bars).

    Returns:
        [`RetrievalEvaluation`]. Videos that fail to decode are left out with their captions and listed
        in `skipped_videos` (a warning gives the count); no score is ever NaN.
    """
    if batch_size < 1 or block_size < 1:
        raise ValueError(f"batch_size and block_size must be >= 1, got {batch_size} and {block_size}")
    captions, caption_to_video = split_captions(dataset)
    videos = video_table(dataset)
    if not captions:
        raise ValueError("the dataset has no caption")
    methods = parse_postprocessing(postprocessing)
    if dsl and not any(method.name == DualSoftmax.name for method in methods):
        methods = (DualSoftmax(), *methods)
    if methods and getattr(model.config, "rerank_top_k", 0):
        raise ValueError(
            f"Post-processing ({[method.name for method in methods]}) normalizes one score matrix, and EERCF's "
            "two-stage ranking (config.rerank_top_k) is not one: evaluate with rerank_top_k=0 (the fine score of "
            "every pair) for post-processed numbers."
        )
    bank = _query_bank_texts(methods, query_bank, videos)
    if device is not None:
        model.to(device)
    progress = show_progress and is_main_process
    was_training = model.training
    model.eval()
    timings: dict[str, float] = {}
    try:
        with torch.inference_mode():
            started = time.perf_counter()
            gallery = encode_videos_and_keyframes(
                model, processor, videos, frame_cache=frame_cache, batch_size=batch_size,
                include_images=include_images, show_progress=progress,
            )
            timings["encode_videos_s"] = time.perf_counter() - started
            if not gallery.kept_positions:
                raise ValueError(
                    f"none of the {len(videos)} videos could be read: {dict(list(gallery.skipped.items())[:5])}"
                )

            kept_captions, targets = leave_out_skipped_videos(len(videos), gallery.kept_positions, caption_to_video)
            targets = torch.from_numpy(targets)
            if gallery.skipped:
                _log_skipped(gallery.skipped, len(videos), len(captions) - len(kept_captions))

            # Encode each distinct caption once; queries index into them.
            unique_texts: dict[str, int] = {}
            query_to_unique = [unique_texts.setdefault(captions[row], len(unique_texts)) for row in kept_captions]
            started = time.perf_counter()
            text_features = encode_captions(
                model, processor, list(unique_texts), max_length=max_length, batch_size=batch_size, show_progress=progress,
            )
            timings["encode_captions_s"] = time.perf_counter() - started
            bank_features = None
            if bank:
                started = time.perf_counter()
                bank_features = encode_captions(  # the query bank of QB-Norm / SK-norm
                    model, processor, bank, max_length=max_length, batch_size=batch_size, show_progress=progress,
                )
                timings["encode_query_bank_s"] = time.perf_counter() - started
                log_shared_caption_texts(bank, list(unique_texts))

            started = time.perf_counter()
            query_rows = torch.as_tensor(query_to_unique, dtype=torch.long)
            if getattr(model.config, "rerank_top_k", 0):  # EERCF's two-stage retrieval, its evaluation
                video_scores = model.two_stage_similarity(text_features, gallery.video_features)
            else:
                video_scores = model.similarity(text_features, gallery.video_features, block_size, block_size)
            video_logits = video_scores.logits.float().cpu()[query_rows]
            results = bidirectional_metrics(video_logits, targets, "text_to_video", "video_to_text")
            logit_scale = float(model.exp_logit_scale())

            def bank_logits_for(visual_features) -> tuple[torch.Tensor | None, dict[str, torch.Tensor] | None]:
                """The bank's logits against `visual_features`, and each level's for UCoFiA's per-level SK-norm."""
                if bank_features is None:
                    return None, None
                bank_scores = model.similarity(bank_features, visual_features, block_size, block_size)
                return bank_scores.logits.float().cpu(), _level_logits(model, bank_scores, None)

            postprocessed: dict[str, dict[str, dict[str, float]]] = {method.name: {} for method in methods}
            details: dict[str, dict[str, int]] = {}
            _add_postprocessed(postprocessed, details, methods, video_logits, bank_logits_for(gallery.video_features),
                               logit_scale, query_rows, targets, "text_to_video", "video_to_text",
                               _level_logits(model, video_scores, query_rows))
            alignment_results = None
            if per_alignment:
                alignment_results = _alignment_metrics(video_scores.alignment_scores, query_rows, targets)
            if include_images:
                image_scores = model.similarity(text_features, gallery.image_features, block_size, block_size)
                image_logits = image_scores.logits.float().cpu()[query_rows]
                results.update(bidirectional_metrics(image_logits, targets, "text_to_image", "image_to_text"))
                _add_postprocessed(postprocessed, details, methods, image_logits, bank_logits_for(gallery.image_features),
                                   logit_scale, query_rows, targets, "text_to_image", "image_to_text",
                                   _level_logits(model, image_scores, query_rows))
            timings["scoring_s"] = time.perf_counter() - started
    finally:
        model.train(was_training)

    settings = {
        "frames_from": "frame_cache" if frame_cache is not None else "decoded",
        "num_frames": int(processor.num_frames),
        "image_size": int(processor.image_transform.size),
        "max_length": int(max_length or processor.max_length),
        "alignments": list(model.config.alignments),
        "keyframe": ("frame cache keyframe" if frame_cache is not None and "keyframe" in frame_cache.column_names
                     else "middle sampled frame") if include_images else None,
        "num_unique_captions": len(unique_texts),
    }
    if methods:
        settings["postprocessing"] = postprocessing_settings(methods)
        settings["postprocessing_details"] = details
    if bank:
        settings["query_bank"] = {"num_captions": len(bank), "split": str(getattr(query_bank, "split", None))}
    return RetrievalEvaluation(
        metrics=results,
        dsl_metrics=postprocessed.get(DualSoftmax.name),
        alignment_metrics=alignment_results,
        num_captions=int(len(kept_captions)),
        num_videos=len(gallery.kept_positions),
        skipped_videos=list(gallery.skipped),
        skipped_reasons=dict(gallery.skipped),
        settings=settings,
        timings=timings,
        postprocessed_metrics=postprocessed or None,
    )


def _query_bank_texts(
    methods: tuple[PostProcessingMethod, ...], query_bank: datasets.Dataset | None, evaluated_videos: list[dict]
) -> list[str]:
    """The bank captions the methods need (the largest bank asked for; smaller ones are its first captions), after
    the leakage check; [] when no method needs a bank."""
    needing = [method for method in methods if method.needs_query_bank]
    if not needing:
        return []
    names = ", ".join(method.name for method in needing)
    if query_bank is None:
        raise ValueError(
            f"{names} normalize by a bank of training captions: pass query_bank=<the training split> "
            "(unitrim-eval: --query_bank_split train)"
        )
    refuse_leaking_query_bank(video_table(query_bank), evaluated_videos)
    captions, _ = split_captions(query_bank)
    sizes = [method.bank_size for method in needing]
    return bank_captions(captions, None if None in sizes else max(sizes))


def _level_logits(model, scores, query_rows: torch.Tensor | None) -> dict[str, torch.Tensor] | None:
    """Each alignment level's logits (rows `query_rows`) for a model whose SK-norm runs level by level (UCoFiA's
    alignments, as its evaluation normalizes them); None for the others, whose averaged logits are normalized."""
    if not getattr(model.config, "uses_isa", False):
        return None
    levels = alignment_logits(scores.alignment_scores, model.exp_logit_scale())
    return {name: (level.float().cpu() if query_rows is None else level.float().cpu()[query_rows])
            for name, level in levels.items()}


def _add_postprocessed(
    postprocessed: dict, details: dict, methods: tuple[PostProcessingMethod, ...], logits: torch.Tensor,
    bank: tuple[torch.Tensor | None, dict[str, torch.Tensor] | None], logit_scale: float, query_rows: torch.Tensor,
    targets: torch.Tensor, forward: str, backward: str, level_logits: dict[str, torch.Tensor] | None = None,
) -> None:
    """Each method's metrics of one (caption queries x visuals) logits matrix, into `postprocessed[method][direction]`.

    DSL ranks both directions; QB-Norm (on cosine scores, logits / logit scale, as its beta = 20 assumes) and SK-norm
    (on logits, as UCoFiA) only the text-query one. With `level_logits` (and the bank's in `bank`), SK-norm biases
    each level by its own bank scores and averages the levels, as UCoFiA's evaluation.
    """
    bank_logits, bank_level_logits = bank
    for method in methods:
        results = postprocessed[method.name]
        if isinstance(method, DualSoftmax):
            forward_scores = dual_softmax_text_to_video(logits, method.temperature, targets, query_rows)
            results[forward] = with_rsum(text_to_video_metrics(forward_scores, targets))
            backward_scores = dual_softmax_video_to_text(logits, method.temperature)
            results[backward] = with_rsum(video_to_text_metrics(backward_scores, targets))
            continue
        bank = bank_logits[: method.bank_size] if method.bank_size else bank_logits
        if isinstance(method, QueryBankNorm):
            cosine, bank_cosine = logits.double() / logit_scale, bank.double() / logit_scale
            scores = querybank_normalize(cosine, bank_cosine, method.beta, method.k, method.dynamic, refuse_test_queries=False)
            normalized = querybank_activated_queries(cosine, bank_cosine, method.k) if method.dynamic else None
            details.setdefault(method.name, {})[f"{forward}_normalized_queries"] = (
                int(normalized.sum()) if normalized is not None else int(logits.shape[0])
            )
        elif level_logits is not None:
            size = method.bank_size or None
            scores = torch.stack([
                sinkhorn_normalize(level, bank_level_logits[name][:size], method.iterations, method.temperature,
                                   refuse_test_queries=False)
                for name, level in level_logits.items()
            ]).mean(dim=0)
            details.setdefault(method.name, {})[f"{forward}_normalized_levels"] = len(level_logits)
        else:
            scores = sinkhorn_normalize(logits, bank, method.iterations, method.temperature, refuse_test_queries=False)
        results[forward] = with_rsum(text_to_video_metrics(scores, targets))


def _alignment_metrics(
    alignment_scores: dict[str, torch.Tensor], query_rows: torch.Tensor, targets: torch.Tensor
) -> dict[str, dict[str, dict[str, float]]]:
    """Each alignment's score matrix alone, and their mean (the model's logits up to the logit scale)."""
    per_query = {name: scores.float().cpu()[query_rows] for name, scores in alignment_scores.items()}
    results = {
        name: bidirectional_metrics(scores, targets, "text_to_video", "video_to_text") for name, scores in per_query.items()
    }
    mean_scores = torch.stack(list(per_query.values())).mean(dim=0)
    results[ALL_ALIGNMENTS_KEY] = bidirectional_metrics(mean_scores, targets, "text_to_video", "video_to_text")
    return results
