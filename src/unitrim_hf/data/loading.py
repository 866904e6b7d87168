"""`load_benchmark`: one call from a benchmark name and folder to a `datasets.Dataset` split."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import datasets

from ..benchmark_names import SYNTHETIC_DEFAULTS, canonical_benchmark_name, resolve_synthetic_settings
from .didemo import DiDeMo
from .msrvtt import MSRVTT
from .msvd import MSVD
from .synthetic_trim import SyntheticTriM

# Keyed by canonical name; aliases ("msr-vtt", "synthetic_trim") resolve through `canonical_benchmark_name`.
BENCHMARKS: dict[str, type[datasets.GeneratorBasedBuilder]] = {
    "msrvtt": MSRVTT,
    "msvd": MSVD,
    "didemo": DiDeMo,
    "synthetic": SyntheticTriM,
}


def load_benchmark(
    name: str,
    data_dir: str | Path,
    split: str,
    config_name: Optional[str] = None,
    cache_dir: Optional[str | Path] = None,
    download_mode: Optional[str] = None,
    **options,
) -> datasets.Dataset:
    """Build (once, cached) and return one split of a benchmark.

    Args:
        name: `"msrvtt"`, `"msvd"`, `"didemo"` or `"synthetic"` (case-insensitive).
        data_dir: the folder with the benchmark's files (see docs/datasets.md).
        split: `"train"`, `"test"` (and `"validation"` for MSVD and DiDeMo).
        config_name: MSR-VTT `"9k"` (default) or `"7k"`.
        cache_dir: where `datasets` stores the prepared Arrow files (its default cache if None).
        download_mode: `"force_redownload"` rebuilds the cache (e.g. after adding missing videos).
        **options: builder options: `video_dir`, `check_videos`, `one_row_per_video`; for
            `"synthetic"` also `num_train`, `num_test`, `seed`, `num_frames`, `frame_size`, `fps`, needed only to
            generate a new benchmark of another size (a generated folder's settings are read from the folder; a
            value that contradicts them raises [`BenchmarkFormatError`] naming it).
    """
    canonical = canonical_benchmark_name(name)
    builder_class = BENCHMARKS.get(canonical)
    if builder_class is None:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {sorted(set(BENCHMARKS))}")
    if canonical == "synthetic":
        options = _with_synthetic_settings(data_dir, options)
    builder = builder_class(
        data_dir=str(data_dir),
        config_name=config_name,
        cache_dir=str(cache_dir) if cache_dir is not None else None,
        **options,
    )
    builder.download_and_prepare(download_mode=download_mode)
    available = list(builder.info.splits or {})
    if split not in available:
        raise ValueError(f"{builder_class.__name__} has no split {split!r}; available: {available}")
    return builder.as_dataset(split=split)


def _with_synthetic_settings(data_dir: str | Path, options: dict) -> dict:
    """`options` with every generation setting spelled out (the folder's, else the defaults): the prepared split's
    cache is keyed by them, so a folder regenerated with other settings never meets a stale cache."""
    given = {key: options.pop(key) for key in list(options) if key in SYNTHETIC_DEFAULTS}
    return {**options, **resolve_synthetic_settings(data_dir, **given)}
