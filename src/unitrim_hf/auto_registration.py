"""Register UniTriM with transformers' Auto classes without importing transformers at `import unitrim_hf`.

Each registration runs right after the transformers module holding that Auto mapping is imported (or at once when it
already is): `AutoConfig` when `transformers.models.auto.configuration_auto` loads, `AutoModel` with
`modeling_auto`, `AutoProcessor` with `processing_auto`. transformers imports those modules on first use of the Auto
class, so `import unitrim_hf` costs almost nothing (command-line tools parse their arguments before torch and
transformers load), and `AutoModel.from_pretrained(folder)` still finds `UniTriMModel` in any order of imports.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import threading
from collections.abc import Callable
from types import ModuleType


def _register_config() -> None:
    from transformers import AutoConfig

    from .configuration_unitrim import UniTriMConfig

    AutoConfig.register(UniTriMConfig.model_type, UniTriMConfig, exist_ok=True)


def _register_model() -> None:
    from transformers import AutoModel

    from .configuration_unitrim import UniTriMConfig
    from .modeling_unitrim import UniTriMModel

    AutoModel.register(UniTriMConfig, UniTriMModel, exist_ok=True)


def _register_processor() -> None:
    from transformers import AutoProcessor

    from .configuration_unitrim import UniTriMConfig
    from .processing_unitrim import UniTriMProcessor

    AutoProcessor.register(UniTriMConfig, UniTriMProcessor, exist_ok=True)


REGISTRATIONS: dict[str, Callable[[], None]] = {
    "transformers.models.auto.configuration_auto": _register_config,
    "transformers.models.auto.modeling_auto": _register_model,
    "transformers.models.auto.processing_auto": _register_processor,
}


class _RunAfterImport(importlib.abc.MetaPathFinder):
    """Finds the watched modules with the normal path finder and runs a callback once each has executed."""

    def __init__(self, callbacks: dict[str, Callable[[], None]]) -> None:
        self.callbacks = dict(callbacks)
        self.due: list[Callable[[], None]] = []
        self.running = False
        self.lock = threading.RLock()

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname not in self.callbacks:
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            with self.lock:  # a spec may be found without being executed (`importlib.util.find_spec`)
                if fullname in self.callbacks:
                    self.due.append(self.callbacks.pop(fullname))
                if not self.callbacks and self in sys.meta_path:
                    sys.meta_path.remove(self)
            self.run_due()

        spec.loader.exec_module = exec_module  # this loader object belongs to this spec only
        return spec

    def run_due(self) -> None:
        """Run the due registrations one after the other: one registration's imports may load another watched
        module, whose registration then waits until the running one has finished (no partly imported module)."""
        with self.lock:
            if self.running:
                return
            self.running = True
        try:
            while True:
                with self.lock:
                    if not self.due:
                        return
                    register = self.due.pop(0)
                register()
        finally:
            with self.lock:
                self.running = False


def register_with_auto_classes() -> None:
    """Register now with the Auto mappings transformers has loaded, and when the others load."""
    pending = {}
    for module_name, register in REGISTRATIONS.items():
        if module_name in sys.modules:
            register()
        else:
            pending[module_name] = register
    if pending:
        sys.meta_path.insert(0, _RunAfterImport(pending))
