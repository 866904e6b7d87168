"""The check [`UniTriMModel.from_pretrained`] runs on a saved folder before it builds anything: the folder's own
configuration against its weights.

A `config.json` is free to claim any size, and transformers builds the model it describes before it reads a weight:
100,000 text layers took minutes and gigabytes before a single tensor was compared. The safetensors header lists
every tensor's name and shape (an 8-byte length, then JSON), so the layer counts and sizes the configuration
claims are compared with the weights in time and memory bounded by the header: every size must be a whole number
(>= 1, layer counts >= 0); a stack of layers the weights hold must have the claimed number of layers; a module the
configuration switches off must not be in the weights; every size the configuration gives a tensor the weights hold
must be that tensor's. What the weights do not hold, transformers initializes (a placeholder file loads with every
tensor missing), so there the configuration is only bounded: at most `MAX_LAYERS_WITHOUT_WEIGHTS` layers per
absent stack, and a model of at most `MAX_PARAMETERS_PER_CHECKPOINT_ELEMENT` times the checkpoint's elements (or
`MIN_PARAMETER_ALLOWANCE`), estimated from the configuration by arithmetic.

Only the folder's own configuration is checked: a `config=` object or keyword overrides passed by the caller keep
transformers' behaviour (missing or mis-shaped tensors are initialized, or refused by transformers itself).
`CheckpointConfigMismatch` lives here, not in the package's `errors.py`: this module ships as remote code. Imports
the standard library, and transformers' Hub cache lookup when the check runs on a Hub id.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
# safetensors refuses headers above 100 MB; a length above that is a damaged or hostile file.
MAX_HEADER_BYTES = 100 * 1024 * 1024

Shapes = dict[str, tuple[int, ...]]

# (configuration field, prefix of its layers' weight names, what the layers are).
LAYER_COUNTS = (
    ("text_config.num_hidden_layers", "text_model.encoder.layers.", "text tower layers"),
    ("vision_config.num_hidden_layers", "vision_model.encoder.layers.", "vision tower layers"),
    ("num_temporal_layers", "temporal_encoder.layers.", "temporal encoder layers"),
)
# Sizes that must be whole numbers >= 1 (layer counts and switches may be 0).
TOWER_SIZE_FIELDS = {
    "text_config": ("vocab_size", "hidden_size", "intermediate_size", "num_attention_heads", "max_position_embeddings"),
    "vision_config": (
        "hidden_size", "intermediate_size", "num_attention_heads", "num_channels", "image_size", "patch_size",
    ),
}
SIZE_FIELDS = (
    "projection_dim", "temporal_num_attention_heads", "max_frame_positions", "patch_scorer_hidden_dim",
    "disentangler_hidden_dim", "max_triplet_length",
)
COUNT_FIELDS = ("num_temporal_layers", "patch_top_k", "max_triplets")
TOWER_COUNT_FIELDS = ("num_hidden_layers",)
# A stack of layers of which the weights hold none is initialized by transformers (a checkpoint of another model, a
# placeholder): the configuration may claim at most this many layers for it.
MAX_LAYERS_WITHOUT_WEIGHTS = 128
# The model a configuration describes may have at most this many times the checkpoint's elements, or this floor.
MAX_PARAMETERS_PER_CHECKPOINT_ELEMENT = 4
MIN_PARAMETER_ALLOWANCE = 2**26


class CheckpointConfigMismatch(ValueError):
    """
    A saved folder's configuration disagrees with its own weights, or claims a size that cannot be.

    Args:
        folder: the folder (or Hub id) checked.
        field: the first configuration field at fault, e.g. `text_config.num_hidden_layers`.
        detail: what is wrong with it.
    """

    def __init__(self, folder: str | os.PathLike, field: str, detail: str):
        self.folder = os.fspath(folder)
        self.field = field
        self.detail = detail
        super().__init__(f"cannot load the model at {self.folder}: its config.json `{field}` {detail}")

    def __reduce__(self):
        return (type(self), (self.folder, self.field, self.detail))


# ------------------------------------------------------------------------------------------ reading the weights


def read_safetensors_shapes(path: str | os.PathLike) -> Shapes:
    """Every tensor's name and shape in a safetensors file, from its header alone (no tensor is read).

    Raises:
        ValueError: the header is truncated, larger than 100 MB or not the safetensors layout.
    """
    with open(path, "rb") as file:
        prefix = file.read(8)
        if len(prefix) != 8:
            raise ValueError(f"{path} is not a safetensors file: shorter than its 8-byte header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise ValueError(f"{path} is not a safetensors file: a header of {length} bytes")
        raw = file.read(length)
    if len(raw) != length:
        raise ValueError(f"{path} is not a safetensors file: its header is truncated")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a safetensors file: its header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path} is not a safetensors file: its header is not a JSON object")
    return {name: _shape_of(path, name, entry) for name, entry in header.items() if name != "__metadata__"}


def _shape_of(path: str | os.PathLike, name: str, entry: Any) -> tuple[int, ...]:
    shape = entry.get("shape") if isinstance(entry, dict) else None
    if not isinstance(shape, list) or not all(isinstance(size, int) and size >= 0 for size in shape):
        raise ValueError(f"{path} is not a safetensors file: tensor {name!r} has no valid shape")
    return tuple(shape)


def read_checkpoint_shapes(folder: str | os.PathLike, variant: str | None = None) -> Shapes | None:
    """The names and shapes of a folder's safetensors weights (one file or the shards of an index); None when the
    folder holds neither (transformers then reports what it finds)."""
    folder = Path(folder)
    single, index = _weights_names(variant)
    if (folder / single).is_file():
        return read_safetensors_shapes(folder / single)
    if not (folder / index).is_file():
        return None
    return _sharded_shapes(folder, folder / index)


def _weights_names(variant: str | None) -> tuple[str, str]:
    if not variant:
        return SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME
    return f"model.{variant}.safetensors", f"model.safetensors.index.{variant}.json"


def _sharded_shapes(folder: Path, index_path: Path) -> Shapes:
    weight_map = json.loads(index_path.read_text(encoding="utf-8")).get("weight_map")
    if not isinstance(weight_map, dict):
        raise ValueError(f"{index_path} has no `weight_map`")
    shapes: Shapes = {}
    for shard in sorted(set(map(str, weight_map.values()))):
        if Path(shard).name != shard or not (folder / shard).is_file():
            raise ValueError(f"{index_path} names a shard {shard!r} that is not a file of {folder}")
        shapes.update(read_safetensors_shapes(folder / shard))
    return shapes


def checkpoint_folder(name: str | os.PathLike | None, kwargs: dict[str, Any]) -> Path | None:
    """The folder holding the configuration and safetensors weights `from_pretrained(name, **kwargs)` loads, when
    the check applies: a local folder (with `subfolder`), or a Hub id whose `config.json` and single
    `model.safetensors` are already in the cache. None when the caller passes its own `config` or `state_dict`,
    or when nothing is there to read without a download (transformers then resolves the files as always)."""
    if name is None or any(kwargs.get(key) is not None for key in ("config", "state_dict", "gguf_file")):
        return None
    subfolder = kwargs.get("subfolder") or ""
    local = Path(name) / subfolder
    if Path(name).is_dir():
        return local if (local / "config.json").is_file() else None
    return _cached_hub_folder(os.fspath(name), subfolder, kwargs)


def _cached_hub_folder(repo_id: str, subfolder: str, kwargs: dict[str, Any]) -> Path | None:
    from transformers.utils.hub import try_to_load_from_cache

    single, _ = _weights_names(kwargs.get("variant"))
    found = []
    for filename in ("config.json", single):
        try:
            path = try_to_load_from_cache(
                repo_id, f"{subfolder}/{filename}" if subfolder else filename,
                cache_dir=kwargs.get("cache_dir"), revision=kwargs.get("revision"),
            )
        except Exception:  # not a repository id the cache knows (a malformed name): transformers reports it
            return None
        if not isinstance(path, str):
            return None
        found.append(Path(path).parent)
    return found[0] if found[0] == found[1] else None


# ------------------------------------------------------------------------------------------ comparing


def check_config_against_weights(config: Any, shapes: Shapes, folder: str | os.PathLike) -> None:
    """Raise [`CheckpointConfigMismatch`] naming the first field of `config` (a `UniTriMConfig`) that is not a
    valid size, or that disagrees with the tensors `shapes` lists: the layer counts first (from the weight names),
    then the sizes of the tensors present. Tensors absent from `shapes` are not compared (transformers initializes
    them). Time and memory grow with the number of tensors, whatever sizes the configuration claims."""
    for field, detail in _problems(config, shapes):
        raise CheckpointConfigMismatch(folder, field, detail)


def _problems(config: Any, shapes: Shapes) -> Iterable[tuple[str, str]]:
    yield from _invalid_sizes(config)
    yield from _layer_count_problems(config, shapes)
    yield from _module_presence_problems(config, shapes)
    yield from _size_problems(config, shapes)
    yield from _parameter_count_problems(config, shapes)


def _invalid_sizes(config: Any) -> Iterable[tuple[str, str]]:
    for tower, names in TOWER_SIZE_FIELDS.items():
        tower_config = getattr(config, tower)
        yield from _below(tower_config, names, 1, f"{tower}.")
        yield from _below(tower_config, TOWER_COUNT_FIELDS, 0, f"{tower}.")
    yield from _below(config, SIZE_FIELDS, 1, "")
    yield from _below(config, COUNT_FIELDS, 0, "")


def _below(config: Any, names: Iterable[str], minimum: int, prefix: str) -> Iterable[tuple[str, str]]:
    for name in names:
        value = getattr(config, name, None)
        if type(value) is not int or value < minimum:
            yield f"{prefix}{name}", f"must be a whole number >= {minimum}, got {value!r}"


def _layer_count_problems(config: Any, shapes: Shapes) -> Iterable[tuple[str, str]]:
    for field, prefix, what in LAYER_COUNTS:
        claimed = _field_value(config, field)
        found = _layer_indices(shapes, prefix)
        if not found and claimed > MAX_LAYERS_WITHOUT_WEIGHTS:
            yield field, f"is {claimed}, but the weights hold none of these {what} (at most {MAX_LAYERS_WITHOUT_WEIGHTS})"
        elif found and (len(found) != claimed or max(found) != claimed - 1):
            held = f"{len(found)} {what}" + (f" (`{prefix}{_ranges(found)}`)" if found else "")
            yield field, f"is {claimed}, but the weights hold {held}"


def _layer_indices(shapes: Shapes, prefix: str) -> set[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return {int(match.group(1)) for match in map(pattern.match, shapes) if match}


def _ranges(indices: set[int]) -> str:
    ordered = sorted(indices)
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}" if len(ordered) == 1 else f"{ordered[0]}..{ordered[-1]}"
    shown = ", ".join(map(str, ordered[:8]))
    return "{" + shown + (", ..." if len(ordered) > 8 else "") + "}"


def _module_presence_problems(config: Any, shapes: Shapes) -> Iterable[tuple[str, str]]:
    """Modules the weights hold and the configuration switches off (one switched on and absent is initialized)."""
    for field, prefix, enabled in (
        ("patch_top_k", "patch_selector.", config.uses_patches),
        ("use_disentangler", "disentangler.", config.use_disentangler),
    ):
        if not enabled and any(name.startswith(prefix) for name in shapes):
            yield field, f"({getattr(config, field)!r}) switches the module off, but the weights hold `{prefix}*` tensors"


def _size_problems(config: Any, shapes: Shapes) -> Iterable[tuple[str, str]]:
    for field, expected, tensor, dim in _expected_sizes(config):
        shape = shapes.get(tensor)
        if shape is None:
            continue
        if len(shape) <= dim or shape[dim] != expected:
            yield field, f"gives `{tensor}` size {expected} in dimension {dim}, but the weights hold shape {list(shape)}"


def _expected_sizes(config: Any) -> list[tuple[str, int, str, int]]:
    """(field, the size it gives, tensor, dimension) for every size the configuration decides."""
    text, vision = config.text_config, config.vision_config
    positions = (vision.image_size // vision.patch_size) ** 2 + 1
    return [
        ("text_config.vocab_size", text.vocab_size, "text_model.embeddings.token_embedding.weight", 0),
        ("text_config.hidden_size", text.hidden_size, "text_model.embeddings.token_embedding.weight", 1),
        ("text_config.max_position_embeddings", text.max_position_embeddings,
         "text_model.embeddings.position_embedding.weight", 0),
        ("text_config.intermediate_size", text.intermediate_size, "text_model.encoder.layers.0.mlp.fc1.weight", 0),
        ("vision_config.hidden_size", vision.hidden_size, "vision_model.embeddings.class_embedding", 0),
        ("vision_config.num_channels", vision.num_channels, "vision_model.embeddings.patch_embedding.weight", 1),
        ("vision_config.patch_size", vision.patch_size, "vision_model.embeddings.patch_embedding.weight", 2),
        ("vision_config.image_size", positions, "vision_model.embeddings.position_embedding.weight", 0),
        ("vision_config.intermediate_size", vision.intermediate_size,
         "vision_model.encoder.layers.0.mlp.fc1.weight", 0),
        ("projection_dim", config.projection_dim, "text_projection.weight", 0),
        ("text_config.hidden_size", text.hidden_size, "text_projection.weight", 1),
        ("projection_dim", config.projection_dim, "visual_projection.weight", 0),
        ("vision_config.hidden_size", vision.hidden_size, "visual_projection.weight", 1),
        ("patch_scorer_hidden_dim", config.patch_scorer_hidden_dim, "patch_selector.patch_proj.weight", 0),
        ("projection_dim", config.projection_dim, "patch_selector.patch_proj.weight", 1),
        ("max_frame_positions", config.max_frame_positions, "temporal_encoder.frame_position_embedding.weight", 0),
        ("projection_dim", config.projection_dim, "temporal_encoder.frame_position_embedding.weight", 1),
        ("disentangler_hidden_dim", config.disentangler_hidden_dim, "disentangler.spatial_encoder.0.weight", 0),
        ("projection_dim", config.projection_dim, "disentangler.spatial_encoder.0.weight", 1),
    ]


def _parameter_count_problems(config: Any, shapes: Shapes) -> Iterable[tuple[str, str]]:
    """A configuration that describes a model far larger than the checkpoint (sizes of tensors it does not hold)."""
    held = sum(math.prod(shape) for shape in shapes.values())
    allowance = max(MAX_PARAMETERS_PER_CHECKPOINT_ELEMENT * held, MIN_PARAMETER_ALLOWANCE)
    parts = _estimated_parameters(config)
    if sum(parts.values()) > allowance:
        field = max(parts, key=parts.get)
        yield field, (
            f"describes about {parts[field]:.3g} parameters, but the whole checkpoint holds {held:.3g} "
            f"(at most {allowance:.3g} are built for it)"
        )


def _estimated_parameters(config: Any) -> dict[str, int]:
    """The parameters of the model `config` describes, by the field that sizes each part (exact arithmetic on the
    configuration, nothing is built)."""
    text, vision, dim = config.text_config, config.vision_config, config.projection_dim
    patches = (vision.image_size // vision.patch_size) ** 2 + 1
    return {
        "text_config": (text.vocab_size + text.max_position_embeddings + 2) * text.hidden_size
        + text.num_hidden_layers * _clip_layer_parameters(text.hidden_size, text.intermediate_size),
        "vision_config": (1 + vision.num_channels * vision.patch_size**2 + patches + 4) * vision.hidden_size
        + vision.num_hidden_layers * _clip_layer_parameters(vision.hidden_size, vision.intermediate_size),
        "projection_dim": dim * (text.hidden_size + vision.hidden_size + 1),
        "patch_scorer_hidden_dim": (2 * dim + 2) * config.patch_scorer_hidden_dim if config.uses_patches else 0,
        "max_frame_positions": config.max_frame_positions * dim if config.num_temporal_layers else 0,
        "num_temporal_layers": (config.num_temporal_layers * (12 * dim * dim + 13 * dim) + dim * dim + 3 * dim)
        if config.num_temporal_layers else 0,
        "disentangler_hidden_dim": 7 * dim * config.disentangler_hidden_dim if config.use_disentangler else 0,
    }


def _clip_layer_parameters(hidden: int, intermediate: int) -> int:
    """A CLIP encoder layer: four attention projections, the MLP and two layer norms."""
    return 4 * hidden * (hidden + 1) + 2 * hidden * intermediate + intermediate + 5 * hidden


def _field_value(config: Any, field: str) -> Any:
    for part in field.split("."):
        config = getattr(config, part)
    return config


__all__ = [
    "CheckpointConfigMismatch",
    "check_config_against_weights",
    "checkpoint_folder",
    "read_checkpoint_shapes",
    "read_safetensors_shapes",
]
