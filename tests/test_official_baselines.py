"""The `xclip`, `clip4clip-seqtransf` and `clip4clip-meanp` heads reproduce their official code.

The fixtures in `fixtures/baselines/` hold inputs, weights and outputs of the official similarity heads of X-CLIP
(xuguohai/X-CLIP) and CLIP4Clip (ArrowLuo/CLIP4Clip), executed outside this project (their README says how: numbers
only, no code of theirs is here). Each test maps the official weights onto the library's modules, feeds the same
projected text and frame features, and compares the logits, the training loss and its gradients within 1e-5.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from unitrim_hf import UniTriMConfig, UniTriMModel
from unitrim_hf.modeling.aosm import AOSM_MATRIX_SIZES
from unitrim_hf.modeling.modeling_outputs import UniTriMTextFeatures

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "baselines"
TOLERANCE = 1e-5
# Official temporal-transformer names (CLIP's residual attention blocks) -> the library's.
BLOCK_NAMES = {
    "attn.in_proj_weight": "qkv_proj.weight",
    "attn.in_proj_bias": "qkv_proj.bias",
    "attn.out_proj.weight": "attention_out_proj.weight",
    "attn.out_proj.bias": "attention_out_proj.bias",
    "ln_1.weight": "attention_norm.weight",
    "ln_1.bias": "attention_norm.bias",
    "mlp.c_fc.weight": "mlp.0.weight",
    "mlp.c_fc.bias": "mlp.0.bias",
    "mlp.c_proj.weight": "mlp.2.weight",
    "mlp.c_proj.bias": "mlp.2.bias",
    "ln_2.weight": "mlp_norm.weight",
    "ln_2.bias": "mlp_norm.bias",
}


def temporal_head_name(official: str) -> str | None:
    """The library parameter of an official logit scale, frame position or temporal-transformer parameter, names
    that CLIP4Clip and every head built on its code share (None for any other tensor)."""
    if official == "clip.logit_scale":
        return "logit_scale"
    if official == "frame_position_embeddings.weight":
        return "temporal_encoder.frame_position_embedding.weight"
    if official.startswith("transformerClip.resblocks."):
        index, rest = official.removeprefix("transformerClip.resblocks.").split(".", 1)
        return f"temporal_encoder.layers.{index}.{BLOCK_NAMES[rest]}"
    return None


def library_name(official: str) -> str | None:
    """The library parameter an official head parameter maps to (None for an input or output tensor)."""
    if official in AOSM_MATRIX_SIZES:
        return f"aosm.{official}"
    return temporal_head_name(official)



def load_fixture(name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = FIXTURES / f"{name}.safetensors"
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    return load_file(str(path)), metadata


def head_model(preset: str, metadata: dict[str, str]) -> UniTriMModel:
    """The preset's head at the fixture's sizes (tiny towers: the fixtures start at the projected features)."""
    dim = int(metadata["D"])
    config = UniTriMConfig.from_preset(
        f"{preset}-tiny",
        projection_dim=dim,
        temporal_num_attention_heads=int(metadata["heads"]),
        num_temporal_layers=int(metadata.get("temporal_layers", 0)) if preset != "clip4clip-meanp" else 0,
        max_words=int(metadata.get("max_words", 32)),
        max_frames=int(metadata["max_frames"]),
    )
    return UniTriMModel(config).train()


def check_official_gradients(model: UniTriMModel, tensors: dict[str, torch.Tensor], inputs: dict[str, torch.Tensor],
                             name_of) -> set[str]:
    """Compare every `grad.<official name>` of the fixture with the gradient of that input (`inputs`) or of the
    parameter `name_of(official name)` after `backward()`; returns the official names checked."""
    parameters = dict(model.named_parameters())
    checked = set()
    for key, expected in tensors.items():
        if not key.startswith("grad."):
            continue
        official = key.removeprefix("grad.")
        actual = inputs[official].grad if official in inputs else parameters[name_of(official)].grad
        assert actual is not None, f"no gradient reaches {official}"
        close(actual, expected, f"gradient of {official}", rtol=TOLERANCE)
        checked.add(official)
    return checked

def load_official_weights(model: UniTriMModel, tensors: dict[str, torch.Tensor], name_of=None) -> list[str]:
    """Copy every official parameter in `tensors` into `model`, mapped by `name_of(official name)` (default
    `library_name`; None: not a parameter); returns the official names copied."""
    name_of = name_of or library_name
    parameters = dict(model.named_parameters())
    copied = []
    with torch.no_grad():
        for official, value in tensors.items():
            target = name_of(official)
            if target is None or official.startswith("grad."):
                continue
            assert target in parameters, f"{official} -> {target} is not a parameter of the model"
            parameters[target].copy_(value)
            copied.append(official)
    return copied


def features(model: UniTriMModel, tensors: dict[str, torch.Tensor]):
    """Text and video features of the fixture's projected inputs, with autograd on the inputs."""
    sentence = tensors["sequence_output"][:, 0].clone().requires_grad_(True)
    words = tensors["seq_features"].clone().requires_grad_(True) if "seq_features" in tensors else None
    frames = tensors["visual_output"].clone().requires_grad_(True)
    attention_mask = tensors["attention_mask"].bool()
    word_mask = attention_mask.clone()
    word_mask[:, 0] = False
    text = UniTriMTextFeatures(pooler_output=sentence, word_embeds=words, word_mask=word_mask)
    video = model.video_features_from_frames(frames, tensors["video_mask"].bool())
    return text, video, {"sequence_output": sentence, "seq_features": words, "visual_output": frames}


