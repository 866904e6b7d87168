"""Configuration of UniTriM: CLIP text and vision towers plus the switches of every UniTriM module."""

from __future__ import annotations

import dataclasses
import difflib
import json
from pathlib import Path
from typing import Any

from transformers import CLIPTextConfig, CLIPVisionConfig, PretrainedConfig

ALL_ALIGNMENTS = ("sentence_video", "sentence_frame", "triplet_frame", "word_frame", "word_patch", "word_video")
UNITRIM_ALIGNMENTS = ("sentence_video", "sentence_frame", "triplet_frame", "word_frame", "word_patch")

# Which text and visual granularity each alignment compares.
ALIGNMENT_GRANULARITIES = {
    "sentence_video": ("sentence", "video"),
    "sentence_frame": ("sentence", "frame"),
    "triplet_frame": ("triplet", "frame"),
    "word_frame": ("word", "frame"),
    "word_patch": ("word", "patch"),
    "word_video": ("word", "video"),
}

PRESET_DIRECTORY = Path(__file__).resolve().parent / "presets"


class UniTriMConfig(PretrainedConfig):
    r"""
    Configuration of [`UniTriMModel`].

    Args:
        text_config (`dict` or `CLIPTextConfig`): the CLIP text tower.
        vision_config (`dict` or `CLIPVisionConfig`): the CLIP vision tower.
        projection_dim (`int`, defaults to 512): the joint embedding size D.
        logit_scale_init_value (`float`, defaults to 2.6592): initial log of the logit scale (CLIP's ln(1/0.07)).
        alignments (`list[str]`): the enabled MGSA alignments, a subset of `ALL_ALIGNMENTS`; the logits are
            `logit_scale * mean(enabled alignments)`.
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
    """

    model_type = "unitrim"
    sub_configs_defaults = {"text_config": CLIPTextConfig, "vision_config": CLIPVisionConfig}

    text_config: dict | CLIPTextConfig | None = None
    vision_config: dict | CLIPVisionConfig | None = None
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

    def __post_init__(self, **kwargs: Any) -> None:
        if self.alignments is None:
            self.alignments = list(UNITRIM_ALIGNMENTS)
        self.alignments = list(self.alignments)
        super().__post_init__(**kwargs)
        self.validate_switches()

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
        return any(ALIGNMENT_GRANULARITIES[name][0] == "word" for name in self.alignments) or self.use_disentangler

    @property
    def uses_patches(self) -> bool:
        return self.patch_top_k > 0 and "word_patch" in self.alignments

    @classmethod
    def available_presets(cls) -> list[str]:
        """Names accepted by `from_preset`."""
        return sorted(path.stem for path in PRESET_DIRECTORY.glob("*.json"))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "UniTriMConfig":
        """
        Build a configuration from a preset shipped with the package: `unitrim`, `xclip`, `clip4clip-meanp`
        (CLIP ViT-B/32 sizes) and their `-tiny` variants (small towers for tests).

        Keyword arguments override preset fields, e.g. `from_preset("unitrim", patch_top_k=4)`; a key that is not a
        field of the configuration raises `ValueError` naming it (it would otherwise be stored beside the real one).
        """
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            hints = [
                f"{key!r}" + "".join(f" (did you mean {match!r}?)" for match in difflib.get_close_matches(key, known, n=1))
                for key in unknown
            ]
            raise ValueError(f"Unknown {cls.__name__} field {', '.join(hints)} in the overrides of preset {name!r}.")
        path = PRESET_DIRECTORY / f"{name}.json"
        if not path.is_file():
            if not PRESET_DIRECTORY.is_dir():
                raise FileNotFoundError(
                    f"Presets are shipped with the unitrim_hf package ({PRESET_DIRECTORY} is missing); "
                    "`pip install unitrim_hf` to use `from_preset`."
                )
            raise ValueError(f"Unknown preset {name!r}; choose from {cls.available_presets()}.")
        settings = json.loads(path.read_text())
        for key in ("text_config", "vision_config"):
            if key in overrides and isinstance(overrides[key], dict):
                settings[key] = {**settings.get(key, {}), **overrides.pop(key)}
        settings.update(overrides)
        return cls(**settings)


UniTriMConfig.register_for_auto_class()  # saved configs name their code (auto_map) for trust_remote_code loading
