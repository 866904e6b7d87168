"""Output dataclasses of UniTriMModel, with documented shapes (B: batch, L: text tokens, M: triplets,
T: frames, K: selected patches per frame, D: projection_dim)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from transformers.utils import ModelOutput


class _FeatureBatch:
    """Row selection and device moves shared by the feature dataclasses (tensor fields have batch first)."""

    def map_tensors(self, function):
        """A copy with `function` applied to every tensor field."""
        values = {}
        for field in fields(self):
            value = getattr(self, field.name)
            values[field.name] = function(value) if isinstance(value, torch.Tensor) else value
        return type(self)(**values)

    def tensor_field_names(self) -> list[str]:
        """Names of the fields that hold a tensor (the others are None or flags)."""
        return [field.name for field in fields(self) if isinstance(getattr(self, field.name), torch.Tensor)]

    def take(self, rows: slice | torch.Tensor):
        """The features of the rows selected by `rows` (a slice or an index tensor)."""
        return self.map_tensors(lambda tensor: tensor[rows])

    def to(self, *args, **kwargs):
        """Move (and/or cast floating-point) tensors like `torch.Tensor.to`; masks and indices keep their dtype."""
        def move(tensor: torch.Tensor) -> torch.Tensor:
            if tensor.is_floating_point():
                return tensor.to(*args, **kwargs)
            device_only = [a for a in args if not isinstance(a, torch.dtype)]
            return tensor.to(*device_only, **{k: v for k, v in kwargs.items() if k != "dtype"})
        return self.map_tensors(move)


@dataclass
class UniTriMTextFeatures(_FeatureBatch):
    """
    Text features of a batch of captions, independent of any video.

    Args:
        sentence_embeds (`(B, D)`): projected EOT state, as CLIP's text features (not normalized).
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

    sentence_embeds: torch.Tensor | None = None
    word_mask: torch.Tensor | None = None
    word_embeds: torch.Tensor | None = None
    triplet_embeds: torch.Tensor | None = None
    triplet_mask: torch.Tensor | None = None
    combined_embeds: torch.Tensor | None = None
    spatial_embeds: torch.Tensor | None = None
    temporal_embeds: torch.Tensor | None = None
    reconstructed_embeds: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.sentence_embeds.shape[0]

    @property
    def image_text_embeds(self) -> torch.Tensor:
        """(B, D) the one text feature matched against still images: `t_sp` with the disentangler, else `t`."""
        return self.spatial_embeds if self.spatial_embeds is not None else self.combined_embeds


@dataclass
class UniTriMVisualFeatures(_FeatureBatch):
    """
    Visual features of a batch of videos (or images, i.e. one-frame videos), independent of any text.

    Args:
        video_embeds (`(B, D)`): L2-normalized masked mean of the L2-normalized encoded frames.
        frame_embeds (`(B, T, D)`): temporally encoded frame features (not normalized); at initialization, and
            always without temporal layers, the projected CLS features, i.e. CLIP's image features.
        video_mask (`(B, T)` bool): true for real frames.
        patch_embeds (`(B, T, K, D)`, optional): projected selected patch tokens; None without patch selection.
        patch_indices (`(B, T, K)`, optional): indices of the selected patches in the frame's patch grid.
        is_image (`bool`): features of still images (T = 1, no temporal encoder, no patches); they are scored by
            one cosine with the text's `image_text_embeds`.
    """

    video_embeds: torch.Tensor | None = None
    frame_embeds: torch.Tensor | None = None
    video_mask: torch.Tensor | None = None
    patch_embeds: torch.Tensor | None = None
    patch_indices: torch.Tensor | None = None
    is_image: bool = False

    @property
    def batch_size(self) -> int:
        return self.video_embeds.shape[0]


@dataclass
class UniTriMSimilarityOutput(ModelOutput):
    """
    Args:
        logits (`(num_texts, num_visuals)`): `logit_scale * mean(enabled alignment scores)`.
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
        losses (`dict[str, ()]`, optional): its components: `text_video`, `text_image`, `reconstruction`,
            `orthogonality` (each unweighted), present when computed.
        logits_per_text_video (`(B_text, B_video)`): text-video logits of this batch (local texts against the
            videos gathered from all processes when training on several).
        logits_per_text_image (`(B_text, B_image)`, optional): text-keyframe logits, when `pixel_values` is given.
        alignment_scores (`dict[str, (B_text, B_video)]`): per-alignment text-video scores.
        text_features, video_features, image_features: the encoded inputs.
    """

    loss: torch.Tensor | None = None
    losses: dict[str, torch.Tensor] | None = None
    logits_per_text_video: torch.Tensor | None = None
    logits_per_text_image: torch.Tensor | None = None
    alignment_scores: dict[str, torch.Tensor] | None = None
    text_features: UniTriMTextFeatures | None = None
    video_features: UniTriMVisualFeatures | None = None
    image_features: UniTriMVisualFeatures | None = None
