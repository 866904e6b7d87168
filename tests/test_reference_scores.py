"""Scores and losses of every preset equal stored reference values (a guard for refactors of the scoring code).

Each preset's model gets weights that depend only on the parameter names (not on the order modules are built in),
is fed the seeded inputs of `model_inputs`, and its text-video and text-image logits, per-alignment scores, tiled
`similarity` and training loss are compared with `data/reference_scores.json` within 1e-5.

Regenerate the file only for an intended change of the scores: `python tests/test_reference_scores.py --write`.
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_inputs import random_image_inputs, random_text_inputs, random_video_inputs  # noqa: E402

from unitrim_hf import UniTriMConfig, UniTriMModel  # noqa: E402

REFERENCE_FILE = Path(__file__).resolve().parent / "data" / "reference_scores.json"
# The head every preset had before the X-CLIP head (AOSM matrices, CLIP frames, plain temporal encoder, X-CLIP's
# padding) came in: its stored scores stay pinned.
SIMPLE_HEAD = {
    "aosm": False, "frame_alignment_features": "temporal", "temporal_residual": "gated", "temporal_hidden_act": "gelu",
    "temporal_layer_norm_eps": 1e-5, "max_frame_positions": 128, "mask_padding": True, "image_text_feature": "combined",
}
CASES = {
    "unitrim-tiny": ("unitrim-tiny", {}),
    "unitrim-tiny-no-disentangler": ("unitrim-tiny", {"use_disentangler": False}),
    "xclip-tiny": ("xclip-tiny", {}),
    "clip4clip-meanp-tiny": ("clip4clip-meanp-tiny", {}),
    "clip4clip-seqtransf-tiny": ("clip4clip-seqtransf-tiny", {}),
    "unitrim-simple-head-tiny": ("unitrim-simple-head-tiny", {}),
    "unitrim-simple-head-tiny-no-disentangler": ("unitrim-simple-head-tiny", {"use_disentangler": False}),
    "xclip-tiny-simple-head": ("xclip-tiny", SIMPLE_HEAD),
}
TOLERANCE = 1e-5


def model_with_named_weights(preset: str, overrides: dict) -> UniTriMModel:
    """A model whose every parameter is drawn from a generator seeded by its name (norm weights around 1)."""
    model = UniTriMModel(UniTriMConfig.from_preset(preset, **overrides)).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
            value = 0.1 * torch.randn(parameter.shape, generator=generator)
            if parameter.dim() == 1 and name.endswith("weight"):
                value += 1.0
            parameter.copy_(value)
        model.logit_scale.fill_(2.6592)
        if model.disentangler is not None:
            # The stored values predate the spatial gate; g = 1 computes the former t̂ + MLP_sp(t̂) exactly.
            model.disentangler.spatial_gate.fill_(1.0)
    return model


def reference_values(case: str) -> dict[str, list]:
    """Every score of one case, as nested lists."""
    preset, overrides = CASES[case]
    model = model_with_named_weights(preset, overrides)
    config = model.config
    text, video, image = random_text_inputs(config), random_video_inputs(config), random_image_inputs(config)
    values: dict[str, list] = {}
    with torch.no_grad():
        output = model(**text, **video, **image)
        values["logits_per_text_video"] = output.logits_per_text_video.tolist()
        values["logits_per_text_image"] = output.logits_per_text_image.tolist()
        for name, score in output.alignment_scores.items():
            values[f"video/{name}"] = score.tolist()
        tiled = model.similarity(output.text_features, output.image_features, text_block_size=2, visual_block_size=2)
        for name, score in tiled.alignment_scores.items():
            values[f"image/{name}"] = score.tolist()
        tiled = model.similarity(output.text_features, output.video_features, text_block_size=2, visual_block_size=2)
        values["tiled_logits_per_text_video"] = tiled.logits.tolist()
        training = model(**text, **video, **image, return_loss=True)
        values["loss"] = training.loss.item()
        for name, loss in training.losses.items():
            values[f"losses/{name}"] = loss.item()
    return values


@pytest.mark.parametrize("case", list(CASES))
def test_scores_equal_the_stored_reference(case: str) -> None:
    expected = json.loads(REFERENCE_FILE.read_text())[case]
    actual = reference_values(case)
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        torch.testing.assert_close(
            torch.tensor(actual[key], dtype=torch.float64), torch.tensor(value, dtype=torch.float64),
            rtol=0, atol=TOLERANCE, msg=lambda message, key=key: f"{case} {key}: {message}",
        )


if __name__ == "__main__":
    if not sys.argv[1:] or sys.argv[1] != "--write":
        sys.exit(
            "usage: python tests/test_reference_scores.py --write [CASE ...]  (overwrites the stored reference scores "
            "of the cases named, all when none is)"
        )
    stored = json.loads(REFERENCE_FILE.read_text()) if REFERENCE_FILE.is_file() else {}
    for case in sys.argv[2:] or list(CASES):
        stored[case] = reference_values(case)
    REFERENCE_FILE.write_text(json.dumps({case: stored[case] for case in CASES}, indent=1) + "\n")
    print(f"wrote {REFERENCE_FILE}")
