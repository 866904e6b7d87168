"""Model cards for UniTriM checkpoints: the packaged template filled with the config, data and metrics.

The template ships inside the package (`unitrim_hf/assets/model_card_template.md`) so that cards render
after `pip install`; `model_cards/unitrim_template.md` in the repository is an identical copy for
readers (a test keeps them equal). The YAML front matter is produced with `huggingface_hub.ModelCardData`,
so `model-index` is in the Hub's format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import metadata, resources
from typing import Any

import torch
from huggingface_hub import EvalResult, ModelCardData

from ..modeling.configuration_unitrim import UniTriMConfig
from ..remote_processor import RUNTIME_REQUIREMENTS

TEMPLATE_RESOURCE = "assets/model_card_template.md"
LIBRARY_NAME = "unitrim_hf"
# No Hub pipeline covers text-to-video retrieval; the model returns embeddings and scores.
PIPELINE_TAG = "feature-extraction"
BASE_TAGS = ["unitrim", "clip", "video-text-retrieval", "text-to-video-retrieval", "text-to-image-retrieval"]
DIRECTION_TASKS = {
    "text_to_video": ("text-to-video-retrieval", "Text-to-Video Retrieval"),
    "video_to_text": ("video-to-text-retrieval", "Video-to-Text Retrieval"),
    "text_to_image": ("text-to-image-retrieval", "Text-to-Image Retrieval"),
    "image_to_text": ("image-to-text-retrieval", "Image-to-Text Retrieval"),
}
METRIC_TYPES = {"R@1": "recall@1", "R@5": "recall@5", "R@10": "recall@10", "MdR": "median_rank", "MnR": "mean_rank"}
# Hub dataset ids of the public benchmarks (metadata only; nothing is downloaded).
DATASET_IDS = {"msrvtt": "msr-vtt", "msr-vtt": "msr-vtt", "msvd": "msvd", "didemo": "didemo", "synthetic": "synthetic-trim"}
# The license of the library (pyproject's Apache-2.0), as the Hub spells it.
LICENSE = "apache-2.0"


def _required_versions() -> dict[str, str]:
    """Distribution name -> the requirement this package declares for it (`"torch>=2.4"`), from its metadata."""
    try:
        declared = metadata.requires(LIBRARY_NAME) or []
    except metadata.PackageNotFoundError:
        declared = []
    plain = (requirement for requirement in declared if ";" not in requirement)  # extras' requirements left out
    return {re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower(): requirement for requirement in plain}


def remote_code_requirements() -> tuple[str, ...]:
    """What a saved folder's code imports when loaded with `trust_remote_code=True` without the package: the
    processor's run-time packages (`remote_processor.RUNTIME_REQUIREMENTS`: PyAV, Pillow, nltk, ...) and
    transformers, with the versions this package requires."""
    versions = _required_versions()
    names = sorted({"transformers", *RUNTIME_REQUIREMENTS.values()}, key=str.lower)
    return tuple(versions.get(name.lower(), name) for name in names)

# The config fields that distinguish the presets.
_SWITCHES = (
    "num_temporal_layers", "patch_top_k", "use_triplets", "use_disentangler", "token_shift_layers", "token_selection_top_k",
)
_MODULE_DESCRIPTIONS = {
    "triplets": "semantic triplets (subject, predicate, object) as a middle text granularity",
    "patch_selection": "top-K patch selection",
    "temporal_encoder": "temporal encoder over frame features",
    "disentangler": "text disentangler (spatial part for images, temporal part)",
}


def load_template() -> str:
    """The packaged model card template (Markdown with `{{placeholders}}`)."""
    return resources.files("unitrim_hf").joinpath(TEMPLATE_RESOURCE).read_text(encoding="utf-8")


def matching_preset(config: UniTriMConfig) -> str | None:
    """Name of the shipped preset whose switches and tower sizes equal `config`'s, or None (custom)."""
    for name in UniTriMConfig.available_presets():
        preset = UniTriMConfig.from_preset(name)
        same_switches = all(getattr(preset, key) == getattr(config, key) for key in _SWITCHES)
        same_alignments = list(preset.alignments) == list(config.alignments)
        same_towers = all(
            getattr(getattr(preset, tower), key) == getattr(getattr(config, tower), key)
            for tower in ("text_config", "vision_config")
            for key in ("hidden_size", "num_hidden_layers")
        )
        if same_switches and same_alignments and same_towers and preset.projection_dim == config.projection_dim:
            return name
    return None


