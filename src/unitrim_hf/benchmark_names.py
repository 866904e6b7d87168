"""The benchmarks' names and their accepted aliases, and the settings of the synthetic benchmark, defined once (light:
no torch, transformers or datasets).

A generated SyntheticTriM folder describes itself: its generation settings are written into it
(`SYNTHETIC_MANIFEST_FILE_NAME`), and every reader (`load_benchmark`, `unitrim-eval`, `train.py`, `unitrim-compare`)
takes them from there through `resolve_synthetic_settings` instead of needing them passed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from .errors import BenchmarkFormatError

BENCHMARK_NAMES = ("msrvtt", "msvd", "didemo", "synthetic")
BENCHMARK_ALIASES = {"msr-vtt": "msrvtt", "synthetic_trim": "synthetic"}

# The annotation files a real benchmark's folder must hold (docs/datasets.md), which its builder reads;
# `{config}` is MSR-VTT's training list ("9k" or "7k").
ANNOTATION_FILES: dict[str, tuple[str, ...]] = {
    "msrvtt": ("MSRVTT_data.json", "MSRVTT_train.{config}.csv", "MSRVTT_JSFUSION_test.csv"),
    "msvd": ("raw-captions.pkl", "train_list.txt", "val_list.txt", "test_list.txt"),
    "didemo": ("train_data.json", "val_data.json", "test_data.json"),
}
DEFAULT_MSRVTT_CONFIG = "9k"

# Written last into a generated synthetic benchmark folder: its generation settings (and the generator's version).
SYNTHETIC_MANIFEST_FILE_NAME = "synthetic_trim.json"
SYNTHETIC_GENERATOR_KEY = "scene_generator"
# The one set of defaults of the synthetic benchmark's generation: the main job's (`python train.py`), 400 training
# and 100 test clips of 16 frames of 64 x 64 at 8 fps, of the "mixed" scene set (`SYNTHETIC_SCENE_SETS`).
SYNTHETIC_DEFAULTS: dict[str, int | float | str] = {
    "num_train": 400, "num_test": 100, "seed": 0, "num_frames": 16, "frame_size": 64, "fps": 8.0, "scenes": "mixed",
}
# "mixed": one or two objects doing anything; "temporal_order": two changing objects per clip, each scene beside its
# reversal, so that the order of frames decides (`unitrim_hf.data.synthetic`).
SYNTHETIC_SCENE_SETS = ("mixed", "temporal_order")


def canonical_benchmark_name(name: str) -> str:
    """`"MSR-VTT"` -> `"msrvtt"`: lower case, aliases resolved; names that are not benchmarks come back lower-cased
    (the caller reports them)."""
    lowered = name.lower()
    return BENCHMARK_ALIASES.get(lowered, lowered)


def missing_annotation_files(name: str, data_dir: str | Path, config_name: str | None = None) -> list[str]:
    """The annotation files of benchmark `name` (`ANNOTATION_FILES`) that `data_dir` lacks; every one of them when
    the folder does not exist, none for the synthetic benchmark (it is generated)."""
    root = Path(data_dir).expanduser()
    names = [file.format(config=config_name or DEFAULT_MSRVTT_CONFIG) for file in ANNOTATION_FILES.get(canonical_benchmark_name(name), ())]
    return [file for file in names if not (root / file).is_file()]


def read_synthetic_manifest(data_dir: str | Path) -> dict | None:
    """Everything the manifest of the synthetic benchmark in `data_dir` holds (the generator's version included), or
    None when the folder has not been generated.

    Raises [`BenchmarkFormatError`] naming the file when it is not a JSON object.
    """
    manifest = Path(data_dir).expanduser() / SYNTHETIC_MANIFEST_FILE_NAME
    if not manifest.is_file():
        return None
    try:
        values = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BenchmarkFormatError(f"{manifest}: cannot be read as JSON ({error}); delete the folder to regenerate it") from None
    if not isinstance(values, dict):
        raise BenchmarkFormatError(f"{manifest}: must hold a JSON object of generation settings")
    return values


def resolve_synthetic_settings(
    data_dir: str | Path, argument_names: Mapping[str, str] | None = None, **explicit: int | float | str | None
) -> dict[str, int | float | str]:
    """The generation settings of the synthetic benchmark in `data_dir` (the keys of `SYNTHETIC_DEFAULTS`).

    A generated folder's settings are its own (read from its manifest); a folder not generated yet gets
    `SYNTHETIC_DEFAULTS`. `explicit` values (None: not given) choose the settings of a new folder and must agree
    with those of a generated one.

    Args:
        data_dir: the benchmark folder.
        argument_names: how the caller spells each setting (and `"data_dir"`) in an error, e.g.
            `{"num_train": "--synthetic_num_train"}` (default: `num_train=`).
        explicit: `num_train`, `num_test`, `seed`, `num_frames`, `frame_size`, `fps`, `scenes`.

    Raises [`BenchmarkFormatError`] naming the setting and the folder when an explicit value contradicts the folder's.
    """
    unknown = sorted(set(explicit) - set(SYNTHETIC_DEFAULTS))
    if unknown:
        raise TypeError(f"unknown synthetic benchmark settings {unknown}; known: {sorted(SYNTHETIC_DEFAULTS)}")
    given = {name: value for name, value in explicit.items() if value is not None}
    manifest = read_synthetic_manifest(data_dir)
    if manifest is None:
        return {**SYNTHETIC_DEFAULTS, **given}
    settings = {name: manifest.get(name, default) for name, default in SYNTHETIC_DEFAULTS.items()}
    for name, value in given.items():
        if not _same_setting(value, settings[name]):
            raise BenchmarkFormatError(_contradiction(data_dir, name, value, settings[name], argument_names or {}))
    return settings


def _same_setting(given: int | float | str, recorded: int | float | str) -> bool:
    if isinstance(given, str) or isinstance(recorded, str):
        return str(given) == str(recorded)
    return float(given) == float(recorded)


def _contradiction(data_dir: str | Path, name: str, given: int | float | str, recorded: int | float | str, names: Mapping[str, str]) -> str:
    shown = names.get(name, f"{name}=")
    separator = "" if shown.endswith("=") else " "
    folder = f"pass another {names['data_dir']}" if "data_dir" in names else "use another folder"
    return (
        f"{shown}{separator}{given} contradicts the synthetic benchmark in {data_dir}, generated with {name}={recorded} "
        f"(recorded in {SYNTHETIC_MANIFEST_FILE_NAME} there): drop {shown.rstrip('=')} to use the folder's settings, or "
        f"{folder} to generate a new benchmark"
    )
