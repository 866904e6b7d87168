"""UniTriM: CLIP towers, triplet and word text features, top-K patches, a temporal encoder, MGSA scoring and a
text disentangler, as a transformers `PreTrainedModel`. Imports only torch and transformers (also Hub remote code)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from transformers import CLIPModel, CLIPTextModel, CLIPVisionModel, PreTrainedModel
from transformers import initialization as init

from .configuration_unitrim import ALIGNMENT_GRANULARITIES, UniTriMConfig
from .disentanglement import TextDisentangler
from .input_validation import (
    check_image_inputs,
    check_same_batch_size,
    check_text_inputs,
    check_video_inputs,
)
from .losses import UniTriMLoss
from .modeling_outputs import UniTriMOutput, UniTriMSimilarityOutput, UniTriMTextFeatures, UniTriMVisualFeatures
from .patch_selection import PatchSelector
from .similarity import fine_grained_similarity, global_similarity, l2_normalize, masked_mean
from .temporal_encoder import TemporalEncoder, ZeroInitLinear

MAX_LOG_LOGIT_SCALE = math.log(100.0)
# Name of the single score of a text against a still image in `alignment_scores`.
IMAGE_ALIGNMENT = "text_image"


def clamp_with_gradient(value: torch.Tensor, maximum: float) -> torch.Tensor:
    """`min(value, maximum)` whose gradient is always passed through, so a parameter at the cap is not frozen."""
    return value - (value - value.clamp(max=maximum)).detach()


class UniTriMPreTrainedModel(PreTrainedModel):
    config: UniTriMConfig
    config_class = UniTriMConfig
    base_model_prefix = "unitrim"
    main_input_name = "input_ids"
    input_modalities = ("image", "video", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _no_split_modules = ["CLIPTextEmbeddings", "CLIPEncoderLayer", "CLIPVisionEmbeddings", "TemporalEncoderLayer"]

    def _init_weights(self, module: nn.Module) -> None:
        """Linear/Embedding/LayerNorm as transformers' default; zero residual output of the temporal encoder;
        CLIP's projection and logit-scale initialisation. The CLIP towers use CLIP's own `_init_weights`."""
        super()._init_weights(module)
        factor = self.config.initializer_factor
        if isinstance(module, ZeroInitLinear):
            init.zeros_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, UniTriMModel):
            init.constant_(module.logit_scale, self.config.logit_scale_init_value)
            init.normal_(module.text_projection.weight, std=self.config.text_config.hidden_size**-0.5 * factor)
            init.normal_(module.visual_projection.weight, std=self.config.vision_config.hidden_size**-0.5 * factor)


class UniTriMModel(UniTriMPreTrainedModel):
    """
    Text-video and text-image retrieval with multi-granularity semantic alignment.

    Text and visual features are computed independently (`get_text_features`, `get_video_features`,
    `get_image_features`) and scored by `similarity`; `forward` runs both and, with `return_loss=True`, the
    training objective. A module switched off in the config has no parameters and costs nothing.
    """

    def __init__(self, config: UniTriMConfig) -> None:
        super().__init__(config)
        config.validate_switches()
        embed_dim = config.projection_dim
        self.text_model = CLIPTextModel._from_config(config.text_config)
        self.vision_model = CLIPVisionModel._from_config(config.vision_config)
        self.text_projection = nn.Linear(config.text_config.hidden_size, embed_dim, bias=False)
        self.visual_projection = nn.Linear(config.vision_config.hidden_size, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init_value))

        self.patch_selector = (
            PatchSelector(
                embed_dim, config.patch_scorer_hidden_dim, config.patch_top_k, config.patch_selection_temperature
            )
            if config.uses_patches
            else None
        )
        self.temporal_encoder = (
            TemporalEncoder(
                embed_dim, config.num_temporal_layers, config.temporal_num_attention_heads, config.max_frame_positions
            )
            if config.num_temporal_layers > 0
            else None
        )
        self.disentangler = (
            TextDisentangler(embed_dim, config.disentangler_hidden_dim) if config.use_disentangler else None
        )
        self.criterion = UniTriMLoss(
            config.image_loss_weight, config.reconstruction_loss_weight, config.orthogonality_loss_weight
        )
        self.post_init()

    # ------------------------------------------------------------------ construction from CLIP

    @classmethod
    def from_clip(
        cls, clip_model_or_name_or_path: CLIPModel | str, preset: str = "unitrim", **config_overrides: Any
    ) -> "UniTriMModel":
        """
        A UniTriM model whose towers, projections and logit scale come from a CLIP checkpoint (transformers
        `CLIPModel` format: an object, a local folder or a Hub id); new modules are freshly initialised.

        Args:
            clip_model_or_name_or_path: a `CLIPModel`, or what `CLIPModel.from_pretrained` accepts.
            preset: the UniTriM switches to use (`unitrim`, `xclip`, `clip4clip-meanp`); the tower sizes always
                come from the CLIP checkpoint.
            config_overrides: further `UniTriMConfig` fields, e.g. `patch_top_k=4`.
        """
        from .convert_clip import load_clip_model, unitrim_config_from_clip

        clip_model = load_clip_model(clip_model_or_name_or_path)
        config = unitrim_config_from_clip(clip_model.config, preset, **config_overrides)
        model = cls(config)
        model.load_clip_weights(clip_model)
        return model

    def load_clip_weights(self, clip_model: CLIPModel) -> None:
        """Copy CLIP's towers, projections and logit scale into this model (shapes must match)."""
        self.text_model.load_state_dict(clip_model.text_model.state_dict())
        self.vision_model.load_state_dict(clip_model.vision_model.state_dict())
        self.text_projection.load_state_dict(clip_model.text_projection.state_dict())
        self.visual_projection.load_state_dict(clip_model.visual_projection.state_dict())
        with torch.no_grad():
            self.logit_scale.copy_(clip_model.logit_scale)
        self.clamp_logit_scale_()

    @torch.no_grad()
    def clamp_logit_scale_(self) -> None:
        """Keep `logit_scale` within [0, ln 100] (as CLIP's training does); call it after each optimizer step."""
        self.logit_scale.clamp_(0.0, MAX_LOG_LOGIT_SCALE)

    def clip_parameter_names(self) -> set[str]:
        """Names of the parameters that come from CLIP (for a separate, smaller learning rate)."""
        prefixes = ("text_model.", "vision_model.", "text_projection.", "visual_projection.", "logit_scale")
        return {name for name, _ in self.named_parameters() if name.startswith(prefixes)}

    # ------------------------------------------------------------------ text

    def _encode_sentences(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, length) token ids -> projected EOT features (batch, D) and token states (batch, length, hidden)."""
        outputs = self.text_model(input_ids=input_ids, attention_mask=attention_mask)
        return self.text_projection(outputs.pooler_output), outputs.last_hidden_state

    def _encode_triplets(
        self,
        sentence_embeds: torch.Tensor,
        triplet_input_ids: torch.Tensor,
        triplet_attention_mask: torch.Tensor,
        triplet_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode the real triplet phrases with the text tower; a caption without any uses its sentence feature."""
        batch_size, max_triplets, _ = triplet_input_ids.shape
        triplet_mask = triplet_mask.bool()
        triplet_embeds = sentence_embeds.new_zeros(batch_size, max_triplets, sentence_embeds.shape[-1])
        if triplet_mask.any():
            phrases, _ = self._encode_sentences(triplet_input_ids[triplet_mask], triplet_attention_mask[triplet_mask])
            triplet_embeds = triplet_embeds.index_put((triplet_mask,), phrases.to(triplet_embeds.dtype))
        without_triplet = ~triplet_mask.any(dim=1)
        if without_triplet.any():
            slot_zero = torch.zeros_like(triplet_mask)
            slot_zero[:, 0] = True
            fallback_slot = slot_zero & without_triplet[:, None]
            triplet_embeds = torch.where(fallback_slot[..., None], sentence_embeds[:, None, :], triplet_embeds)
            triplet_mask = triplet_mask | fallback_slot
        return triplet_embeds, triplet_mask

    @staticmethod
    def _combine_granularities(features: UniTriMTextFeatures) -> torch.Tensor:
        """`t = s + mean(r) + mean(w)` (B, D) over the text granularities the model encodes (triplets and words
        only where the config enables them): the one text feature matched against still images."""
        combined = features.sentence_embeds
        if features.triplet_embeds is not None:
            combined = combined + masked_mean(features.triplet_embeds, features.triplet_mask, dim=1)
        if features.word_embeds is not None:
            combined = combined + masked_mean(features.word_embeds, features.word_mask, dim=1)
        return combined

    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        triplet_input_ids: torch.Tensor | None = None,
        triplet_attention_mask: torch.Tensor | None = None,
        triplet_mask: torch.Tensor | None = None,
    ) -> UniTriMTextFeatures:
        """
        Args:
            input_ids: (B, L) CLIP token ids (SOT ... EOT, padded).
            attention_mask: (B, L), 1 for real tokens.
            triplet_input_ids: (B, M, L_t) token ids of each triplet phrase; required when `config.use_triplets`.
            triplet_attention_mask: (B, M, L_t).
            triplet_mask: (B, M), 1 for real triplets.

        Returns:
            `UniTriMTextFeatures` (shapes documented there).
        """
        config = self.config
        attention_mask = check_text_inputs(
            input_ids, attention_mask, triplet_input_ids, triplet_attention_mask, triplet_mask,
            config.use_triplets, config.max_triplets,
        )
        sentence_embeds, token_states = self._encode_sentences(input_ids, attention_mask)
        word_mask = attention_mask.bool().clone()
        word_mask[:, 0] = False
        features = UniTriMTextFeatures(sentence_embeds=sentence_embeds, word_mask=word_mask)
        if config.uses_words:
            features.word_embeds = self.text_projection(token_states)
        if config.use_triplets:
            features.triplet_embeds, features.triplet_mask = self._encode_triplets(
                sentence_embeds, triplet_input_ids, triplet_attention_mask, triplet_mask
            )
        features.combined_embeds = self._combine_granularities(features)
        if self.disentangler is not None:
            features.spatial_embeds, features.temporal_embeds, features.reconstructed_embeds = self.disentangler(
                features.combined_embeds
            )
        return features

    # ------------------------------------------------------------------ visual

    def _encode_frames(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(num_frames, 3, H, W) -> frame features (num_frames, D), selected patches (num_frames, K, D), indices."""
        outputs = self.vision_model(pixel_values=pixel_values)
        frame_embeds = self.visual_projection(outputs.pooler_output)
        if self.patch_selector is None:
            return frame_embeds, None, None
        patch_states = self.vision_model.post_layernorm(outputs.last_hidden_state[:, 1:, :])
        patch_embeds = self.visual_projection(patch_states)
        selected, indices = self.patch_selector(patch_embeds, frame_embeds)
        return frame_embeds, selected, indices

    def get_video_features(
        self, pixel_values_videos: torch.Tensor, video_mask: torch.Tensor | None = None
    ) -> UniTriMVisualFeatures:
        """
        Args:
            pixel_values_videos: (B, T, 3, H, W) CLIP-normalised frames, zero-padded after the last real frame.
            video_mask: (B, T), 1 for real frames (every video needs at least one); all ones when None.

        Returns:
            `UniTriMVisualFeatures`. Padded frames are never run through the vision tower; their features are zero
            and masked out of every score.
        """
        video_mask = check_video_inputs(pixel_values_videos, video_mask)
        return self._visual_features(pixel_values_videos, video_mask)

    def get_image_features(self, pixel_values: torch.Tensor) -> UniTriMVisualFeatures:
        """
        Args:
            pixel_values: (B, 3, H, W) CLIP-normalised images.

        Returns:
            `UniTriMVisualFeatures` flagged `is_image`: `frame_embeds` (B, 1, D) is CLIP's projected image
            feature (before normalisation) and `video_embeds` (B, D) the same normalised. A still image passes
            neither the temporal encoder nor patch selection: text->image retrieval matches one text feature
            against it (see `image_text_embeds` of the text features).
        """
        pixel_values = check_image_inputs(pixel_values)
        image_embeds = self.visual_projection(self.vision_model(pixel_values=pixel_values).pooler_output)
        image_mask = torch.ones(pixel_values.shape[0], 1, dtype=torch.bool, device=pixel_values.device)
        return UniTriMVisualFeatures(
            video_embeds=l2_normalize(image_embeds), frame_embeds=image_embeds[:, None], video_mask=image_mask,
            is_image=True,
        )

    def _visual_features(self, pixel_values_videos: torch.Tensor, video_mask: torch.Tensor) -> UniTriMVisualFeatures:
        batch_size, num_frames = video_mask.shape
        real_frames = pixel_values_videos[video_mask]
        frame_embeds, selected_patches, patch_indices = self._encode_frames(real_frames)

        all_frames = frame_embeds.new_zeros(batch_size, num_frames, frame_embeds.shape[-1])
        all_frames = all_frames.index_put((video_mask,), frame_embeds)
        if self.temporal_encoder is not None:
            all_frames = self.temporal_encoder(all_frames, video_mask)
        video_embeds = l2_normalize(masked_mean(l2_normalize(all_frames), video_mask, dim=1))
        features = UniTriMVisualFeatures(video_embeds=video_embeds, frame_embeds=all_frames, video_mask=video_mask)
        if selected_patches is not None:
            top_k = selected_patches.shape[1]
            features.patch_embeds = selected_patches.new_zeros(batch_size, num_frames, top_k, selected_patches.shape[-1])
            features.patch_embeds = features.patch_embeds.index_put((video_mask,), selected_patches)
            features.patch_indices = patch_indices.new_full((batch_size, num_frames, top_k), -1)
            features.patch_indices = features.patch_indices.index_put((video_mask,), patch_indices)
        return features

    # ------------------------------------------------------------------ scoring

    def _alignment_score(self, name: str, text: UniTriMTextFeatures, visual: UniTriMVisualFeatures) -> torch.Tensor:
        text_granularity, visual_granularity = ALIGNMENT_GRANULARITIES[name]
        if text_granularity == "sentence":
            text_units = l2_normalize(text.sentence_embeds)[:, None, :]
            text_mask = torch.ones(text_units.shape[:2], dtype=torch.bool, device=text_units.device)
        elif text_granularity == "word":
            text_units, text_mask = l2_normalize(text.word_embeds), text.word_mask
        else:
            text_units, text_mask = l2_normalize(text.triplet_embeds), text.triplet_mask

        if visual_granularity == "video":
            if text_granularity == "sentence":
                return global_similarity(text_units[:, 0], visual.video_embeds)
            visual_units = visual.video_embeds[:, None, :]
            visual_mask = torch.ones(visual_units.shape[:2], dtype=torch.bool, device=visual_units.device)
        elif visual_granularity == "frame":
            visual_units, visual_mask = l2_normalize(visual.frame_embeds), visual.video_mask
        else:
            batch_size, num_frames, top_k, embed_dim = visual.patch_embeds.shape
            visual_units = l2_normalize(visual.patch_embeds).reshape(batch_size, num_frames * top_k, embed_dim)
            visual_mask = visual.video_mask[:, :, None].expand(-1, -1, top_k).reshape(batch_size, num_frames * top_k)
        return fine_grained_similarity(text_units, text_mask, visual_units, visual_mask, self.config.aggregation_temperature)

    def _score_block(self, text: UniTriMTextFeatures, visual: UniTriMVisualFeatures) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if visual.is_image:
            # Text->image: one text feature (t_sp, or t without the disentangler) against CLIP's image feature.
            scores = {IMAGE_ALIGNMENT: global_similarity(l2_normalize(text.image_text_embeds), visual.video_embeds)}
        else:
            scores = {name: self._alignment_score(name, text, visual) for name in self.config.alignments}
        mean_score = torch.stack(list(scores.values())).mean(dim=0)
        logit_scale = clamp_with_gradient(self.logit_scale, MAX_LOG_LOGIT_SCALE).exp()
        return logit_scale * mean_score, scores

    def compile_scoring(self, **compile_kwargs: Any) -> None:
        """
        Compile the tile scoring function with `torch.compile` (dynamic shapes); `similarity` uses it from then on.
        Worth it for large galleries on GPU; keyword arguments go to `torch.compile` (e.g. `mode="max-autotune"`).
        """
        compile_kwargs.setdefault("dynamic", True)
        self._compiled_score_block = torch.compile(self._score_block, **compile_kwargs)

    def score(self, text_features: UniTriMTextFeatures, visual_features: UniTriMVisualFeatures) -> torch.Tensor:
        """Logits (num_texts, num_visuals) of all pairs, in one block (differentiable; used by the loss)."""
        return self._score_block(text_features, visual_features)[0]

    def units_per_pair(self, text_features: UniTriMTextFeatures, visual_features: UniTriMVisualFeatures) -> int:
        """The largest (text units x visual units) similarity matrix any enabled alignment builds for one pair."""
        if visual_features.is_image:
            return 1
        text_units = {"sentence": 1, "word": text_features.word_embeds, "triplet": text_features.triplet_embeds}
        num_frames = visual_features.frame_embeds.shape[1]
        visual_units = {"video": 1, "frame": num_frames}
        if visual_features.patch_embeds is not None:
            visual_units["patch"] = num_frames * visual_features.patch_embeds.shape[2]
        largest = 1
        for name in self.config.alignments:
            text_granularity, visual_granularity = ALIGNMENT_GRANULARITIES[name]
            units = text_units[text_granularity]
            units = units if isinstance(units, int) else units.shape[1]
            largest = max(largest, units * visual_units.get(visual_granularity, 1))
        return largest

    def similarity(
        self,
        text_features: UniTriMTextFeatures,
        visual_features: UniTriMVisualFeatures,
        text_block_size: int | None = None,
        visual_block_size: int | None = None,
        max_block_elements: int = 2**24,
    ) -> UniTriMSimilarityOutput:
        """
        Score every text against every video (or image), tile by tile so that memory stays bounded for large
        galleries; the result does not depend on the tile sizes. Computation runs in the features' dtype and on
        their device.

        Args:
            text_features: features of num_texts captions.
            visual_features: features of num_visuals videos or images.
            text_block_size, visual_block_size: tile sizes; by default up to 512 visuals per tile and as many texts
                as keep one tile's similarity tensor within `max_block_elements` entries (for `word_patch`, a
                tile holds text_block x visual_block x words x frames x K entries).

        Returns:
            `UniTriMSimilarityOutput` with `logits` (num_texts, num_visuals) and `alignment_scores`, one
            (num_texts, num_visuals) matrix per enabled alignment.
        """
        num_texts, num_visuals = text_features.batch_size, visual_features.batch_size
        visual_block_size = visual_block_size or min(max(num_visuals, 1), 512)
        if text_block_size is None:
            per_text = visual_block_size * self.units_per_pair(text_features, visual_features)
            text_block_size = max(1, max_block_elements // per_text)
        if text_block_size < 1 or visual_block_size < 1:
            raise ValueError("text_block_size and visual_block_size must be >= 1.")
        score_block = getattr(self, "_compiled_score_block", None) or self._score_block
        reference = text_features.sentence_embeds
        logits = reference.new_empty(num_texts, num_visuals)
        scores: dict[str, torch.Tensor] = {}
        for text_start in range(0, num_texts, text_block_size):
            text_rows = slice(text_start, text_start + text_block_size)
            text_block = text_features.take(text_rows)
            for visual_start in range(0, num_visuals, visual_block_size):
                visual_rows = slice(visual_start, visual_start + visual_block_size)
                block_logits, block_scores = score_block(text_block, visual_features.take(visual_rows))
                logits[text_rows, visual_rows] = block_logits
                for name, value in block_scores.items():
                    scores.setdefault(name, reference.new_empty(num_texts, num_visuals))[text_rows, visual_rows] = value
        return UniTriMSimilarityOutput(logits=logits, alignment_scores=scores)

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        triplet_input_ids: torch.Tensor | None = None,
        triplet_attention_mask: torch.Tensor | None = None,
        triplet_mask: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        return_loss: bool = False,
        **kwargs: Any,
    ) -> UniTriMOutput:
        """
        Encode captions with their videos (B, T, 3, H, W) and/or keyframe images (B, 3, H, W) and score them.

        Without `return_loss`, the logits are all texts against all videos (and images) of the batch. With
        `return_loss=True`, row i of the texts is paired with row i of the videos and images, the features are
        gathered across processes and the output holds `loss`, `losses` and the local texts' logits against the
        gathered visuals.
        """
        if kwargs:
            raise ValueError(f"Unexpected inputs {sorted(kwargs)}.")
        if pixel_values_videos is None and pixel_values is None:
            raise ValueError("Pass `pixel_values_videos` (B, T, 3, H, W), `pixel_values` (B, 3, H, W) or both.")
        text_features = self.get_text_features(
            input_ids, attention_mask, triplet_input_ids, triplet_attention_mask, triplet_mask
        )
        video_features = (
            self.get_video_features(pixel_values_videos, video_mask) if pixel_values_videos is not None else None
        )
        image_features = self.get_image_features(pixel_values) if pixel_values is not None else None
        output = UniTriMOutput(text_features=text_features, video_features=video_features, image_features=image_features)

        if return_loss:
            sizes = {"input_ids": text_features.batch_size}
            if video_features is not None:
                sizes["pixel_values_videos"] = video_features.batch_size
            if image_features is not None:
                sizes["pixel_values"] = image_features.batch_size
            check_same_batch_size(sizes)
            output.loss, output.losses, output.logits_per_text_video, output.logits_per_text_image = (
                self.criterion(self.score, text_features, video_features, image_features)
            )
            return output

        if video_features is not None:
            similarity = self._score_block(text_features, video_features)
            output.logits_per_text_video, output.alignment_scores = similarity
        if image_features is not None:
            output.logits_per_text_image = self.score(text_features, image_features)
        return output


__all__ = ["UniTriMModel", "UniTriMPreTrainedModel"]
