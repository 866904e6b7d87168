"""UniTriM's own configuration fields (every field of `UniTriMConfig` but the two CLIP towers), as a plain dataclass.

`UniTriMConfig` inherits them, so they are declared once, here. This module imports neither torch nor
transformers: the command-line tools check `--config_overrides` against these fields before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .alignment_table import ALL_ALIGNMENTS, UNITRIM_ALIGNMENTS, text_granularity_of

# The fields `UniTriMConfig` adds to these: the CLIP towers' nested configurations.
TOWER_CONFIG_FIELDS = ("text_config", "vision_config")


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
        initializer_range (`float`, defaults to 0.02): standard deviation of the normal initialization of new
            linear and embedding layers.
        initializer_factor (`float`, defaults to 1.0): scale of the projections' initialization (as CLIP's).
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
    initializer_range: float = 0.02
    initializer_factor: float = 1.0

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

    @property
    def uses_words(self) -> bool:
        """Whether the model encodes word features (an alignment reads them, or the disentangler's `t` does)."""
        return any(text_granularity_of(name) == "word" for name in self.alignments) or self.use_disentangler

    @property
    def uses_patches(self) -> bool:
        """Whether the model selects patches (`word_patch` is enabled and `patch_top_k` > 0)."""
        return self.patch_top_k > 0 and "word_patch" in self.alignments


def config_field_names() -> frozenset[str]:
    """Every field of `UniTriMConfig`'s own: the towers and the switches (what `from_preset` overrides may name)."""
    return frozenset(item.name for item in fields(UniTriMSwitches)) | frozenset(TOWER_CONFIG_FIELDS)
