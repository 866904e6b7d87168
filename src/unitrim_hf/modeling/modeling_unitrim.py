"""UniTriM: CLIP towers, triplet and word text features, top-K patches, a temporal encoder, MGSA scoring and a
text disentangler, as a transformers `PreTrainedModel`. Imports only torch and transformers (also Hub remote code)."""

from __future__ import annotations

import math
import os
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn
from transformers import CLIPModel, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple

from .aosm import AOSMWeights
from .checkpoint_consistency import check_config_against_weights, checkpoint_folder, read_checkpoint_shapes
from .clip_towers import CLIPTextTower, CLIPVisionTower
from .configuration_unitrim import UniTriMConfig
from .disentanglement import TextDisentangler
from .keyed_initialization import draw_base_seed, global_stream_untouched, random_stream_of
from .interactive_similarity_aggregation import ISAWeights
from .input_validation import (
    check_image_inputs,
    check_keyword_arguments,
    check_same_batch_size,
    check_text_inputs,
    check_video_inputs,
    pad_to_fixed_length,
)
from .alignment_table import visual_granularity_of
from .eercf_loss import eercf_loss, weighted_sum, EERCF_WEAK_WEIGHTS
from .losses import UniTriMLoss, contrastive_logits, contrastive_loss, gather_features
from .mgsa_scorer import DEFAULT_MAX_BLOCK_ELEMENTS, MGSAScorer
from .modeling_outputs import UniTriMOutput, UniTriMSimilarityOutput, UniTriMTextFeatures, UniTriMVisualFeatures
from .patch_selection import PatchSelector
from .pooling import l2_normalize, masked_mean
from .temporal_encoder import TemporalEncoder, ZeroInitLinear
from .text_gated_interaction import GatedVisualUnits, TextGatedInteraction
from .two_stage_retrieval import fine_score, two_stage_scores
from .token_selection import TokenSelector
from .token_shift import TemporalTokenShift

MAX_LOG_LOGIT_SCALE = math.log(100.0)
# The token id X-CLIP's data loaders pad captions with; with `mask_padding=False` padded positions carry it.
XCLIP_PADDING_TOKEN_ID = 0
TOWER_SWITCHES = ("output_hidden_states", "output_attentions")
# What transformers' Trainer passes to every model that takes **kwargs; the contrastive loss has no use for it.
IGNORED_KEYWORDS = ("num_items_in_batch",)


