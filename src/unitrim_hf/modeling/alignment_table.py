"""The MGSA alignment table, defined once: each alignment's name, the text and visual granularity it compares, and
the feature fields each granularity reads.

Plain data (no torch), so that the configuration, the scorer, the loss's cross-process gathering and the
command-line checks all derive from this one table. `mgsa_scorer` turns each granularity into units and scores them.
"""

from __future__ import annotations

# Text granularity -> the `UniTriMTextFeatures` fields it reads.
TEXT_GRANULARITY_FIELDS: dict[str, tuple[str, ...]] = {
    "sentence": ("pooler_output",),  # the sentence feature (also `sentence_embeds`)
    "triplet": ("triplet_embeds", "triplet_mask"),
    "word": ("word_embeds", "word_mask"),
    # The one text feature matched against still images: t_sp with the disentangler, t without it.
    "image_text": ("combined_embeds", "spatial_embeds"),
}
# Visual granularity -> the `UniTriMVisualFeatures` fields it reads.
VISUAL_GRANULARITY_FIELDS: dict[str, tuple[str, ...]] = {
    "video": ("pooler_output",),  # the video embedding (also `video_embeds`)
    "frame": ("frame_embeds", "video_mask"),
    "patch": ("patch_embeds", "video_mask"),
    "image": ("pooler_output",),  # the image embedding
    # UCoFiA's: the [CLS] and selected patch tokens of every frame, not normalized.
    "token": ("token_embeds", "video_mask"),
}

# Text-video alignment -> (text granularity, visual granularity). `config.alignments` names a subset.
ALIGNMENT_GRANULARITIES: dict[str, tuple[str, str]] = {
    "sentence_video": ("sentence", "video"),
    "sentence_frame": ("sentence", "frame"),
    "triplet_frame": ("triplet", "frame"),
    "word_frame": ("word", "frame"),
    "word_patch": ("word", "patch"),
    "word_video": ("word", "video"),
    # TS2-Net's: the sentence against the frames, pooled with softmax weights of the normalized similarities.
    "sentence_frame_softmax": ("sentence", "frame"),
    # UCoFiA's three levels (`interactive_similarity_aggregation`).
    "sentence_video_bilinear": ("sentence", "video"),
    "sentence_frame_isa": ("sentence", "frame"),
    "word_token_isa": ("word", "token"),
}
ALL_ALIGNMENTS = tuple(ALIGNMENT_GRANULARITIES)
# UniTriM's five (the paper's MGSA); `word_video` serves the X-CLIP preset, `sentence_frame_softmax` TS2-Net's.
UNITRIM_ALIGNMENTS = ("sentence_video", "sentence_frame", "triplet_frame", "word_frame", "word_patch")

# Alignments that pool in their own way (`frame_softmax_pooling`) instead of by attention over the similarity
# matrix; they always mask padding, have no AOSM matrices and ignore `aggregation_temperature`.
FRAME_SOFTMAX_ALIGNMENTS = ("sentence_frame_softmax",)

# UCoFiA's alignments: they carry learnable ISA matrices (`interactive_similarity_aggregation.ISAWeights`).
ISA_ALIGNMENTS = ("sentence_video_bilinear", "sentence_frame_isa", "word_token_isa")

# Alignments whose scores enter the logits as they are, without the logit scale (UCoFiA's patch-word level): the
# logits are `mean(logit_scale * score, ..., score of these, ...)`.
UNSCALED_ALIGNMENTS = ("word_token_isa",)

# A still image is scored by this single alignment: one text feature against CLIP's image embedding.
IMAGE_ALIGNMENT = "text_image"
IMAGE_ALIGNMENT_GRANULARITIES = ("image_text", "image")


def _fields_read(granularities: list[str], table: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(field for name in granularities for field in table[name]))


_EVERY_PAIR = [*ALIGNMENT_GRANULARITIES.values(), IMAGE_ALIGNMENT_GRANULARITIES]
# Every field any alignment reads, in a fixed order (processes gathering features must agree on it).
SCORED_TEXT_FIELDS = _fields_read([text for text, _ in _EVERY_PAIR], TEXT_GRANULARITY_FIELDS)
SCORED_VISUAL_FIELDS = _fields_read([visual for _, visual in _EVERY_PAIR], VISUAL_GRANULARITY_FIELDS)


def text_granularity_of(alignment: str) -> str:
    """The text granularity `alignment` compares (`"word_patch"` -> `"word"`)."""
    return ALIGNMENT_GRANULARITIES[alignment][0]


def visual_granularity_of(alignment: str) -> str:
    """The visual granularity `alignment` compares (`"word_patch"` -> `"patch"`)."""
    return ALIGNMENT_GRANULARITIES[alignment][1]
