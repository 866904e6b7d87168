"""Multi-seed comparisons of presets and ablations under one training budget (`unitrim-compare`).

A recipe (`configs/*.yaml`) names the variants (a preset plus `UniTriMConfig` overrides), the seeds and the shared
`train.py` arguments; every (variant, seed) run trains with the library's `Trainer` and is evaluated once at the
end with `evaluate_retrieval`. The report gives mean ± standard deviation over seeds and a paired comparison with
a reference variant, seed by seed.
"""

from .recipes import Recipe, Variant, load_recipe
from .runs import RunResult, RunSpec, run_comparison
from .statistics import paired_differences, summarize_runs

__all__ = [
    "Recipe",
    "RunResult",
    "RunSpec",
    "Variant",
    "load_recipe",
    "paired_differences",
    "run_comparison",
    "summarize_runs",
]