def close(actual: torch.Tensor, expected: torch.Tensor, what: str, rtol: float = 0.0) -> None:
    torch.testing.assert_close(
        actual.detach().reshape(expected.shape), expected, rtol=rtol, atol=TOLERANCE, msg=lambda m: f"{what}: {m}"
    )


CASES = [
    ("xclip", "xclip_head"),
    ("xclip", "xclip_head_padded"),
    ("clip4clip-seqtransf", "clip4clip_seqtransf"),
    ("clip4clip-seqtransf", "clip4clip_seqtransf_padded"),
    ("clip4clip-meanp", "clip4clip_meanp"),
    ("clip4clip-meanp", "clip4clip_meanp_padded"),
]


@pytest.mark.parametrize(("preset", "fixture"), CASES)
def test_logits_loss_and_gradients_equal_the_official_head(preset: str, fixture: str) -> None:
    tensors, metadata = load_fixture(fixture)
    model = head_model(preset, metadata)
    copied = load_official_weights(model, tensors)
    if preset == "xclip":
        assert sorted(name for name in copied if library_name(name).startswith("aosm.")) == sorted(AOSM_MATRIX_SIZES)
        # The fixture's matrices are not the identity, and its padded frames are not zero: both matter.
        assert all(not torch.equal(tensors[name], torch.eye(len(tensors[name]))) for name in AOSM_MATRIX_SIZES)
    text, video, inputs = features(model, tensors)
    with torch.no_grad():
        eval_logits = model.eval().similarity(text, video).logits  # tiled, as evaluation runs
    close(eval_logits, tensors["logits"], "logits (tiled)")
    output = model.train()._training_output(text, video, None)
    close(output.logits_per_text_video, tensors["logits"], "logits (training)")
    close(output.loss, tensors["loss"], "loss")
    output.loss.backward()
    parameters = dict(model.named_parameters())
    checked = 0
    for key, expected in tensors.items():
        if not key.startswith("grad."):
            continue
        official = key.removeprefix("grad.")
        if official in inputs:
            actual = inputs[official].grad
            if official == "sequence_output":
                expected = expected[:, 0]
        elif library_name(official) is not None:
            actual = parameters[library_name(official)].grad
        else:
            continue  # e.g. the gradient of the text tower's whole output, a sum of the two above
        assert actual is not None, f"no gradient reaches {official}"
        close(actual, expected, f"gradient of {official}")
        checked += 1
    assert checked >= 3


def test_temporal_encoder_equals_the_official_transformer() -> None:
    tensors, metadata = load_fixture("xclip_temporal_encoder")
    model = head_model("xclip", metadata)
    load_official_weights(model, tensors)
    frames = tensors["visual_output"].clone().requires_grad_(True)
    mask = tensors["video_mask"].bool()
    encoded = model.temporal_encoder(frames, mask)
    close(encoded, tensors["encoded"], "encoded frames (padded slots included)")
    (encoded * tensors["cotangent"]).sum().backward()
    # Gradients here reach ~20: 1e-5 relative is float32's precision at that size (the official code's own
    # float32-vs-float64 difference, in the fixture's metadata, is of that order).
    close(frames.grad, tensors["grad.visual_output"], "gradient of the frames", rtol=TOLERANCE)
    parameters = dict(model.named_parameters())
    for key, expected in tensors.items():
        if key.startswith("grad.transformerClip") or key == "grad.frame_position_embeddings.weight":
            close(parameters[library_name(key.removeprefix("grad."))].grad, expected, key, rtol=TOLERANCE)


def test_fixtures_name_the_official_commits() -> None:
    commits = {}
    for path in sorted(FIXTURES.glob("*.safetensors")):
        _, metadata = load_fixture(path.stem)
        commits[metadata["repo"]] = metadata["commit"]
    assert commits == {
        "xuguohai/X-CLIP": "6b5344f44537d758acb82d115b8484f7430f9fb0",
        "ArrowLuo/CLIP4Clip": "508ffa3de39ba0563a03199c440ab602a72e9b6f",
        "LiuRicky/ts2_net": "1d9d4d53d27057f29fbdba9c4c1586dbda294519",
        "Ziyang412/UCoFiA": "6098be26627e445f03de5dc0f4b1db74f55d39d3",
        "adxcreative/EERCF": "90f1d0757408ca6c48f1115a0d78d86ddb44f12c",
    }, json.dumps(commits)
