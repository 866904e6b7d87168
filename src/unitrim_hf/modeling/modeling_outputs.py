"""Output dataclasses of UniTriMModel, with documented shapes (B: batch, L: text tokens, M: triplets,
T: frames, P: patches per frame, K: selected patches per frame, D: projection_dim, H: a tower's hidden size)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from transformers.utils import ModelOutput

# What a tower returns besides the retrieval features: kept by the call that computed them, not by row selections,
# device moves or concatenations (a gallery's patch states would otherwise be kept for every video).
TOWER_OUTPUT_FIELDS = ("last_hidden_state", "hidden_states", "attentions")


class _FeatureBatch:
    """Row selection and device moves shared by the feature outputs (tensor fields have batch first)."""

    def map_tensors(self, function):
        """A copy with `function` applied to every tensor field of the retrieval features; the tower outputs
        (`last_hidden_state`, `hidden_states`, `attentions`) are left out of the copy."""
        values = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in TOWER_OUTPUT_FIELDS:
                continue
            values[field.name] = function(value) if isinstance(value, torch.Tensor) else value
        return type(self)(**values)

    def retrieval_features(self):
        """A copy with the retrieval features only (what `similarity` reads), without the tower outputs."""
        return self.map_tensors(lambda tensor: tensor)

    def tensor_field_names(self) -> list[str]:
        """Names of the retrieval feature fields that hold a tensor (the others are None or flags)."""
        return [
            field.name for field in fields(self)
            if field.name not in TOWER_OUTPUT_FIELDS and isinstance(getattr(self, field.name), torch.Tensor)
        ]

    def take(self, rows: slice | torch.Tensor):
        """The retrieval features of the rows selected by `rows` (a slice or an index tensor)."""
        return self.map_tensors(lambda tensor: tensor[rows])

    def to(self, *args, **kwargs):
        """The retrieval features moved (and/or floating-point tensors cast) like `torch.Tensor.to`; masks and
        indices keep their dtype."""
        def move(tensor: torch.Tensor) -> torch.Tensor:
            if tensor.is_floating_point():
                return tensor.to(*args, **kwargs)
            device_only = [a for a in args if not isinstance(a, torch.dtype)]
            return tensor.to(*device_only, **{k: v for k, v in kwargs.items() if k != "dtype"})
        return self.map_tensors(move)


@dataclass
class UniTriMTextFeatures(_FeatureBatch, ModelOutput):
    """
    Text features of a batch of captions, independent of any video: the text tower's outputs as transformers
    returns them (`last_hidden_state`, `pooler_output`, and on request `hidden_states`, `attentions`) and the
    multi-granular features the alignments read.

    Args:
        last_hidden_state (`(B, L, H)`): the text tower's final token states (after its final layer norm).
        pooler_output (`(B, D)`): the sentence feature, the projected EOT state, as CLIP's `get_text_features`
            (not normalized); also readable as `sentence_embeds`.
        hidden_states (`tuple[(B, L, H)]`, optional): the text tower's embeddings and every layer's output, with
            `output_hidden_states=True`.
        attentions (`tuple[(B, heads, L, L)]`, optional): the text tower's attention weights, with
            `output_attentions=True` (eager attention).
        word_mask (`(B, L)` bool): true for the non-padding tokens after SOT.
        word_embeds (`(B, L, D)`, optional): projected token states; None when no alignment uses words.
        triplet_embeds (`(B, M, D)`, optional): projected EOT states of the triplet phrases; a caption with no
            triplet has its sentence feature in slot 0. None when triplets are off.
        triplet_mask (`(B, M)` bool, optional): true for real triplets (and the fallback slot).
        combined_embeds (`(B, D)`): `t = s + mean(r) + mean(w)` over the granularities the model encodes (triplets
            and words only where enabled); input of the disentangler, and the text->image feature without it.
        spatial_embeds (`(B, D)`, optional): `t_sp = E_sp(t)`, the text->image feature with the disentangler.
        temporal_embeds (`(B, D)`, optional): `t_tp`.
        reconstructed_embeds (`(B, D)`, optional): the decoder's reconstruction of `t`.
    """

    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    word_mask: torch.Tensor | None = None
    word_embeds: torch.Tensor | None = None
    triplet_embeds: torch.Tensor | None = None
    triplet_mask: torch.Tensor | None = None
    combined_embeds: torch.Tensor | None = None
    spatial_embeds: torch.Tensor | None = None
    temporal_embeds: torch.Tensor | None = None
    reconstructed_embeds: torch.Tensor | None = None

    @property
    def sentence_embeds(self) -> torch.Tensor | None:
        """(B, D) the sentence feature: `pooler_output`."""
        return self.pooler_output

    @property
    def batch_size(self) -> int:
        return self.pooler_output.shape[0]

    @property
    def image_text_embeds(self) -> torch.Tensor:
        """(B, D) the one text feature matched against still images: `t_sp` with the disentangler, else `t`."""
        return self.spatial_embeds if self.spatial_embeds is not None else self.combined_embeds


@dataclass
class UniTriMVisualFeatures(_FeatureBatch, ModelOutput):
    """
    Visual features of a batch of videos (or images, i.e. one-frame videos), independent of any text: the vision
    tower's outputs as transformers returns them and the multi-granular features the alignments read.

    Args:
        last_hidden_state (`(B, T, 1 + P, H)` for videos, `(B, 1 + P, H)` for images): the vision tower's final
            token states of every frame ([CLS] first); zero for padded frames, which the tower never sees.
        pooler_output (`(B, D)`): the one embedding of each video (or image) the sentence is matched against:
            the L2-normalized masked mean of the L2-normalized encoded frames (for an image, its L2-normalized
            projected [CLS] feature); also readable as `video_embeds`.
        hidden_states (`tuple`, optional): the vision tower's embeddings and every layer's output, shaped as
            `last_hidden_state`, with `output_hidden_states=True`.
        attentions (`tuple`, optional): the vision tower's attention weights (`(B, T, heads, 1 + P, 1 + P)` for
            videos), with `output_attentions=True` (eager attention).
        frame_embeds (`(B, T, D)`): temporally encoded frame features (not normalized); at initialization, and
            always without temporal layers, the projected CLS features, i.e. CLIP's image features.
        video_mask (`(B, T)` bool): true for real frames.
        patch_embeds (`(B, T, K, D)`, optional): projected selected patch tokens; None without patch selection.
            With `text_gated_interaction` (EERCF), every patch of every frame slot: K = P, no `patch_indices`.
        patch_indices (`(B, T, K)`, optional): indices of the selected patches in the frame's patch grid.
        is_image (`bool`, optional): true for features of still images (T = 1, no temporal encoder, no patches); they are scored by
            one cosine with the text's `image_text_embeds`.
        token_embeds (`(B, T, 1 + K, D)`, optional): UCoFiA's kept tokens of every frame ([CLS], then the K
            selected patch tokens, projected, not normalized); None without `token_selection_output="token_embeds"`.
        encoded_frame_embeds (`(B, T, D)`, optional): the temporal encoder's output at every frame slot (not
            normalized), which EERCF's text gates re-pool; only with `text_gated_interaction`.
    """

    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    frame_embeds: torch.Tensor | None = None
    video_mask: torch.Tensor | None = None
    patch_embeds: torch.Tensor | None = None
    patch_indices: torch.Tensor | None = None
    is_image: bool | None = None
    token_embeds: torch.Tensor | None = None
    encoded_frame_embeds: torch.Tensor | None = None

    @property
    def video_embeds(self) -> torch.Tensor | None:
        """(B, D) the video (or image) embedding: `pooler_output`."""
        return self.pooler_output

    @property
    def batch_size(self) -> int:
        return self.pooler_output.shape[0]


@dataclass
class UniTriMSimilarityOutput(ModelOutput):
    """
    Args:
        logits (`(num_texts, num_visuals)`): `logit_scale * mean(enabled alignment scores)` (UCoFiA's
            `word_token_isa` enters the mean without the logit scale: `mgsa_scorer.alignment_logits`).
        alignment_scores (`dict[str, (num_texts, num_visuals)]`): each enabled alignment's score (cosine scale);
            for images the single `text_image` score.
    """

    logits: torch.Tensor | None = None
    alignment_scores: dict[str, torch.Tensor] | None = None


@dataclass
class UniTriMOutput(ModelOutput):
    """
    Args:
        loss (`()`, optional): total loss, when `return_loss=True`.
        logits_per_text_video (`(B_text, B_video)`, optional): text-video logits of this batch (local texts against
            the videos gathered from all processes when training on several), when videos are given.
        logits_per_text_image (`(B_text, B_image)`, optional): text-image logits, when `pixel_values` is given.
        losses (`dict[str, ()]`, optional): the loss's components: `text_video`, `text_image`, `reconstruction`,
            `orthogonality` (each unweighted), present when computed.
        alignment_scores (`dict[str, (B_text, B_video)]`, optional): per-alignment text-video scores.
        text_features ([`UniTriMTextFeatures`]): the encoded texts, with the text tower's outputs.
        video_features ([`UniTriMVisualFeatures`], optional): the encoded videos, with the vision tower's outputs.
        image_features ([`UniTriMVisualFeatures`], optional): the encoded images, with the vision tower's outputs.

    As CLIP's output, it starts with the loss and the logits: `output[0]` (and `to_tuple()[0]`) is the loss when
    computed, else the first logits.
    """

    loss: torch.Tensor | None = None
    logits_per_text_video: torch.Tensor | None = None
    logits_per_text_image: torch.Tensor | None = None
    losses: dict[str, torch.Tensor] | None = None
    alignment_scores: dict[str, torch.Tensor] | None = None
    text_features: UniTriMTextFeatures | None = None
    video_features: UniTriMVisualFeatures | None = None
    image_features: UniTriMVisualFeatures | None = None
