"""The benchmarks' names and their accepted aliases, defined once (light: no torch, transformers or datasets)."""

from __future__ import annotations

BENCHMARK_NAMES = ("msrvtt", "msvd", "didemo", "synthetic")
BENCHMARK_ALIASES = {"msr-vtt": "msrvtt", "synthetic_trim": "synthetic"}


def canonical_benchmark_name(name: str) -> str:
    """`"MSR-VTT"` -> `"msrvtt"`: lower case, aliases resolved; names that are not benchmarks come back lower-cased
    (the caller reports them)."""
    lowered = name.lower()
    return BENCHMARK_ALIASES.get(lowered, lowered)
