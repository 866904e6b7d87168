"""Initial weights keyed by module name, so that an ablation changes nothing but the module it switches off.

With one global random stream, every module drawn after an optional one (patch selector, temporal encoder,
disentangler) gets other initial values when that module is switched off: "same seed" would then compare two
differently initialized models, and a module's effect would be mixed with the luck of the draw. Here each module
draws from its own stream, seeded by the model's base seed and its qualified name; the global stream itself is left
where it was. The base seed is one draw from the global stream when the weights are first initialized (building the
modules leaves that stream untouched), so a model built on the meta device and initialized while loading gets the
values of one built and initialized directly.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch

SEED_RANGE = 2**62


def draw_base_seed() -> int:
    """One draw from the global (CPU) stream: the model's base seed; reproducible after `torch.manual_seed`."""
    return int(torch.randint(SEED_RANGE, (), device="cpu"))


def _forked_devices() -> list[int]:
    return list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []


@contextmanager
def global_stream_untouched() -> Iterator[None]:
    """Inside, the random streams (CPU, and CUDA when in use) may be drawn from; after it, they are back where
    they were."""
    with torch.random.fork_rng(devices=_forked_devices()):
        yield


@contextmanager
def random_stream_of(base_seed: int, module_name: str) -> Iterator[None]:
    """Inside, the random streams (CPU, and CUDA when in use) are seeded by `(base_seed, module_name)`; after it,
    they are back where they were."""
    with global_stream_untouched():
        torch.manual_seed((base_seed + zlib.crc32(module_name.encode())) % SEED_RANGE)
        yield