def module_switches(config: UniTriMConfig) -> dict[str, bool]:
    """Which UniTriM modules the config turns on."""
    return {
        "triplets": bool(config.use_triplets),
        "patch_selection": bool(config.uses_patches),
        "temporal_encoder": config.num_temporal_layers > 0,
        "disentangler": bool(config.use_disentangler),
    }


def parameter_counts(config: UniTriMConfig) -> dict[str, int]:
    """Parameters of the model built from `config` (on the meta device: no memory), CLIP part and new modules."""
    from ..modeling.modeling_unitrim import UniTriMModel

    with torch.device("meta"):
        model = UniTriMModel(config)
    clip_names = model.clip_parameter_names()
    counts = {"total": 0, "clip": 0, "new_modules": 0}
    for name, parameter in model.named_parameters():
        counts["total"] += parameter.numel()
        counts["clip" if name in clip_names else "new_modules"] += parameter.numel()
    return counts


def evaluation_results(
    evaluation: Any, dataset_name: str, dataset_type: str, split: str = "test"
) -> list[EvalResult]:
    """`EvalResult` entries (the Hub's model-index) of an evaluation's plain metrics (DSL never included)."""
    metrics = _evaluation_dict(evaluation)["metrics"]
    results = []
    for direction, values in metrics.items():
        task_type, task_name = DIRECTION_TASKS.get(direction, (direction.replace("_", "-"), direction))
        for key, metric_type in METRIC_TYPES.items():
            if key in values:
                results.append(
                    EvalResult(
                        task_type=task_type,
                        task_name=task_name,
                        dataset_type=dataset_type,
                        dataset_name=dataset_name,
                        dataset_split=split,
                        metric_type=metric_type,
                        metric_value=round(float(values[key]), 2),
                        metric_name=f"{key} ({direction.replace('_', ' ')})",
                    )
                )
    return results


def _evaluation_dict(evaluation: Any) -> dict:
    if evaluation is None:
        return {}
    values = evaluation.to_dict() if hasattr(evaluation, "to_dict") else dict(evaluation)
    if "metrics" not in values:
        raise ValueError("evaluation must be a RetrievalEvaluation or its to_dict() (with a 'metrics' entry)")
    return values


def _fill(template: str, values: Mapping[str, str]) -> str:
    text = template
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        start = text.index("{{")
        raise ValueError(f"model card template has an unfilled placeholder {text[start:text.index('}}', start) + 2]}")
    return text


def _format_count(count: int) -> str:
    return f"{count / 1e6:.1f}M" if count >= 100_000 else f"{count:,}"


