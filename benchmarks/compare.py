"""Train presets and ablations over several seeds with one budget; print mean ± std and paired differences.

    python benchmarks/compare.py --recipe configs/presets.yaml --json outputs/compare/presets.json

The same as the `unitrim-compare` console script (`unitrim_hf.comparison.cli`); see configs/README.md.
"""

from unitrim_hf.comparison.cli import main

if __name__ == "__main__":
    main()
