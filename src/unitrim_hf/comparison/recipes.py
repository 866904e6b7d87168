"""Comparison recipes: which variants, which seeds, and the one training budget they all share.

A recipe is a YAML or JSON mapping:

```yaml
description: the three presets from random initialization
seeds: [1, 2, 3]
preset_suffix: "-tiny"          # appended to every preset name ("" for the ViT-B/32 sizes)
training:                       # train.py arguments, the same for every run
  dataset: synthetic
  num_train_epochs: 25
variants:                       # name -> preset (+ UniTriMConfig overrides)
  unitrim: {preset: unitrim}
  no-disentangle: {preset: unitrim, config_overrides: {use_disentangler: false}}
reference: unitrim              # paired comparisons are against this variant
rank_by: text_to_image/Rsum     # optional: order the table by this metric
postprocessing: [dsl, qb_norm, sk_norm]   # optional: test-time post-processing, reported in columns of its own
```

`postprocessing` takes what `unitrim_hf.evaluation.parse_postprocessing` reads (names, or names -> settings such as
`{qb_norm: {beta: 20, bank_size: 5000}}`); each run's final evaluation then also reports those numbers, with the
training split's captions as the query bank of `qb_norm` and `sk_norm`. Metric names such as
`dsl/text_to_video/R@1` reach them (e.g. in `rank_by`).

`grid` expands a product of config values into variants (Table 8's lambda_rec x lambda_orth):

```yaml
grid:
  preset: unitrim
  axes:
    - {field: reconstruction_loss_weight, label: rec, values: [0.0, 0.1, 1.0]}
    - {field: orthogonality_loss_weight, label: orth, values: [0.0, 0.1, 1.0]}
```

Variants may only differ in the model (preset, config overrides): the budget (epochs, batch, learning rates,
frames, the starting CLIP checkpoint) is the recipe's `training` block, so no variant can be given more of it.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import RecipeError
from ..evaluation.postprocessing_options import parse_postprocessing, postprocessing_settings
from ..training.arguments import ARGUMENT_CLASSES, ModelArguments

RECIPE_KEYS = {
    "name", "description", "seeds", "preset_suffix", "training", "variants", "grid", "reference", "rank_by",
    "postprocessing",
}
VARIANT_KEYS = {"preset", "config_overrides"}
# Arguments the harness sets itself for every run.
HARNESS_ARGUMENTS = {"seed", "output_dir", "do_eval", "logging_steps", "report_to", "overwrite_output_dir"}




@dataclass
class Variant:
    """One model of a comparison: a preset name and `UniTriMConfig` overrides."""

    name: str
    preset: str
    config_overrides: dict[str, Any] = field(default_factory=dict)

    def train_arguments(self, preset_suffix: str = "") -> list[str]:
        """`train.py` arguments that select this model. Overrides equal to the preset's own values are left out,
        so the same model gets the same arguments (and its run is reused) whichever recipe names it."""
        from ..modeling.configuration_unitrim import UniTriMConfig

        preset = self.preset if self.preset.endswith(preset_suffix) else self.preset + preset_suffix
        defaults = UniTriMConfig.from_preset(preset)
        changed = {
            key: value for key, value in self.config_overrides.items()
            if not hasattr(defaults, key) or getattr(defaults, key) != value
        }
        arguments = ["--preset", preset]
        if changed:
            arguments += ["--config_overrides", json.dumps(changed, sort_keys=True)]
        return arguments


@dataclass
class Recipe:
    """Variants x seeds trained with one shared budget (`training`: train.py argument names -> values)."""

    name: str
    variants: list[Variant]
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    training: dict[str, Any] = field(default_factory=dict)
    preset_suffix: str = ""
    reference: str | None = None
    rank_by: str | None = None
    description: str = ""
    postprocessing: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.variants:
            raise RecipeError(f"recipe {self.name!r} has no variants.")
        names = [variant.name for variant in self.variants]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise RecipeError(f"recipe {self.name!r} names variants twice: {duplicates}.")
        if self.reference is None:
            self.reference = names[0]
        if self.reference not in names:
            raise RecipeError(f"recipe {self.name!r}: reference {self.reference!r} is not one of its variants {names}.")
        if not self.seeds:
            raise RecipeError(f"recipe {self.name!r} has no seeds.")
        check_training_arguments(self.training, f"recipe {self.name!r}")
        if self.rank_by is not None and "/" not in self.rank_by:
            raise RecipeError(f"recipe {self.name!r}: rank_by must look like text_to_image/Rsum, got {self.rank_by!r}.")
        self.postprocessing = checked_postprocessing(self.postprocessing, f"recipe {self.name!r}")

    def select(self, names: list[str]) -> "Recipe":
        """The same recipe restricted to `names` (in the recipe's order); the reference is kept."""
        known = [variant.name for variant in self.variants]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise RecipeError(f"recipe {self.name!r} has no variants {unknown}; it has {known}.")
        kept = [variant for variant in self.variants if variant.name in names or variant.name == self.reference]
        return Recipe(self.name, kept, list(self.seeds), dict(self.training), self.preset_suffix, self.reference,
                      self.rank_by, self.description, dict(self.postprocessing))


def checked_postprocessing(value: Any, where: str) -> dict[str, dict[str, Any]]:
    """`{method: settings}` of a recipe's `postprocessing` (None or empty: none), every setting spelled out."""
    try:
        return postprocessing_settings(parse_postprocessing(value or None))
    except ValueError as error:
        raise RecipeError(f"{where}: {error}.") from None


def check_training_arguments(training: dict[str, Any], where: str) -> None:
    """Every key must be a `train.py` argument, other than those the harness sets itself and the model's."""
    known = {item.name for cls in ARGUMENT_CLASSES for item in fields(cls)}
    model_only = {"preset", "config_overrides", "model_name_or_path"}
    unknown = sorted(set(training) - known)
    if unknown:
        raise RecipeError(f"{where}: unknown train.py arguments in `training`: {unknown}.")
    reserved = sorted(set(training) & (HARNESS_ARGUMENTS | model_only))
    if reserved:
        raise RecipeError(
            f"{where}: `training` may not set {reserved} (the harness sets the seed and folders; variants set the model)."
        )


def _variant(name: str, values: Any, where: str) -> Variant:
    if isinstance(values, str):
        return Variant(name, values)
    if not isinstance(values, dict):
        raise RecipeError(f"{where}: variant {name!r} must be a preset name or a mapping, got {type(values).__name__}.")
    unknown = sorted(set(values) - VARIANT_KEYS)
    if unknown:
        raise RecipeError(
            f"{where}: variant {name!r} sets {unknown}; a variant may only set {sorted(VARIANT_KEYS)} "
            "(the training budget is shared, in `training`)."
        )
    if "preset" not in values:
        raise RecipeError(f"{where}: variant {name!r} needs a `preset`.")
    overrides = values.get("config_overrides") or {}
    if not isinstance(overrides, dict):
        raise RecipeError(f"{where}: variant {name!r}: config_overrides must be a mapping.")
    ModelArguments(config_overrides=json.dumps(overrides)).overrides()
    return Variant(name, str(values["preset"]), dict(overrides))


def _format_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _text_name(value: Any, what: str, where: str) -> str:
    """`value` if it is text; YAML reads unquoted on/off/yes/no as booleans and digits as numbers."""
    if not isinstance(value, str):
        raise RecipeError(
            f"{where}: the {what} {value!r} is read as a {type(value).__name__}, not text; quote it in the YAML file "
            "(unquoted on/off/yes/no are booleans, digits are numbers), e.g. \"on\"."
        )
    return value


def _grid_variants(grid: Any, where: str) -> list[Variant]:
    if not isinstance(grid, dict) or "preset" not in grid or not isinstance(grid.get("axes"), list) or not grid["axes"]:
        raise RecipeError(f"{where}: `grid` needs a `preset` and a non-empty list of `axes`.")
    axes = []
    for axis in grid["axes"]:
        if not isinstance(axis, dict) or "field" not in axis or not isinstance(axis.get("values"), list) or not axis["values"]:
            raise RecipeError(f"{where}: each grid axis needs a `field` and a non-empty list of `values`, got {axis!r}.")
        axes.append((axis["field"], axis.get("label", axis["field"]), axis["values"]))
    base = dict(grid.get("config_overrides") or {})
    variants = []
    for combination in itertools.product(*(values for _, _, values in axes)):
        overrides = {**base, **{name: value for (name, _, _), value in zip(axes, combination)}}
        label = " ".join(f"{label}={_format_value(value)}" for (_, label, _), value in zip(axes, combination))
        variants.append(Variant(label, str(grid["preset"]), overrides))
    return variants


def recipe_from_dict(values: dict[str, Any], name: str = "comparison", where: str | None = None) -> Recipe:
    """Build a `Recipe` from a parsed YAML/JSON mapping (see the module docstring)."""
    where = where or f"recipe {name!r}"
    if not isinstance(values, dict):
        raise RecipeError(f"{where} must hold a mapping, got {type(values).__name__}.")
    unknown = sorted(set(values) - RECIPE_KEYS)
    if unknown:
        raise RecipeError(f"{where}: unknown keys {unknown}; expected some of {sorted(RECIPE_KEYS)}.")
    variants_field = values.get("variants") or {}
    if not isinstance(variants_field, dict):
        raise RecipeError(f"{where}: `variants` must map names to presets.")
    variants = [_variant(_text_name(key, "variant name", where), value, where) for key, value in variants_field.items()]
    if "reference" in values:
        _text_name(values["reference"], "reference", where)
    if "grid" in values:
        variants += _grid_variants(values["grid"], where)
    seeds = values.get("seeds", [1, 2, 3])
    if not isinstance(seeds, list) or not all(isinstance(seed, int) for seed in seeds):
        raise RecipeError(f"{where}: `seeds` must be a list of integers, got {seeds!r}.")
    training = values.get("training") or {}
    if not isinstance(training, dict):
        raise RecipeError(f"{where}: `training` must be a mapping of train.py arguments.")
    try:
        return Recipe(
            name=str(values.get("name", name)),
            variants=variants,
            seeds=list(seeds),
            training=dict(training),
            preset_suffix=str(values.get("preset_suffix", "")),
            reference=values.get("reference"),
            rank_by=values.get("rank_by"),
            description=str(values.get("description", "")).strip(),
            postprocessing=values.get("postprocessing") or {},
        )
    except RecipeError as error:
        raise RecipeError(f"{where}: {error}") from None


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe from a `.yaml`/`.yml` or `.json` file."""
    file = Path(path)
    if not file.is_file():
        raise RecipeError(f"recipe {str(path)!r}: no such file.")
    text = file.read_text()
    if file.suffix in (".yaml", ".yml"):
        import yaml

        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise RecipeError(f"recipe {file}: not valid YAML ({error}).") from None
    else:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise RecipeError(f"recipe {file}: not valid JSON ({error}).") from None
    return recipe_from_dict(values, name=file.stem, where=f"recipe {file}")
