"""EERCF's text-gated interaction block (TIB): five sentence-to-visual scores at three granularities, two of them
computed on visual features that the text itself re-pools.

For a sentence s and a video with CLIP frame features g_f, temporally encoded frames e_f and patch features p_fp
(all L2-normalized, every frame slot included, padded ones too, as EERCF's code does):

* `sentence_video`: s·W·v, v the normalized masked mean of the e_f, W a learned (D, D) matrix (identity at start).
* `sentence_frame_weak`: y_f = s·g_f, `Σ_f y_f · (softmax(y / 0.01) M)_f`, M a learned (T, T) matrix.
* `sentence_patch_weak`: y_fp = s·p_fp over all F·P patches, `Σ y · softmax(y / 0.01)`.
* `sentence_frame_strong` (text-gated frames): a_f = softmax_f(s·g_f / 0.1), v' = n(Σ_f a_f e_f), score s·v'.
* `sentence_patch_strong` (text-gated patches): a = softmax(y / 0.01) over the patches, v' = n(Σ a p), score s·v'.

The strong scores depend on the text twice (the gate and the product). EERCF computes them two ways:
`paired=True` (its training): each video's gate comes from its *paired* caption (row b of the batch), detached, so
every video has one re-pooled feature that all texts score; `paired=False` (its evaluation): a gate per (text,
video) pair, (num_texts, num_videos, D) re-pooled features, the costly part of its fine stage.

Every score is on the cosine scale; the caller multiplies by the logit scale. Imports only torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .pooling import l2_normalize, masked_mean

WEAK_TEMPERATURE = 0.01  # the softmax over frames and over patches of the weak scores
FRAME_GATE_TEMPERATURE = 0.1
PATCH_GATE_TEMPERATURE = 0.01
TIB_SCORES = (
    "sentence_video", "sentence_frame_weak", "sentence_patch_weak", "sentence_frame_strong", "sentence_patch_strong"
)


def text_gated_pooling(gates: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
    """
    Args:
        gates (`(..., num_videos, U)`): weights over each video's units (they sum to 1 over U).
        units (`(num_videos, U, D)`): normalized units (frames or patches).

    Returns:
        `(..., num_videos, D)` the normalized gated sums.
    """
    return l2_normalize(torch.einsum("...vu,vud->...vd", gates, units))


def paired_gates(similarity: torch.Tensor, temperature: float) -> torch.Tensor:
    """(num_videos, num_videos, U) sentence-unit similarities of a square batch -> (num_videos, U) detached softmax
    gates of each video under its paired sentence (the diagonal, text b with video b)."""
    return torch.diagonal(similarity, dim1=0, dim2=1).transpose(0, 1).detach().div(temperature).softmax(dim=-1)


@dataclass
class GatedVisualUnits:
    """
    A video batch's normalized units, prepared once for any number of texts (`TextGatedInteraction.prepare`).

    Args:
        video (`(num_videos, D)`): the video embeddings, the normalized masked mean of the normalized encoded frames.
        frames (`(num_videos, T, D)`): normalized CLIP frames (the weak score's and the gates' frames).
        encoded (`(num_videos, T, D)`): normalized encoded frames (what the frame gates pool).
        patches (`(num_videos, T·P, D)`): normalized patches.
    """

    video: torch.Tensor
    frames: torch.Tensor
    encoded: torch.Tensor
    patches: torch.Tensor

    def take(self, rows: slice | torch.Tensor) -> "GatedVisualUnits":
        return GatedVisualUnits(self.video[rows], self.frames[rows], self.encoded[rows], self.patches[rows])


class TextGatedInteraction(nn.Module):
    """
    EERCF's scores and its two learned matrices.

    Args:
        embed_dim: D.
        max_frames: T, the frame slots of `frame_weight` (videos are padded to it).
    """

    def __init__(self, embed_dim: int, max_frames: int) -> None:
        super().__init__()
        self.global_weight = nn.Parameter(torch.eye(embed_dim))  # W of `sentence_video`
        self.frame_weight = nn.Parameter(torch.eye(max_frames))  # M of `sentence_frame_weak`

    @staticmethod
    def prepare(
        clip_frame_embeds: torch.Tensor, encoded_frame_embeds: torch.Tensor, video_mask: torch.Tensor,
        patch_embeds: torch.Tensor,
    ) -> GatedVisualUnits:
        """
        Args:
            clip_frame_embeds (`(num_videos, T, D)`): CLIP's projected frame features, every slot.
            encoded_frame_embeds (`(num_videos, T, D)`): the temporal encoder's output, every slot.
            video_mask (`(num_videos, T)` bool): true for real frames (read by the video mean only).
            patch_embeds (`(num_videos, T, P, D)`): projected patch features ([CLS] excluded), every slot.
        """
        encoded = l2_normalize(encoded_frame_embeds)
        return GatedVisualUnits(
            video=l2_normalize(masked_mean(encoded, video_mask, dim=1)),
            frames=l2_normalize(clip_frame_embeds),
            encoded=encoded,
            patches=l2_normalize(patch_embeds).flatten(1, 2),
        )

    def forward(
        self,
        sentence_embeds: torch.Tensor,
        clip_frame_embeds: torch.Tensor,
        encoded_frame_embeds: torch.Tensor,
        video_mask: torch.Tensor,
        patch_embeds: torch.Tensor,
        paired: bool,
        gated_patches: bool = False,
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """
        `scores` of the sentences against the videos' units (`prepare`, whose arguments these are).

        Args:
            sentence_embeds (`(num_texts, D)`): sentence features (normalized here).
        """
        units = self.prepare(clip_frame_embeds, encoded_frame_embeds, video_mask, patch_embeds)
        return self.scores(sentence_embeds, units, paired, gated_patches)

    def weak_scores(
        self, sentence: torch.Tensor, units: GatedVisualUnits
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """
        Args:
            sentence (`(num_texts, D)`): normalized sentences.
            units: the videos' prepared units.

        Returns:
            {`sentence_video`, `sentence_frame_weak`, `sentence_patch_weak`: `(num_texts, num_videos)`}, and the
            sentence-frame `(num_texts, num_videos, T)` and sentence-patch `(num_texts, num_videos, T·P)` cosines.
        """
        frame_similarity = torch.einsum("td,vfd->tvf", sentence, units.frames)
        patch_similarity = torch.einsum("td,vpd->tvp", sentence, units.patches)
        frame_pooling = torch.softmax(frame_similarity / WEAK_TEMPERATURE, dim=-1) @ self.frame_weight
        patch_pooling = torch.softmax(patch_similarity / WEAK_TEMPERATURE, dim=-1)
        scores = {
            "sentence_video": sentence @ self.global_weight @ units.video.T,
            "sentence_frame_weak": (frame_similarity * frame_pooling).sum(dim=-1),
            "sentence_patch_weak": (patch_similarity * patch_pooling).sum(dim=-1),
        }
        return scores, frame_similarity, patch_similarity

    def candidate_scores(
        self, sentence_embeds: torch.Tensor, units: GatedVisualUnits, candidates: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """
        The evaluation scores of each text against its own candidate videos only (the fine stage of the two-stage
        retrieval): the weak scores come from one product with every video (cheap per pair), the per-pair text
        gates (a D-wide pooled feature per pair) only for the candidates.

        Args:
            sentence_embeds (`(num_texts, D)`): sentence features (normalized here).
            units: the prepared units of all videos.
            candidates (`(num_texts, k)`): each text's candidate video indices.

        Returns:
            {`sentence_video`, `sentence_frame_weak`, `sentence_patch_weak`, `sentence_frame_strong`:
            `(num_texts, k)`}.
        """
        sentence = l2_normalize(sentence_embeds)
        weak, frame_similarity, _ = self.weak_scores(sentence, units)
        scores = {name: score.gather(1, candidates) for name, score in weak.items()}
        candidate_similarity = frame_similarity[torch.arange(len(candidates))[:, None], candidates]
        gates = torch.softmax(candidate_similarity / FRAME_GATE_TEMPERATURE, dim=-1)
        pooled = l2_normalize(torch.einsum("tkf,tkfd->tkd", gates, units.encoded[candidates]))
        scores["sentence_frame_strong"] = torch.einsum("td,tkd->tk", sentence, pooled)
        return scores

    def scores(
        self, sentence_embeds: torch.Tensor, units: GatedVisualUnits, paired: bool, gated_patches: bool = False
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """
        Args:
            sentence_embeds (`(num_texts, D)`): sentence features (normalized here).
            units: the videos' prepared units.
            paired: EERCF's training form (square batch, the gates of each video's paired sentence, detached);
                False: a gate per (text, video) pair (its evaluation).
            gated_patches: compute `sentence_patch_strong` in the per-pair form (EERCF evaluates it only when its
                weight is nonzero, and reports `sentence_frame_strong` in its place otherwise); always computed
                when `paired`.

        Returns:
            ({score name: `(num_texts, num_videos)`}, {`video`, `frame`, `patch`: `(num_videos, D)` the video
            embedding and the paired text-gated features, for the Pearson constraint; only the first when not
            `paired`}).
        """
        sentence = l2_normalize(sentence_embeds)
        scores, frame_similarity, patch_similarity = self.weak_scores(sentence, units)
        visual = {"video": units.video}
        if paired:
            if sentence.shape[0] != units.video.shape[0]:
                raise ValueError(
                    f"The paired (training) text gates need as many texts as videos, got {sentence.shape[0]} and "
                    f"{units.video.shape[0]}."
                )
            visual["frame"] = text_gated_pooling(paired_gates(frame_similarity, FRAME_GATE_TEMPERATURE), units.encoded)
            visual["patch"] = text_gated_pooling(paired_gates(patch_similarity, PATCH_GATE_TEMPERATURE), units.patches)
            scores["sentence_frame_strong"] = sentence @ visual["frame"].T
            scores["sentence_patch_strong"] = sentence @ visual["patch"].T
            return scores, visual
        scores["sentence_frame_strong"] = per_pair_gated_scores(
            sentence, frame_similarity, units.encoded, FRAME_GATE_TEMPERATURE
        )
        if gated_patches:
            scores["sentence_patch_strong"] = per_pair_gated_scores(
                sentence, patch_similarity, units.patches, PATCH_GATE_TEMPERATURE
            )
        else:
            scores["sentence_patch_strong"] = scores["sentence_frame_strong"]
        return scores, visual


def per_pair_gated_scores(
    sentence: torch.Tensor, similarity: torch.Tensor, units: torch.Tensor, temperature: float
) -> torch.Tensor:
    """
    Args:
        sentence (`(num_texts, D)`): normalized sentences.
        similarity (`(num_texts, num_videos, U)`): sentence-unit cosines (the gates' logits).
        units (`(num_videos, U, D)`): the normalized units the gates pool.
        temperature: of the gates' softmax.

    Returns:
        `(num_texts, num_videos)`: s_t · n(Σ_u softmax_u(similarity / temperature) units_u), per pair.
    """
    pooled = text_gated_pooling(torch.softmax(similarity / temperature, dim=-1), units)
    return torch.einsum("td,tvd->tv", sentence, pooled)
