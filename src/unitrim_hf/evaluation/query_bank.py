"""The query bank of QB-Norm and SK-norm: distinct captions of the training split, never of the evaluated one."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

_SHOWN = 5


def refuse_leaking_query_bank(bank_videos: Sequence[dict], evaluated_videos: Sequence[dict]) -> None:
    """Raise when the bank split shares a video (by `video_id` or `video_path`) with the evaluated split: its captions
    would describe test videos, and normalizing by them leaks the answers.

    Args:
        bank_videos: the bank split's `video_table` rows (`video_id`, `video_path`).
        evaluated_videos: the evaluated split's.
    """
    for key in ("video_id", "video_path"):
        shared = {str(video[key]) for video in bank_videos} & {str(video[key]) for video in evaluated_videos}
        if shared:
            shown = sorted(shared)[:_SHOWN]
            raise ValueError(
                f"the query bank shares {len(shared)} videos ({key} {shown}{' ...' if len(shared) > _SHOWN else ''}) "
                "with the evaluated split: a bank of test captions leaks the answers. Pass the training split as "
                "query_bank (unitrim-eval: --query_bank_split train)"
            )


def bank_captions(captions: Sequence[str], size: int | None = None, seed: int = 0) -> list[str]:
    """The bank: the distinct `captions` (each text once), in a fixed random order so that a bank of `size` is the
    first `size` of it (a smaller bank is part of a larger one).

    Args:
        captions: the training split's captions (repeats allowed).
        size: how many to keep; None: all. More than there are: all, with a warning.
        seed: of the order.

    Returns:
        The bank's captions.
    """
    distinct = list(dict.fromkeys(caption for caption in captions if caption and caption.strip()))
    if not distinct:
        raise ValueError("the query bank is empty: its split has no caption (QB-Norm and SK-norm need training captions)")
    order = np.random.default_rng(seed).permutation(len(distinct))
    if size is not None and size > len(distinct):
        logger.warning("query bank size %d asked, the training split has %d distinct captions: using them all",
                       size, len(distinct))
    return [distinct[index] for index in order[: size or len(distinct)]]


def log_shared_caption_texts(bank: Sequence[str], queries: Sequence[str]) -> int:
    """Log how many distinct test caption texts also occur, word for word, in the bank (short generic captions do
    in any split); returns that count."""
    shared = set(bank) & set(queries)
    if shared:
        logger.info("%d of %d distinct test captions also occur in the query bank, as texts of other (training) "
                    "videos", len(shared), len(set(queries)))
    return len(shared)