def render_model_card(
    config: UniTriMConfig,
    *,
    model_id: str,
    base_model: str | None,
    dataset_name: str,
    evaluation: Any = None,
    training_args: Mapping[str, Any] | None = None,
    dataset_split: str = "test",
    license: str = LICENSE,
    template: str | None = None,
) -> str:
    """A model card (YAML front matter + Markdown) for a UniTriM checkpoint.

    Args:
        config: the model's [`UniTriMConfig`].
        model_id: Hub repo id (`"org/name"`) or local path, used in the title and the usage snippet.
        base_model: the CLIP checkpoint it was initialized from (Hub id), or None (random init).
        dataset_name: the training/evaluation benchmark, e.g. `"msrvtt"`, `"msvd"`, `"didemo"`, `"synthetic"`.
        evaluation: a [`RetrievalEvaluation`] or its `to_dict()`; None: no results.
        training_args: training settings to list (learning rates, epochs, frames, ...), or None.
        dataset_split: the split the evaluation ran on.
        license: the Hub's license id for the front matter (default: the library's, `apache-2.0`).
        template: template text (default: the packaged one).
    """
    dataset_type = DATASET_IDS.get(dataset_name.lower(), dataset_name.lower())
    values = _evaluation_dict(evaluation)
    eval_results = evaluation_results(values, dataset_name, dataset_type, dataset_split) if values else None
    card_data = ModelCardData(
        library_name=LIBRARY_NAME,
        pipeline_tag=PIPELINE_TAG,
        tags=list(BASE_TAGS),
        datasets=[dataset_type],
        base_model=base_model,
        license=license,
        model_name=model_id,
        eval_results=eval_results,
    )
    preset = matching_preset(config)
    switches = module_switches(config)
    counts = parameter_counts(config)
    num_frames = (values.get("settings") or {}).get("num_frames") or (training_args or {}).get("num_frames") or 12
    training_summary = (
        f"fine-tuned on **{dataset_name}**." if base_model else f"trained from random initialization on **{dataset_name}**."
    )
    fields = {
        "front_matter": card_data.to_yaml().rstrip("\n"),
        "model_name": model_id,
        "model_id": model_id,
        "training_summary": training_summary,
        "preset": f"`{preset}`" if preset else "custom configuration (no shipped preset matches)",
        "base_model": f"`{base_model}`" if base_model else "none (random initialization)",
        "alignments": ", ".join(f"`{name}`" for name in config.alignments),
        "modules": "\n".join(
            f"  - {_MODULE_DESCRIPTIONS[name]}: **{'on' if enabled else 'off'}**" for name, enabled in switches.items()
        ),
        "text_size": f"{config.text_config.num_hidden_layers} layers x {config.text_config.hidden_size}",
        "vision_size": (
            f"{config.vision_config.num_hidden_layers} layers x {config.vision_config.hidden_size}, "
            f"patch {config.vision_config.patch_size}, image {config.vision_config.image_size}"
        ),
        "projection_dim": str(config.projection_dim),
        "parameter_counts": (
            f"{_format_count(counts['total'])} in total: {_format_count(counts['clip'])} from CLIP "
            f"(towers, projections, logit scale), {_format_count(counts['new_modules'])} in the new modules"
        ),
        "num_frames": str(num_frames),
        "training_data": _training_data_text(dataset_name),
        "training_arguments": _training_arguments_text(training_args),
        "evaluation_section": _evaluation_text(values, dataset_name, dataset_split),
        "remote_code_requirements": ", ".join(f"`{requirement}`" for requirement in remote_code_requirements()),
    }
    return _fill(template if template is not None else load_template(), fields)


def _training_data_text(dataset_name: str) -> str:
    descriptions = {
        "msrvtt": "MSR-VTT, 9k training videos (20 captions each); tested on the 1k-A split (JSFUSION test list).",
        "msvd": "MSVD, 1,200 training videos with all their captions (~40 per video); tested on 670 videos with every caption.",
        "didemo": "DiDeMo, ~8.4k training videos; the descriptions of a video are joined into one paragraph (64 tokens).",
        "synthetic": (
            "SyntheticTriM, the procedurally generated benchmark shipped with `unitrim_hf` (coloured shapes with "
            "spatial and temporal captions); useful for checking the pipeline, not for comparing with published numbers."
        ),
    }
    return descriptions.get(dataset_name.lower(), f"{dataset_name}.")


def _training_arguments_text(training_args: Mapping[str, Any] | None) -> str:
    if not training_args:
        return "Training settings were not recorded with this card."
    lines = ["Training settings:", ""]
    lines += [f"- `{key}`: `{value}`" for key, value in training_args.items()]
    return "\n".join(lines)


def _evaluation_text(values: dict, dataset_name: str, split: str) -> str:
    if not values:
        return "No evaluation results were recorded with this card."
    from ..evaluation.report import alignment_table, metrics_table

    parts = [
        f"On the **{split}** split of **{dataset_name}**: {values['num_captions']} caption queries, "
        f"{values['num_videos']} videos. Recalls in percent, ranks 1-based.",
        "",
        metrics_table(values["metrics"]),
    ]
    if values.get("skipped_videos"):
        parts += ["", f"{len(values['skipped_videos'])} videos could not be decoded and were left out with their captions."]
    if values.get("dsl_metrics"):
        parts += ["", "With DSL (inverted softmax; transductive, not comparable with the table above):", "",
                  metrics_table(values["dsl_metrics"])]
    if values.get("alignment_metrics"):
        parts += ["", "Each alignment alone (same encoding pass; `all` = the model's ranking):", "",
                  alignment_table(values["alignment_metrics"])]
    return "\n".join(parts)
