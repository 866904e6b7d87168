"""Which test-time post-processing an evaluation reports beside its plain numbers, and with which settings.

The same spelling serves `evaluate_retrieval(postprocessing=...)`, `unitrim-eval` and a comparison recipe's
`postprocessing` key: a method name, a list of names, or a mapping of names to their settings::

    postprocessing: [dsl, qb_norm, sk_norm]
    postprocessing: {dsl: {temperature: 1.0}, qb_norm: {beta: 20, bank_size: 5000}, sk_norm: {iterations: 4}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

# Defaults of the official code: QB-Norm's inverse temperature on cosine scores, UCoFiA's Sinkhorn-Knopp iterations
# (the latter also `modeling.sinkhorn.DEFAULT_SINKHORN_ITERATIONS`; this module stays free of torch, so that
# `unitrim-compare` reads a recipe before torch loads).
DEFAULT_QB_NORM_BETA = 20.0
DEFAULT_SK_NORM_ITERATIONS = 4


@dataclass(frozen=True)
class DualSoftmax:
    """DSL: `temperature` of the softmax over the other side (1 on logits)."""

    temperature: float = 1.0
    name = "dsl"
    label = "DSL"
    needs_query_bank = False

    def __post_init__(self) -> None:
        _positive(self.name, "temperature", self.temperature)


@dataclass(frozen=True)
class QueryBankNorm:
    """QB-Norm: `beta` on cosine scores, dynamic inverted softmax with `k`, a bank of `bank_size` training captions
    (None: all distinct training captions)."""

    beta: float = DEFAULT_QB_NORM_BETA
    k: int = 1
    dynamic: bool = True
    bank_size: int | None = None
    name = "qb_norm"
    label = "QB-Norm"
    needs_query_bank = True

    def __post_init__(self) -> None:
        _positive(self.name, "beta", self.beta)
        _positive_int(self.name, "k", self.k)
        if not isinstance(self.dynamic, bool):
            raise ValueError(f"postprocessing {self.name}: dynamic must be true or false, got {self.dynamic!r}")
        if self.bank_size is not None:
            _positive_int(self.name, "bank_size", self.bank_size)


@dataclass(frozen=True)
class SinkhornNorm:
    """SK-norm: Sinkhorn-Knopp `iterations` on `exp(bank logits / temperature)`, a bank of `bank_size` training
    captions (None: all distinct training captions)."""

    iterations: int = DEFAULT_SK_NORM_ITERATIONS
    temperature: float = 1.0
    bank_size: int | None = None
    name = "sk_norm"
    label = "SK-norm"
    needs_query_bank = True

    def __post_init__(self) -> None:
        _positive_int(self.name, "iterations", self.iterations)
        _positive(self.name, "temperature", self.temperature)
        if self.bank_size is not None:
            _positive_int(self.name, "bank_size", self.bank_size)


PostProcessingMethod = DualSoftmax | QueryBankNorm | SinkhornNorm
METHODS: dict[str, type] = {cls.name: cls for cls in (DualSoftmax, QueryBankNorm, SinkhornNorm)}


def parse_postprocessing(value: Any) -> tuple[PostProcessingMethod, ...]:
    """The methods `value` asks for, in its order (see the module docstring); None or empty: none.

    Raises:
        ValueError: an unknown method or setting, a method named twice, or a setting of the wrong kind.
    """
    if value is None:
        return ()
    if isinstance(value, (DualSoftmax, QueryBankNorm, SinkhornNorm)):
        return (value,)
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Mapping):
        entries = list(value.items())
    elif isinstance(value, Sequence):
        entries = []
        for item in value:
            if isinstance(item, (DualSoftmax, QueryBankNorm, SinkhornNorm)):
                entries.append((item.name, item))
            elif isinstance(item, str):
                entries.append((item, None))
            elif isinstance(item, Mapping) and len(item) == 1:
                entries.extend(item.items())
            else:
                raise ValueError(f"postprocessing: each entry must be a method name or {{name: settings}}, got {item!r}")
    else:
        raise ValueError(f"postprocessing must be a method name, a list or a mapping, got {type(value).__name__}")
    methods: list[PostProcessingMethod] = []
    for name, settings in entries:
        methods.append(_method(name, settings))
    names = [method.name for method in methods]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"postprocessing names {twice} more than once")
    return tuple(methods)


def postprocessing_settings(methods: Sequence[PostProcessingMethod]) -> dict[str, dict[str, Any]]:
    """`{name: settings}` of `methods` (JSON-serializable; `parse_postprocessing` reads it back)."""
    return {method.name: asdict(method) for method in methods}


def _method(name: Any, settings: Any) -> PostProcessingMethod:
    if isinstance(settings, (DualSoftmax, QueryBankNorm, SinkhornNorm)):
        return settings
    if name not in METHODS:
        raise ValueError(f"postprocessing: unknown method {name!r}; known: {sorted(METHODS)}")
    cls = METHODS[name]
    if settings is None or settings is True:
        settings = {}
    if not isinstance(settings, Mapping):
        raise ValueError(f"postprocessing {name}: settings must be a mapping, got {settings!r}")
    known = {item.name for item in fields(cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"postprocessing {name}: unknown settings {unknown}; known: {sorted(known)}")
    return cls(**settings)


def _positive(method: str, key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise ValueError(f"postprocessing {method}: {key} must be a positive number, got {value!r}")


def _positive_int(method: str, key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"postprocessing {method}: {key} must be a positive integer, got {value!r}")
