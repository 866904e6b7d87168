"""Parameter counts of the UniTriM presets (default: the three ViT-B/32-size presets).

For each preset: all parameters, the part that comes from CLIP (towers, projections, logit scale), the new
UniTriM modules (patch selector, temporal encoder, disentangler), and the trainable ones (requires_grad). The
models are randomly initialized; counts do not depend on the weights.

    python benchmarks/parameter_counts.py [--presets unitrim xclip clip4clip-meanp] [--json counts.json]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _timing import machine_info, markdown_table, write_json

from unitrim_hf import UniTriMConfig, UniTriMModel

DEFAULT_PRESETS = ["unitrim", "xclip", "clip4clip-meanp"]
NEW_MODULES = ("patch_selector", "temporal_encoder", "disentangler")


def count_parameters(model: UniTriMModel) -> dict[str, int]:
    """Counts of one model: total, clip, new (total - clip, with a per-module breakdown) and trainable."""
    clip_names = model.clip_parameter_names()
    counts = {"total": 0, "clip": 0, "new": 0, "trainable": 0, **{module: 0 for module in NEW_MODULES}}
    for name, parameter in model.named_parameters():
        size = parameter.numel()
        counts["total"] += size
        counts["trainable"] += size if parameter.requires_grad else 0
        if name in clip_names:
            counts["clip"] += size
            continue
        counts["new"] += size
        module = name.split(".", 1)[0]
        if module in NEW_MODULES:
            counts[module] += size
    return counts


def millions(count: int) -> str:
    return f"{count / 1e6:.2f} M"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=DEFAULT_PRESETS, help="preset names (see UniTriMConfig)")
    parser.add_argument("--json", metavar="PATH", help="also write the counts as JSON")
    args = parser.parse_args(argv)

    results = {}
    for preset in args.presets:
        model = UniTriMModel(UniTriMConfig.from_preset(preset))
        results[preset] = count_parameters(model)
        del model

    headers = ["preset", "total", "CLIP part", "new modules", *NEW_MODULES, "trainable"]
    rows = [
        [preset, *(millions(counts[key]) for key in ("total", "clip", "new", *NEW_MODULES, "trainable"))]
        for preset, counts in results.items()
    ]
    print(markdown_table(headers, rows))
    payload = {"benchmark": "parameter_counts", "machine": machine_info(), "presets": results}
    if args.json:
        write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main(sys.argv[1:])
