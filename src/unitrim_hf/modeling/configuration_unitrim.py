"""Configuration of UniTriM: CLIP text and vision towers plus the switches of every UniTriM module."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from transformers import CLIPTextConfig, CLIPVisionConfig, PretrainedConfig

from .switches import TOWER_CONFIG_FIELDS, UniTriMSwitches, config_field_names

PRESET_DIRECTORY = Path(__file__).resolve().parent / "presets"


class UniTriMConfig(PretrainedConfig, UniTriMSwitches):
    r"""
    Configuration of [`UniTriMModel`].

    Args:
        text_config (`dict` or `CLIPTextConfig`): the CLIP text tower.
        vision_config (`dict` or `CLIPVisionConfig`): the CLIP vision tower.
        **switches: the sizes and switches of every UniTriM module and the loss weights, the fields of
            [`UniTriMSwitches`] (documented there), e.g. `patch_top_k=4` or `alignments=["sentence_video"]`.
    """

    model_type = "unitrim"
    sub_configs_defaults = {"text_config": CLIPTextConfig, "vision_config": CLIPVisionConfig}

    text_config: dict | CLIPTextConfig | None = None
    vision_config: dict | CLIPVisionConfig | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        self.fill_default_alignments()
        super().__post_init__(**kwargs)
        self.validate_switches()

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
        known = config_field_names()
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
        for key in TOWER_CONFIG_FIELDS:
            if key in overrides and isinstance(overrides[key], dict):
                settings[key] = {**settings.get(key, {}), **overrides.pop(key)}
        settings.update(overrides)
        return cls(**settings)


UniTriMConfig.register_for_auto_class()  # saved configs name their code (auto_map) for trust_remote_code loading
