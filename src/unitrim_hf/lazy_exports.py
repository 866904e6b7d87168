"""Package attributes that load on first use (PEP 562), as transformers' `_LazyModule` does.

The package `__init__` files declare their public names and the submodule defining each; nothing heavy (torch,
transformers, lancedb) is imported until a name is first taken, so the command-line tools parse their arguments
first.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any], submodules: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """
    `__getattr__` and `__dir__` for `package`.

    Args:
        package: the package's `__name__`.
        exports: public name -> the submodule of `package` (relative name) that defines it.
        namespace: the package's `globals()`; a loaded name is cached there, so it is looked up only once.
        submodules: submodules that are themselves public attributes (e.g. sub-packages loaded on first use).
    """
    submodules = tuple(submodules)

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(f".{exports[name]}", package), name)
        elif name in submodules:
            value = importlib.import_module(f".{name}", package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports) | set(submodules))

    return __getattr__, __dir__
