"""UniTriM's own configuration fields (every field of `UniTriMConfig` but the two CLIP towers), as a plain dataclass.

`UniTriMConfig` inherits them, so they are declared once, here. This module imports neither torch nor
transformers: the command-line tools check `--config_overrides` against these fields before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .alignment_table import ALL_ALIGNMENTS, ISA_ALIGNMENTS, UNITRIM_ALIGNMENTS, text_granularity_of

# The fields `UniTriMConfig` adds to these: the CLIP towers' nested configurations.
TOWER_CONFIG_FIELDS = ("text_config", "vision_config")


# The switches that take one of a few names.
SWITCH_CHOICES: dict[str, tuple[str, ...]] = {
    "frame_alignment_features": ("temporal", "clip"),
    "temporal_residual": ("gated", "plain"),
    "temporal_hidden_act": ("gelu", "quick_gelu"),
    "image_text_feature": ("combined", "sentence"),
    "token_selection_eval": ("perturbed", "hard"),
    "token_selection_mask": ("per_frame", "tiled"),
    "token_selection_output": ("temporal_encoder", "token_embeds"),
}


@dataclass(kw_only=True, eq=False, repr=False)
class UniTriMSwitches:
    r"""
    The switches and sizes of every UniTriM module, and the loss weights.

    Args:
        projection_dim (`int`, defaults to 512): the joint embedding size D.
        logit_scale_init_value (`float`, defaults to 2.6592): initial log of the logit scale (CLIP's ln(1/0.07)).
        alignments (`list[str]`): the enabled MGSA alignments, a subset of `ALL_ALIGNMENTS`; the logits are
            `logit_scale * mean(enabled alignments)`. Default: UniTriM's five.
        num_temporal_layers (`int`, defaults to 4): transformer layers of the temporal encoder; 0 switches it off.
        temporal_num_attention_heads (`int`, defaults to 8): heads of each temporal layer.
        max_frame_positions (`int`, defaults to 128): number of frame position embeddings (longest video in frames).
        patch_top_k (`int`, defaults to 6): patches kept per frame; 0 switches patch selection off.
        patch_scorer_hidden_dim (`int`, defaults to 128): hidden width of the patch scorer.
        patch_selection_temperature (`float`, defaults to 1.0): softmax temperature of the straight-through
            top-K used in training.
        use_triplets (`bool`, defaults to True): encode the caption's (subject, predicate, object) phrases.
        max_triplets (`int`, defaults to 4): triplets per caption M.
        max_triplet_length (`int`, defaults to 16): tokens per triplet phrase.
        use_disentangler (`bool`, defaults to True): split the text into a spatial and a temporal part.
        disentangler_hidden_dim (`int`, defaults to 512): hidden width of the disentangler encoders and decoder.
        reconstruction_loss_weight (`float`, defaults to 1.0): lambda_rec.
        orthogonality_loss_weight (`float`, defaults to 0.1): lambda_orth.
        image_loss_weight (`float`, defaults to 1.0): weight of the text-keyframe contrastive loss.
        aggregation_temperature (`float`, defaults to 0.01): temperature of the attention-over-similarity-matrix
            pooling of the fine-grained alignments.
        aosm (`bool`, defaults to False): X-CLIP's learnable attention-over-similarity-matrix weights (`aosm`
            module): eight identity-initialized matrices on the `sentence_video`, `word_video`, `sentence_frame` and
            `word_frame` alignments. They tie the model to `max_words` and `max_frames`: shorter inputs are padded
            to them, longer ones refused.
        max_words (`int`, defaults to 32): L, the text positions of the AOSM matrices (the tokenizer's
            `max_length`); read only with `aosm`.
        max_frames (`int`, defaults to 12): T, the frame slots of the AOSM matrices; read only with `aosm`.
        frame_alignment_features (`str`, defaults to `"temporal"`): the frame features the frame-level
            alignments (and `triplet_frame`) read: `"temporal"`, the temporally encoded frames, or `"clip"`, CLIP's
            projected frame features (X-CLIP's `use_original_clip_for_frame_features`). The video embedding
            always pools the encoded frames.
        temporal_residual (`str`, defaults to `"gated"`): the temporal encoder's form: `"gated"`,
            `f + proj(LN(layers(f + pos)))` with a zero-initialized `proj` (the identity at initialization), or
            `"plain"`, `f + layers(f + pos)` (CLIP4Clip's seqTransf and X-CLIP).
        temporal_intermediate_size (`int`, optional): the temporal layers' MLP width; 4 x `projection_dim` when
            None. `from_clip` sets it to the CLIP text tower's for the `"plain"` encoder it initializes from CLIP.
        temporal_hidden_act (`str`, defaults to `"gelu"`): the temporal layers' activation, `"gelu"` or
            `"quick_gelu"` (CLIP's and X-CLIP's).
        temporal_layer_norm_eps (`float`, defaults to 1e-5): the temporal layers' LayerNorm epsilon (X-CLIP: 1e-12).
        mask_padding (`bool`, defaults to True): mask padded word positions and frame slots out of the alignments'
            softmax poolings. False is X-CLIP's computation: its softmaxes run over every one of the `max_words`
            token positions (SOT, EOT and padding, the text tower seeing only its causal mask and padding id 0)
            and every frame slot (padded frames, zero pixels, run through the vision tower); only the video mean
            uses the mask. Triplets and patches are always masked.
        image_text_feature (`str`, defaults to `"combined"`): the text feature matched against still images
            without the disentangler: `"combined"`, `t = s + mean(r) + mean(w)`, or `"sentence"`, `s` (the
            paper's adaptation of its baselines, §4.3). With the disentangler it is always `t_sp`.
        initializer_range (`float`, defaults to 0.02): standard deviation of the normal initialization of new
            linear and embedding layers.
        initializer_factor (`float`, defaults to 1.0): scale of the projections' initialization (as CLIP's).
        token_shift_layers (`list[int]`, optional): TS2-Net's token shift (`token_shift`): the vision encoder layers
            (0-based) whose attention input exchanges whole patch tokens with the neighbouring frames (TS2-Net: 10
            and 11 of ViT-B/32's 12). None or empty: off, CLIP's features. With it, every video is padded to
            `max_frames` slots of zero pixels, all of which go through the tower.
        token_shift_divisor (`int`, defaults to 7): the shifted tokens repeat every `tokens // token_shift_divisor`
            positions (7 for ViT-B/32's 50 tokens): from the previous frame at 1, 8, 15, ..., from the next frame at
            4, 11, 18, ... (`token_shift.shift_tokens`).
        token_selection_top_k (`int`, defaults to 0): TS2-Net's token selection (`token_selection`): patch tokens
            kept per frame besides [CLS] (TS2-Net: 3); the [CLS] and kept tokens of all frames go through the
            temporal encoder together and its output at the [CLS] positions are the frame features. 0: off.
        token_selection_samples (`int`, defaults to 500): S, noisy copies of the perturbed top-K.
        token_selection_sigma (`float`, defaults to 0.05): σ, the perturbation's standard deviation.
        token_selection_eval (`str`, defaults to `"perturbed"`): the selection outside training: `"perturbed"`,
            sampled as in training (TS2-Net's evaluation), or `"hard"`, the deterministic top-K (σ → 0).
        token_selection_mask (`str`, defaults to `"per_frame"`): the padding mask of the kept tokens in the
            temporal encoder: `"per_frame"`, each token has its frame's mask, or `"tiled"`, TS2-Net's code: the
            T frame masks repeated 1 + K times as a whole, so token position j (frame j // (1 + K)) gets the mask
            of frame j mod T, and the frames' scores use the mask at their [CLS] positions. The two agree on
            videos without padding.
        image_as_pseudo_video (`bool`, defaults to False): match still images as videos of `max_frames` copies of
            the image through the video side (the paper's §4.3 for TS2-Net and UCoFiA), instead of CLIP's image
            embedding against `image_text_embeds`.
        token_selection_output (`str`, defaults to `"temporal_encoder"`): where the kept tokens of token selection
            go: `"temporal_encoder"` (TS2-Net, above) or `"token_embeds"` (UCoFiA): [CLS] and the K kept tokens of
            every frame become the video's `token_embeds` (B, T, 1 + K, D), read by the `word_token_isa`
            alignment, and the temporal encoder runs on the frame features as without selection.
        isa_token_transform_in_eval (`bool`, defaults to False): with UCoFiA's alignments (`isa` module), whether
            `local_mat_weight1` multiplies the tokens outside training too. UCoFiA's evaluation code leaves it out
            (its training code applies it); True scores as in training.
        text_gated_interaction (`bool`, defaults to False): EERCF's text-gated interaction block
            (`text_gated_interaction`) scores videos instead of the alignments: five sentence scores against the
            video, CLIP's frames and every patch, two of them on visual features the text re-pools, with EERCF's
            loss (`eercf_loss`). Videos are padded to `max_frames` slots of zero pixels, all of which go through
            the tower. Still images keep the `text_image` score.
        pearson_loss_weight (`float`, defaults to 0.001): the weight of EERCF's intra-feature Pearson constraint;
            read only with `text_gated_interaction`.
        rerank_top_k (`int`, defaults to 0): EERCF's two-stage evaluation: each text's top-k videos by the coarse
            `sentence_video` score are re-ranked by the fine score (`two_stage_retrieval`), the rest keep their
            coarse order (EERCF: 50). 0: every video by the fine score. Needs `text_gated_interaction`.
    """

    projection_dim: int = 512
    logit_scale_init_value: float = 2.6592
    alignments: list[str] | None = None
    num_temporal_layers: int = 4
    temporal_num_attention_heads: int = 8
    max_frame_positions: int = 128
    patch_top_k: int = 6
    patch_scorer_hidden_dim: int = 128
    patch_selection_temperature: float = 1.0
    use_triplets: bool = True
    max_triplets: int = 4
    max_triplet_length: int = 16
    use_disentangler: bool = True
    disentangler_hidden_dim: int = 512
    reconstruction_loss_weight: float = 1.0
    orthogonality_loss_weight: float = 0.1
    image_loss_weight: float = 1.0
    aggregation_temperature: float = 0.01
    aosm: bool = False
    max_words: int = 32
    max_frames: int = 12
    frame_alignment_features: str = "temporal"
    temporal_residual: str = "gated"
    temporal_intermediate_size: int | None = None
    temporal_hidden_act: str = "gelu"
    temporal_layer_norm_eps: float = 1e-5
    mask_padding: bool = True
    image_text_feature: str = "combined"
    initializer_range: float = 0.02
    initializer_factor: float = 1.0
    token_shift_layers: list[int] | None = None
    token_shift_divisor: int = 7
    token_selection_top_k: int = 0
    token_selection_samples: int = 500
    token_selection_sigma: float = 0.05
    token_selection_eval: str = "perturbed"
    token_selection_mask: str = "per_frame"
    image_as_pseudo_video: bool = False
    token_selection_output: str = "temporal_encoder"
    isa_token_transform_in_eval: bool = False
    text_gated_interaction: bool = False
    pearson_loss_weight: float = 0.001
    rerank_top_k: int = 0

    def fill_default_alignments(self) -> None:
        """`alignments` as a list, UniTriM's five when None."""
        self.alignments = list(UNITRIM_ALIGNMENTS if self.alignments is None else self.alignments)

    def validate_switches(self) -> None:
        """Raise `ValueError` when the switches contradict each other (e.g. `word_patch` without patches)."""
        unknown = [name for name in self.alignments if name not in ALL_ALIGNMENTS]
        if unknown:
            raise ValueError(f"Unknown alignments {unknown}; choose from {list(ALL_ALIGNMENTS)}.")
        if not self.alignments:
            raise ValueError("`alignments` must name at least one alignment.")
        if len(set(self.alignments)) != len(self.alignments):
            raise ValueError(f"`alignments` lists a name twice: {self.alignments}.")
        if "word_patch" in self.alignments and self.patch_top_k <= 0:
            raise ValueError("The `word_patch` alignment needs `patch_top_k` > 0.")
        if "triplet_frame" in self.alignments and not self.use_triplets:
            raise ValueError("The `triplet_frame` alignment needs `use_triplets=True`.")
        if self.use_triplets and self.max_triplets < 1:
            raise ValueError("`max_triplets` must be >= 1 when `use_triplets=True`.")
        if self.num_temporal_layers < 0:
            raise ValueError("`num_temporal_layers` must be >= 0.")
        if self.num_temporal_layers and self.projection_dim % self.temporal_num_attention_heads:
            raise ValueError(
                f"`projection_dim` ({self.projection_dim}) must be divisible by "
                f"`temporal_num_attention_heads` ({self.temporal_num_attention_heads})."
            )
        if self.aggregation_temperature <= 0:
            raise ValueError("`aggregation_temperature` must be > 0.")
        for name, allowed in SWITCH_CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"`{name}` must be one of {list(allowed)}, got {getattr(self, name)!r}.")
        if self.token_shift_layers and (
            not isinstance(self.token_shift_layers, (list, tuple))
            or not all(isinstance(index, int) and index >= 0 for index in self.token_shift_layers)
        ):
            raise ValueError(f"`token_shift_layers` must be a list of layer indices >= 0, got {self.token_shift_layers!r}.")
        if self.token_shift_divisor < 1:
            raise ValueError(f"`token_shift_divisor` must be >= 1, got {self.token_shift_divisor}.")
        if self.token_selection_top_k < 0:
            raise ValueError(f"`token_selection_top_k` must be >= 0, got {self.token_selection_top_k}.")
        if self.token_selection_top_k and (self.token_selection_samples < 1 or self.token_selection_sigma <= 0):
            raise ValueError(
                "Token selection needs `token_selection_samples` >= 1 and `token_selection_sigma` > 0, got "
                f"{self.token_selection_samples} and {self.token_selection_sigma}."
            )
        if (self.token_shift_layers or self.image_as_pseudo_video) and self.max_frames < 1:
            raise ValueError(f"Token shift and pseudo-videos need `max_frames` >= 1, got {self.max_frames}.")
        if self.text_gated_interaction and self.max_frames < 1:
            raise ValueError(f"`text_gated_interaction` needs `max_frames` >= 1, got {self.max_frames}.")
        if self.rerank_top_k < 0 or (self.rerank_top_k and not self.text_gated_interaction):
            raise ValueError(
                f"`rerank_top_k` must be >= 0 and needs `text_gated_interaction=True`, got {self.rerank_top_k}."
            )
        if "word_token_isa" in self.alignments and not (
            self.token_selection_top_k > 0 and self.token_selection_output == "token_embeds"
        ):
            raise ValueError(
                "The `word_token_isa` alignment needs token selection into the token features: "
                "`token_selection_top_k` > 0 and `token_selection_output='token_embeds'`."
            )
        if self.has_fixed_lengths and (self.max_words < 2 or self.max_frames < 1):
            raise ValueError(
                f"`aosm` and UCoFiA's ISA matrices need `max_words` >= 2 and `max_frames` >= 1, got {self.max_words} "
                f"and {self.max_frames}."
            )

    @property
    def uses_words(self) -> bool:
        """Whether the model encodes word features (an alignment reads them, or the disentangler's `t` does)."""
        return any(text_granularity_of(name) == "word" for name in self.alignments) or self.use_disentangler

    @property
    def uses_isa(self) -> bool:
        """Whether the model has UCoFiA's ISA matrices (one of its alignments is enabled)."""
        return any(name in ISA_ALIGNMENTS for name in self.alignments)

    @property
    def has_fixed_lengths(self) -> bool:
        """Whether learnable matrices tie the model to `max_words` and `max_frames` (X-CLIP's AOSM, UCoFiA's
        ISA): inputs are padded to them, longer ones refused."""
        return self.aosm or self.uses_isa

    @property
    def uses_patches(self) -> bool:
        """Whether the model selects patches (`word_patch` is enabled and `patch_top_k` > 0)."""
        return self.patch_top_k > 0 and "word_patch" in self.alignments


def config_field_names() -> frozenset[str]:
    """Every field of `UniTriMConfig`'s own: the towers and the switches (what `from_preset` overrides may name)."""
    return frozenset(item.name for item in fields(UniTriMSwitches)) | frozenset(TOWER_CONFIG_FIELDS)