def check_text_gated_inputs(visual_features: UniTriMVisualFeatures) -> None:
    """Raise `ValueError` when video features lack what the text-gated interaction block reads."""
    missing = [name for name in ("frame_embeds", "encoded_frame_embeds", "patch_embeds")
               if getattr(visual_features, name) is None]
    if missing:
        raise ValueError(
            f"The text-gated interaction block needs video features with {missing}: compute them with this "
            "model's get_video_features (or video_features_from_frames with patch_embeds)."
        )


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
        """The new modules' Linear/Embedding/LayerNorm as transformers' default; zero residual output of the
        temporal encoder; CLIP's projection and logit-scale initialization. The CLIP towers initialize their own
        modules as CLIP does (`clip_towers`).

        Each module draws from its own random stream keyed by its name (`keyed_initialization`): for one seed,
        every module has the same initial values whichever other modules the config switches on."""
        if self.initial_weights_seed is None:
            # Drawn when weights are first initialized, not when the model is built: a model built on the meta
            # device and initialized while loading gets the same values as one built and initialized directly.
            self.initial_weights_seed = draw_base_seed()
        with random_stream_of(self.initial_weights_seed, self._qualified_name(module)):
            self._init_module_weights(module)

    def _qualified_name(self, module: nn.Module) -> str:
        return next((name for name, submodule in self.named_modules() if submodule is module), "")

    def _init_module_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        factor = self.config.initializer_factor
        if isinstance(module, ZeroInitLinear):
            init.zeros_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, TextDisentangler):
            init.zeros_(module.spatial_gate)
        elif isinstance(module, (AOSMWeights, ISAWeights, TextGatedInteraction)):
            for parameter in module.parameters(recurse=False):
                init.eye_(parameter)
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
        self.initial_weights_seed: int | None = None  # see `_init_weights`
        # Building modules draws from the global stream (PyTorch's default initialization, which `post_init`
        # replaces); leaving it untouched makes the base seed drawn at initialization the same whichever modules
        # the config switches on.
        with global_stream_untouched():
            self._build_modules(config)
        self.post_init()

    def _build_modules(self, config: UniTriMConfig) -> None:
        embed_dim = config.projection_dim
        self.text_model = CLIPTextTower._from_config(config.text_config)
        self.vision_model = CLIPVisionTower._from_config(config.vision_config)
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
        self.temporal_encoder = TemporalEncoder(config) if config.num_temporal_layers > 0 else None
        self.token_selector = (
            TokenSelector(
                embed_dim, config.token_selection_top_k, config.token_selection_samples,
                config.token_selection_sigma, config.token_selection_eval,
            )
            if config.token_selection_top_k > 0
            else None
        )
        # Hooks on the vision tower's attention (no parameters): a plain attribute, not a submodule.
        self.token_shift = (
            TemporalTokenShift(self.vision_model, config.token_shift_layers, config.token_shift_divisor)
            if config.token_shift_layers
            else None
        )
        self.disentangler = (
            TextDisentangler(embed_dim, config.disentangler_hidden_dim) if config.use_disentangler else None
        )
        self.aosm = AOSMWeights(config.alignments, embed_dim, config.max_words, config.max_frames) if config.aosm else None
        self.isa = (
            ISAWeights(
                config.alignments, embed_dim, config.max_words, config.max_frames, 1 + config.token_selection_top_k,
                config.isa_token_transform_in_eval,
            )
            if config.uses_isa
            else None
        )
        self.scorer = MGSAScorer.from_config(config, self.aosm, self.isa)
        self.text_gated_interaction = (
            TextGatedInteraction(embed_dim, config.max_frames) if config.text_gated_interaction else None
        )
        self.criterion = UniTriMLoss(
            config.image_loss_weight, config.reconstruction_loss_weight, config.orthogonality_loss_weight
        )

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike | None, *model_args: Any, **kwargs: Any
    ) -> "UniTriMModel":
        """
        transformers' `from_pretrained`, after one check of a saved folder: its own `config.json` against the
        tensor shapes its safetensors header lists (`checkpoint_consistency`), before anything is built. A
        configuration that claims a size that cannot be (negative, zero), another number of layers than the
        weights hold, or a size that the weights contradict raises `CheckpointConfigMismatch` (a `ValueError`)
        naming the folder and the first field at fault, in time bounded by the header.

        Everything else is transformers' behaviour: a `config=` object, keyword overrides and `state_dict=` are
        not checked, missing tensors are initialized (`output_loading_info=True` lists them) and
        `ignore_mismatched_sizes=True` initializes tensors of another shape.
        """
        folder = checkpoint_folder(pretrained_model_name_or_path, kwargs)
        if folder is not None:
            cls._check_saved_configuration(folder, pretrained_model_name_or_path, kwargs.get("variant"))
        return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

    @classmethod
    def _check_saved_configuration(
        cls, folder: os.PathLike, name: str | os.PathLike, variant: str | None
    ) -> None:
        """Raise `CheckpointConfigMismatch` when `folder`'s configuration disagrees with its safetensors weights."""
        shapes = read_checkpoint_shapes(folder, variant)
        if shapes is not None:
            check_config_against_weights(cls.config_class.from_pretrained(folder), shapes, name)

    # ------------------------------------------------------------------ CLIP weights and optimization

    @classmethod
    def from_clip(
        cls, clip_model_or_name_or_path: CLIPModel | str, preset: str = "unitrim", **config_overrides: Any
    ) -> "UniTriMModel":
        """
        A UniTriM model whose towers, projections and logit scale come from a CLIP checkpoint (transformers
        `CLIPModel` format: an object, a local folder or a Hub id); new modules are freshly initialized.
        See `convert_clip.unitrim_model_from_clip` for the arguments.
        """
        from .convert_clip import unitrim_model_from_clip

        return unitrim_model_from_clip(cls, clip_model_or_name_or_path, preset, **config_overrides)

    @torch.no_grad()
    def clamp_logit_scale_(self) -> None:
        """Keep `logit_scale` within [0, ln 100] (as CLIP's training does); call it after each optimizer step."""
        self.logit_scale.clamp_(0.0, MAX_LOG_LOGIT_SCALE)

    def clip_parameter_names(self) -> set[str]:
        """Names of the parameters that come from CLIP (for a separate, smaller learning rate)."""
        from .convert_clip import clip_parameter_names

        return clip_parameter_names(self)

    # ------------------------------------------------------------------ text

    def _tower_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The towers' output switches: those passed, else the composite config's when it turns them on (the
        towers' own configs are read by the towers themselves). Any other keyword is refused, naming it."""
        tower_kwargs = check_keyword_arguments(kwargs, TOWER_SWITCHES, IGNORED_KEYWORDS)
        for switch in TOWER_SWITCHES:
            if tower_kwargs.get(switch) is None and getattr(self.config, switch, False):
                tower_kwargs[switch] = True
        return tower_kwargs

    def _encode_sentences(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, **kwargs: Unpack[TransformersKwargs]
    ) -> tuple[torch.Tensor, BaseModelOutputWithPooling]:
        """(batch, length) token ids -> projected EOT features (batch, D) and the text tower's output."""
        outputs = self.text_model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **kwargs)
        return self.text_projection(outputs.pooler_output), outputs

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

    def _combine_granularities(self, features: UniTriMTextFeatures) -> torch.Tensor:
        """`t = s + mean(r) + mean(w)` (B, D) over the text granularities the model encodes (triplets and words
        only where the config enables them), or `s` alone with `config.image_text_feature="sentence"`: the text
        feature matched against still images (through the disentangler when there is one)."""
        combined = features.sentence_embeds
        if self.config.image_text_feature == "sentence":
            return combined
        if features.triplet_embeds is not None:
            combined = combined + masked_mean(features.triplet_embeds, features.triplet_mask, dim=1)
        if features.word_embeds is not None:
            combined = combined + masked_mean(features.word_embeds, features.word_mask, dim=1)
        return combined

    @can_return_tuple
    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        triplet_input_ids: torch.Tensor | None = None,
        triplet_attention_mask: torch.Tensor | None = None,
        triplet_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> UniTriMTextFeatures | tuple:
        """
        Args:
            input_ids (`(B, L)`): CLIP token ids (SOT ... EOT, padded).
            attention_mask (`(B, L)`, optional): 1 for real tokens.
            triplet_input_ids (`(B, M, L_t)`, optional): token ids of each triplet phrase; required when
                `config.use_triplets`.
            triplet_attention_mask (`(B, M, L_t)`, optional).
            triplet_mask (`(B, M)`, optional): 1 for real triplets.
            **kwargs: transformers' `output_hidden_states`, `output_attentions` and `return_dict`, as CLIP's.

        Returns:
            [`UniTriMTextFeatures`] (shapes documented there): the text tower's `last_hidden_state`, the sentence
            feature as `pooler_output`, and the multi-granular features; a tuple with `return_dict=False`.
        """
        config = self.config
        attention_mask = check_text_inputs(
            input_ids, attention_mask, triplet_input_ids, triplet_attention_mask, triplet_mask,
            config.use_triplets, config.max_triplets,
        )
        if config.has_fixed_lengths:
            input_ids, attention_mask = pad_to_fixed_length(
                input_ids, attention_mask, config.max_words, "input_ids", "max_words", fixed_by=self._fixed_by()
            )
        tower_mask = attention_mask
        if not config.mask_padding:  # X-CLIP: padding id 0 at padded positions, the tower sees only its causal mask
            input_ids = input_ids.masked_fill(~attention_mask.bool(), XCLIP_PADDING_TOKEN_ID)
            tower_mask = None
        sentence_embeds, text_outputs = self._encode_sentences(input_ids, tower_mask, **self._tower_kwargs(kwargs))
        word_mask = attention_mask.bool().clone()
        word_mask[:, 0] = False
        features = UniTriMTextFeatures(
            last_hidden_state=text_outputs.last_hidden_state,
            pooler_output=sentence_embeds,
            hidden_states=text_outputs.hidden_states,
            attentions=text_outputs.attentions,
            word_mask=word_mask,
        )
        if config.uses_words:
            features.word_embeds = self.text_projection(text_outputs.last_hidden_state)
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

    def _encode_frames(
        self, pixel_values: torch.Tensor, frames_per_video: int, **kwargs: Unpack[TransformersKwargs]
    ) -> tuple[
        torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, BaseModelOutputWithPooling
    ]:
        """(num_frames, 3, H, W), `frames_per_video` consecutive rows per video (read by the token shift) ->
        frame features (num_frames, D), selected patches (num_frames, K, D) and their indices (num_frames, K) of
        UniTriM's patch selection, TS2-Net's selected tokens (num_frames, 1 + K, D) and the vision tower's output."""
        shifting = nullcontext()
        if self.token_shift is not None:
            if self.vision_model.is_activation_checkpointing and self.training:
                raise ValueError(
                    "Token shift (config.token_shift_layers) does not support gradient checkpointing of the vision "
                    "tower: the recomputed layers would not know the frames of each video."
                )
            shifting = self.token_shift.frames(frames_per_video)
        with shifting:
            outputs = self.vision_model(pixel_values=pixel_values, return_dict=True, **kwargs)
        frame_embeds = self.visual_projection(outputs.pooler_output)
        selected_tokens = None
        if self.token_selector is not None:
            tokens = self.visual_projection(self.vision_model.post_layernorm(outputs.last_hidden_state))
            selected_tokens = self.token_selector(tokens)
        if self.patch_selector is None:
            return frame_embeds, None, None, selected_tokens, outputs
        patch_states = self.vision_model.post_layernorm(outputs.last_hidden_state[:, 1:, :])
        patch_embeds = self.visual_projection(patch_states)
        selected, indices = self.patch_selector(patch_embeds, frame_embeds)
        return frame_embeds, selected, indices, selected_tokens, outputs

    @can_return_tuple
    def get_video_features(
        self,
        pixel_values_videos: torch.Tensor,
        video_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> UniTriMVisualFeatures | tuple:
        """
        Args:
            pixel_values_videos (`(B, T, 3, H, W)`): CLIP-normalized frames, zero-padded after the last real frame.
            video_mask (`(B, T)`, optional): 1 for real frames (every video needs at least one); all ones when None.
            **kwargs: transformers' `output_hidden_states`, `output_attentions` and `return_dict`, as CLIP's.

        Returns:
            [`UniTriMVisualFeatures`]; a tuple with `return_dict=False`. Padded frames are never run through the
            vision tower; their features (and tower states) are zero and masked out of every score.
        """
        video_mask = check_video_inputs(pixel_values_videos, video_mask)
        if self.config.has_fixed_lengths:
            pixel_values_videos, video_mask = pad_to_fixed_length(
                pixel_values_videos, video_mask, self.config.max_frames, "pixel_values_videos", "max_frames",
                fixed_by=self._fixed_by(),
            )
        elif self.token_shift is not None:  # TS2-Net shifts across max_frames slots, padded ones included
            pixel_values_videos, video_mask = pad_to_fixed_length(
                pixel_values_videos, video_mask, self.config.max_frames, "pixel_values_videos", "max_frames",
                fixed_by="this model's token shift runs on",
            )
        elif self.text_gated_interaction is not None:  # EERCF's (T, T) frame matrix
            pixel_values_videos, video_mask = pad_to_fixed_length(
                pixel_values_videos, video_mask, self.config.max_frames, "pixel_values_videos", "max_frames",
                fixed_by="this model's text-gated interaction block is sized for",
            )
        return self._visual_features(pixel_values_videos, video_mask, **self._tower_kwargs(kwargs))

    @can_return_tuple
    def get_image_features(
        self, pixel_values: torch.Tensor, **kwargs: Unpack[TransformersKwargs]
    ) -> UniTriMVisualFeatures | tuple:
        """
        Args:
            pixel_values (`(B, 3, H, W)`): CLIP-normalized images.
            **kwargs: transformers' `output_hidden_states`, `output_attentions` and `return_dict`, as CLIP's.

        Returns:
            [`UniTriMVisualFeatures`] flagged `is_image`: `frame_embeds` (B, 1, D) is CLIP's projected image
            feature (before normalization) and `pooler_output` (B, D) the same normalized. A still image passes
            neither the temporal encoder nor patch selection: text->image retrieval matches one text feature
            against it (see `image_text_embeds` of the text features). A tuple with `return_dict=False`.
            With `config.image_as_pseudo_video` (TS2-Net) the image is instead a video of `config.max_frames`
            copies of itself, through the video side: the result is that video's features (not flagged
            `is_image`), scored by the video alignments.
        """
        pixel_values = check_image_inputs(pixel_values)
        if self.config.image_as_pseudo_video:
            frames = pixel_values[:, None].expand(-1, self.config.max_frames, *pixel_values.shape[1:])
            mask = torch.ones(frames.shape[:2], dtype=torch.bool, device=pixel_values.device)
            return self._visual_features(frames, mask, **self._tower_kwargs(kwargs))
        outputs = self.vision_model(pixel_values=pixel_values, return_dict=True, **self._tower_kwargs(kwargs))
        image_embeds = self.visual_projection(outputs.pooler_output)
        image_mask = torch.ones(pixel_values.shape[0], 1, dtype=torch.bool, device=pixel_values.device)
        return UniTriMVisualFeatures(
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=l2_normalize(image_embeds),
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            frame_embeds=image_embeds[:, None],
            video_mask=image_mask,
            is_image=True,
        )

    def _fixed_by(self) -> str:
        """What ties the model to `max_words` / `max_frames`, for the refusal of longer inputs."""
        matrices = "AOSM" if self.config.aosm else "ISA"
        return f"this model's {matrices} matrices are sized for"

    @staticmethod
    def _per_video(frame_values: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """(real frames, ...) -> (B, T, ...), zero at padded frames (a view, without a copy, when none is padded)."""
        batch_size, num_frames = video_mask.shape
        if frame_values.shape[0] == batch_size * num_frames:  # every frame is real: the rows are in (B, T) order
            return frame_values.view(batch_size, num_frames, *frame_values.shape[1:])
        per_video = frame_values.new_zeros(batch_size, num_frames, *frame_values.shape[1:])
        return per_video.index_put((video_mask,), frame_values)

    def video_features_from_frames(
        self, clip_frame_embeds: torch.Tensor, video_mask: torch.Tensor, patch_embeds: torch.Tensor | None = None
    ) -> UniTriMVisualFeatures:
        """
        The video-level and frame-level features of CLIP's projected frame features (what the similarity head of
        X-CLIP and CLIP4Clip receives as `visual_output`): the temporal encoder, the video embedding (masked mean
        of the normalized encoded frames, normalized) and the frames the frame-level alignments read
        (`config.frame_alignment_features`). No patches, no tower outputs.

        Args:
            clip_frame_embeds (`(B, T, D)`): projected [CLS] features of every frame slot.
            video_mask (`(B, T)` bool): true for real frames.
            patch_embeds (`(B, T, P, D)`, optional): with `text_gated_interaction`, every projected patch token of
                every frame slot (what EERCF's head receives as `visual_patches`); kept as `patch_embeds`.
        """
        video_embeds, aligned_frames, _, encoded = self._video_and_frame_features(clip_frame_embeds, video_mask)
        if self.text_gated_interaction is None:
            return UniTriMVisualFeatures(pooler_output=video_embeds, frame_embeds=aligned_frames, video_mask=video_mask)
        return UniTriMVisualFeatures(
            pooler_output=video_embeds, frame_embeds=aligned_frames, video_mask=video_mask, patch_embeds=patch_embeds,
            encoded_frame_embeds=encoded,
        )

    def video_features_from_tokens(
        self, projected_tokens: torch.Tensor, video_mask: torch.Tensor, selection_noise: torch.Tensor | None = None
    ) -> UniTriMVisualFeatures:
        """
        TS2-Net's video side after the vision tower: token selection, the temporal encoder over the kept tokens
        of all frames, the frame features at the [CLS] positions (what TS2-Net's head receives as the tower's
        projected tokens). Needs `config.token_selection_top_k` > 0. With `config.token_selection_output =
        "token_embeds"` (UCoFiA), the kept tokens are the `token_embeds` (B, T, 1 + K, D) instead, and the [CLS]
        tokens the frame features of `video_features_from_frames`.

        Args:
            projected_tokens (`(B, T, N, D)`): every token of every frame slot after the vision tower's post layer
                norm and `visual_projection`, [CLS] first.
            video_mask (`(B, T)` bool): true for real frames.
            selection_noise (`(B·T, S, N − 1)`, optional): the perturbed top-K's draws (to reproduce a given run).
        """
        if self.token_selector is None:
            raise ValueError("video_features_from_tokens needs token selection (config.token_selection_top_k > 0).")
        batch_size, num_frames, num_tokens, embed_dim = projected_tokens.shape
        flat = projected_tokens.reshape(batch_size * num_frames, num_tokens, embed_dim)
        selected = self.token_selector(flat, selection_noise).view(batch_size, num_frames, -1, embed_dim)
        if self._selects_token_features():  # UCoFiA: the kept tokens are features of their own, the frames go on
            features = self.video_features_from_frames(projected_tokens[:, :, 0], video_mask)
            features.token_embeds = selected
            return features
        video_embeds, aligned_frames, frame_mask, _ = self._video_and_frame_features(
            projected_tokens[:, :, 0], video_mask, selected
        )
        return UniTriMVisualFeatures(pooler_output=video_embeds, frame_embeds=aligned_frames, video_mask=frame_mask)

    def _video_and_frame_features(
        self, clip_frame_embeds: torch.Tensor, video_mask: torch.Tensor, selected_tokens: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, D) CLIP frame features (and TS2-Net's (B, T, 1 + K, D) selected tokens) -> the video embedding
        (B, D), the frame-level features (B, T, D), the mask the scores use (B, T): `video_mask`, except with
        TS2-Net's tiled token mask (`_selected_token_mask`), and the encoded frames (B, T, D)."""
        encoded_frames = clip_frame_embeds
        if selected_tokens is not None:
            encoded_frames, video_mask = self._encode_selected_tokens(selected_tokens, video_mask)
        elif self.temporal_encoder is not None:
            encoded_frames = self.temporal_encoder(clip_frame_embeds, video_mask)
        video_embeds = l2_normalize(masked_mean(l2_normalize(encoded_frames), video_mask, dim=1))
        aligned = clip_frame_embeds if self.config.frame_alignment_features == "clip" else encoded_frames
        return video_embeds, aligned, video_mask, encoded_frames

    def _selected_token_mask(self, video_mask: torch.Tensor, per_frame: int) -> torch.Tensor:
        """(B, T) frame mask -> (B, T·per_frame) mask of the kept tokens (frame-major). `"per_frame"`: each token
        has its frame's mask. `"tiled"` (TS2-Net's code): the T frame masks repeated `per_frame` times as a whole,
        so token position j gets the mask of frame j mod T, whichever frame it belongs to."""
        if self.config.token_selection_mask == "tiled":
            return video_mask.repeat(1, per_frame)
        return video_mask[:, :, None].expand(-1, -1, per_frame).reshape(video_mask.shape[0], -1)

    def _encode_selected_tokens(
        self, selected_tokens: torch.Tensor, video_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """TS2-Net: the (B, T, 1 + K, D) kept tokens of all frames through the temporal encoder as one sequence of
        T·(1 + K) positions (masked tokens only as keys) -> its output at the [CLS] positions (B, T, D) and the
        token mask there (B, T), the frame mask of TS2-Net's similarity."""
        batch_size, num_frames, per_frame, embed_dim = selected_tokens.shape
        token_mask = self._selected_token_mask(video_mask, per_frame)
        frame_mask = token_mask[:, ::per_frame]
        if self.temporal_encoder is None:
            return selected_tokens[:, :, 0], frame_mask
        positions = self.temporal_encoder.frame_position_embedding.num_embeddings
        if num_frames * per_frame > positions:
            raise ValueError(
                f"Token selection keeps {per_frame} tokens of each of {num_frames} frames, {num_frames * per_frame} "
                f"positions, but the temporal encoder has {positions} (config.max_frame_positions): lower "
                "token_selection_top_k or the number of frames."
            )
        sequence = selected_tokens.reshape(batch_size, num_frames * per_frame, embed_dim)
        encoded = self.temporal_encoder(sequence, token_mask)
        return encoded.view(batch_size, num_frames, per_frame, embed_dim)[:, :, 0], frame_mask

    def _selects_token_features(self) -> bool:
        """Whether token selection gives `token_embeds` (UCoFiA) rather than feeding the temporal encoder (TS2-Net)."""
        return self.token_selector is not None and self.config.token_selection_output == "token_embeds"

    def _encodes_padded_frames(self) -> bool:
        """Whether padded frame slots go through the vision tower: with token shift (TS2-Net shifts across every
        slot) and with `mask_padding=False` (X-CLIP), where a frame-level alignment pools over every slot."""
        config = self.config
        if self.token_shift is not None or self.text_gated_interaction is not None:
            return True
        return not config.mask_padding and any(visual_granularity_of(name) == "frame" for name in config.alignments)

    def _visual_features(
        self, pixel_values_videos: torch.Tensor, video_mask: torch.Tensor, **kwargs: Unpack[TransformersKwargs]
    ) -> UniTriMVisualFeatures:
        encoded = video_mask
        if self._encodes_padded_frames():  # X-CLIP's padded frames: zero pixels, whatever the batch holds there
            encoded = torch.ones_like(video_mask)
            pixel_values_videos = pixel_values_videos * video_mask[:, :, None, None, None].to(pixel_values_videos.dtype)
        frame_embeds, selected_patches, patch_indices, selected_tokens, tower = self._encode_frames(
            pixel_values_videos[encoded], video_mask.shape[1], **kwargs
        )
        kept_tokens = None
        if selected_tokens is not None and self._selects_token_features():
            kept_tokens, selected_tokens = self._per_video(selected_tokens, encoded), None
        video_embeds, aligned_frames, scored_mask, encoded_frames = self._video_and_frame_features(
            self._per_video(frame_embeds, encoded),
            video_mask,
            None if selected_tokens is None else self._per_video(selected_tokens, encoded),
        )
        per_video = lambda states: None if states is None else tuple(self._per_video(s, encoded) for s in states)  # noqa: E731
        features = UniTriMVisualFeatures(  # built at once: a ModelOutput's order is the order fields are set
            last_hidden_state=self._per_video(tower.last_hidden_state, encoded),
            pooler_output=video_embeds,
            hidden_states=per_video(tower.hidden_states),
            attentions=per_video(tower.attentions),
            frame_embeds=aligned_frames,
            video_mask=scored_mask,  # `video_mask`, or TS2-Net's tiled token mask at the [CLS] positions
        )
        if kept_tokens is not None:
            features.token_embeds = kept_tokens
        if self.text_gated_interaction is not None:  # EERCF: every patch of every slot, and the encoded frames
            patches = self.visual_projection(self.vision_model.post_layernorm(tower.last_hidden_state[:, 1:]))
            features.patch_embeds = self._per_video(patches, encoded)
            features.encoded_frame_embeds = encoded_frames
        if selected_patches is not None:
            features.patch_embeds = self._per_video(selected_patches, encoded)
            features.patch_indices = patch_indices.new_full((*video_mask.shape, patch_indices.shape[-1]), -1)
            features.patch_indices = features.patch_indices.index_put((encoded,), patch_indices)
        return features

    # ------------------------------------------------------------------ similarity (see MGSAScorer)

    def exp_logit_scale(self) -> torch.Tensor:
        """`()` the factor the logits carry, `exp(logit_scale)` capped at 100 (the gradient passes the cap)."""
        return clamp_with_gradient(self.logit_scale, MAX_LOG_LOGIT_SCALE).exp()

    def compile_similarity(self, **compile_kwargs: Any) -> None:
        """
        Always use `torch.compile` (dynamic shapes) for the tiles of `similarity`; by default the scorer compiles
        by itself only for galleries on CUDA. Keyword arguments go to `torch.compile` (e.g. `mode="max-autotune"`).
        """
        self.scorer.compile(**compile_kwargs)

    def similarity(
        self,
        text_features: UniTriMTextFeatures,
        visual_features: UniTriMVisualFeatures,
        text_block_size: int | None = None,
        visual_block_size: int | None = None,
        max_block_elements: int | None = DEFAULT_MAX_BLOCK_ELEMENTS,
    ) -> UniTriMSimilarityOutput:
        """
        Score every text against every video (or image): the logits and each alignment's scores. By default tile
        by tile, so that memory stays bounded for large galleries; the result does not depend on the tile sizes.
        Computation runs in the features' dtype and on their device. Arguments as `MGSAScorer.similarity`
        (`max_block_elements=None`: one differentiable block, as in training).

        Returns:
            `UniTriMSimilarityOutput` with `logits` (num_texts, num_visuals) and `alignment_scores`, one
            (num_texts, num_visuals) matrix per enabled alignment (for images, the single `text_image` score).
        """
        if self.text_gated_interaction is not None and not visual_features.is_image:
            return self._text_gated_similarity(
                text_features, visual_features, text_block_size, visual_block_size, max_block_elements
            )
        return self.scorer.similarity(
            text_features, visual_features, self.exp_logit_scale(), text_block_size, visual_block_size,
            max_block_elements,
        )

    # ------------------------------------------------------------------ EERCF (text_gated_interaction)

    def _text_gated_units(self, visual_features: UniTriMVisualFeatures) -> GatedVisualUnits:
        """The normalized units of EERCF's scores, once per video batch (`TextGatedInteraction.prepare`)."""
        check_text_gated_inputs(visual_features)
        return self.text_gated_interaction.prepare(
            visual_features.frame_embeds, visual_features.encoded_frame_embeds, visual_features.video_mask,
            visual_features.patch_embeds,
        )

    def _text_gated_scores(
        self, text_features: UniTriMTextFeatures, visual_features: UniTriMVisualFeatures, paired: bool
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The TIB scores (cosine scale) and, when `paired`, the paired text-gated features (`TextGatedInteraction`)."""
        units = self._text_gated_units(visual_features)
        return self.text_gated_interaction.scores(text_features.sentence_embeds, units, paired=paired)

    def _text_gated_similarity(
        self,
        text_features: UniTriMTextFeatures,
        visual_features: UniTriMVisualFeatures,
        text_block_size: int | None,
        visual_block_size: int | None,
        max_block_elements: int | None,
    ) -> UniTriMSimilarityOutput:
        """Every pair's TIB scores, a text gate per pair (EERCF's evaluation), in tiles; the logits are EERCF's
        fine re-ranking score (`two_stage_retrieval.fine_score`) times the logit scale. The tiles bound the
        per-pair intermediates (T·P patch similarities and a D-wide gated frame feature per pair)."""
        units = self._text_gated_units(visual_features)
        num_texts, num_visuals = text_features.batch_size, visual_features.batch_size
        visual_block = visual_block_size or num_visuals
        if text_block_size is None:
            per_pair = units.patches.shape[1] + units.encoded.shape[1] + units.encoded.shape[2]
            budget = max_block_elements or num_texts * visual_block * per_pair
            text_block_size = max(1, budget // (visual_block * per_pair))
        rows = []
        for text_start in range(0, num_texts, text_block_size):
            sentences = text_features.sentence_embeds[text_start : text_start + text_block_size]
            tiles = [
                self.text_gated_interaction.scores(sentences, units.take(slice(start, start + visual_block)), False)[0]
                for start in range(0, num_visuals, visual_block)
            ]
            rows.append({name: torch.cat([tile[name] for tile in tiles], dim=1) for name in tiles[0]})
        scores = {name: torch.cat([row[name] for row in rows], dim=0) for name in rows[0]}
        return UniTriMSimilarityOutput(logits=self.exp_logit_scale() * fine_score(scores), alignment_scores=scores)

    def two_stage_similarity(
        self,
        text_features: UniTriMTextFeatures,
        visual_features: UniTriMVisualFeatures,
        top_k: int | None = None,
    ) -> UniTriMSimilarityOutput:
        """
        EERCF's two-stage retrieval: each text's `top_k` videos by the coarse `sentence_video` score (every pair,
        cheap), re-ranked by the fine score computed for those candidates only (a text gate per pair); the other
        videos keep their coarse scores, below every candidate (`two_stage_retrieval.two_stage_scores`).

        Args:
            text_features, visual_features: as `similarity` (videos of this model's `get_video_features`).
            top_k: candidates per text; `config.rerank_top_k` when None.

        Returns:
            `UniTriMSimilarityOutput` with the two-stage `logits` (num_texts, num_videos) and the coarse
            `sentence_video` score in `alignment_scores`.
        """
        if self.text_gated_interaction is None:
            raise ValueError("two_stage_similarity needs a model with config.text_gated_interaction=True (eercf).")
        units = self._text_gated_units(visual_features)
        top_k = self.config.rerank_top_k if top_k is None else top_k
        scale = self.exp_logit_scale()
        sentences = text_features.sentence_embeds
        coarse = l2_normalize(sentences) @ self.text_gated_interaction.global_weight @ units.video.T

        per_text = units.patches.shape[1] * units.video.shape[0]  # the patch cosines of one text, every video
        text_block = max(1, DEFAULT_MAX_BLOCK_ELEMENTS // per_text)

        def candidate_fine_scores(candidates: torch.Tensor) -> torch.Tensor:
            rows = [
                fine_score(self.text_gated_interaction.candidate_scores(
                    sentences[start : start + text_block], units, candidates[start : start + text_block]
                ))
                for start in range(0, len(candidates), text_block)
            ]
            return scale * torch.cat(rows)

        logits = two_stage_scores(scale * coarse, top_k, candidate_fine_scores)
        return UniTriMSimilarityOutput(logits=logits, alignment_scores={"sentence_video": coarse})

    # ------------------------------------------------------------------ forward

    @can_return_tuple
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
        return_loss: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> UniTriMOutput | tuple:
        """
        Encode captions with their videos (B, T, 3, H, W) and/or keyframe images (B, 3, H, W) and score them.

        Without `return_loss`, the logits are all texts against all videos (and images) of the batch. With
        `return_loss=True`, row i of the texts is paired with row i of the videos and images, the features are
        gathered across processes and the output holds `loss`, `losses` and the local texts' logits against the
        gathered visuals.

        Keyword arguments: transformers' `output_hidden_states`, `output_attentions` (the towers' states and
        attention weights, in the feature outputs) and `return_dict` (`config.return_dict` when not given).
        """
        if pixel_values_videos is None and pixel_values is None:
            raise ValueError("Pass `pixel_values_videos` (B, T, 3, H, W), `pixel_values` (B, 3, H, W) or both.")
        text_features = self.get_text_features(
            input_ids, attention_mask, triplet_input_ids, triplet_attention_mask, triplet_mask, return_dict=True,
            **kwargs,
        )
        video_features = (
            self.get_video_features(pixel_values_videos, video_mask, return_dict=True, **kwargs)
            if pixel_values_videos is not None
            else None
        )
        image_features = (
            self.get_image_features(pixel_values, return_dict=True, **kwargs) if pixel_values is not None else None
        )
        if return_loss:
            return self._training_output(text_features, video_features, image_features)
        # Built at once: a ModelOutput's order (what `to_tuple()` and `output[0]` give) is the order fields are set.
        videos = None if video_features is None else self.similarity(text_features, video_features, max_block_elements=None)
        images = None if image_features is None else self.similarity(text_features, image_features, max_block_elements=None)
        return UniTriMOutput(
            logits_per_text_video=None if videos is None else videos.logits,
            logits_per_text_image=None if images is None else images.logits,
            alignment_scores=None if videos is None else videos.alignment_scores,
            text_features=text_features,
            video_features=video_features,
            image_features=image_features,
        )

    def _training_output(
        self,
        text_features: UniTriMTextFeatures,
        video_features: UniTriMVisualFeatures | None,
        image_features: UniTriMVisualFeatures | None,
    ) -> UniTriMOutput:
        """The loss of row-paired texts and visuals, with the local texts' logits against the gathered visuals."""
        sizes = {"input_ids": text_features.batch_size}
        if video_features is not None:
            sizes["pixel_values_videos"] = video_features.batch_size
        if image_features is not None:
            sizes["pixel_values"] = image_features.batch_size
        check_same_batch_size(sizes)
        if self.text_gated_interaction is not None and video_features is not None:
            return self._text_gated_training_output(text_features, video_features, image_features)
        video_logits, image_logits = contrastive_logits(
            self.scorer, self.exp_logit_scale(), text_features, (video_features, image_features)
        )
        loss, losses = self.criterion(text_features, video_logits, image_logits)
        return UniTriMOutput(
            loss=loss,
            logits_per_text_video=None if video_logits is None else video_logits.per_text,
            logits_per_text_image=None if image_logits is None else image_logits.per_text,
            losses=losses,
            text_features=text_features,
            video_features=video_features,
            image_features=image_features,
        )


    def _text_gated_training_output(
        self,
        text_features: UniTriMTextFeatures,
        video_features: UniTriMVisualFeatures,
        image_features: UniTriMVisualFeatures | None,
    ) -> UniTriMOutput:
        """EERCF's loss over the global batch (`eercf_loss`, the features gathered across processes, as EERCF does),
        plus the keyframe term as the other presets compute it; the local texts' weak logits."""
        all_texts, offset = gather_features(text_features)
        all_videos, _ = gather_features(video_features)
        scale = self.exp_logit_scale()
        scores, paired_visual = self._text_gated_scores(all_texts, all_videos, paired=True)
        loss, losses = eercf_loss(
            scores, scale, l2_normalize(all_texts.sentence_embeds), paired_visual, self.config.pearson_loss_weight
        )
        image_logits = None
        if image_features is not None:
            (image_logits,) = contrastive_logits(self.scorer, scale, text_features, (image_features,))
            losses["text_image"] = contrastive_loss(image_logits)
            loss = loss + self.config.image_loss_weight * losses["text_image"]
        local = slice(offset, offset + text_features.batch_size)
        return UniTriMOutput(
            loss=loss,
            logits_per_text_video=(scale * weighted_sum(scores, EERCF_WEAK_WEIGHTS))[local],
            logits_per_text_image=None if image_logits is None else image_logits.per_text,
            losses=losses,
            text_features=text_features,
            video_features=video_features,
            image_features=image_features,
        )


# Saved folders carry their modeling code (auto_map), so they also load with trust_remote_code=True where the
# package is not installed.
UniTriMModel.register_for_auto_class("AutoModel")

__all__ = ["UniTriMModel", "UniTriMPreTrainedModel"]
