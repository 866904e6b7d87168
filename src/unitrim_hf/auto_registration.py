"""Register UniTriM with transformers' Auto classes without importing transformers at `import unitrim_hf`.

Each registration runs right after the transformers module holding that Auto mapping is imported (or at once when it
already is): `AutoConfig` when `transformers.models.auto.configuration_auto` loads, `AutoModel` with
`modeling_auto`, `AutoProcessor` with `processing_auto`; when one of the package's own modules is what imports
transformers, the registration waits until that module has been executed to its end. transformers imports those
modules on first use of the Auto class, so `import unitrim_hf` costs almost nothing (command-line tools parse
their arguments before torch and transformers load), and `AutoModel.from_pretrained(folder)` still finds `UniTriMModel` in any order of imports.
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

    from .modeling.configuration_unitrim import UniTriMConfig

    AutoConfig.register(UniTriMConfig.model_type, UniTriMConfig, exist_ok=True)


def _register_model() -> None:
    from transformers import AutoModel

    from .modeling.configuration_unitrim import UniTriMConfig
    from .modeling.modeling_unitrim import UniTriMModel

    AutoModel.register(UniTriMConfig, UniTriMModel, exist_ok=True)


def _register_processor() -> None:
    from transformers import AutoProcessor

    from .modeling.configuration_unitrim import UniTriMConfig
    from .processing_unitrim import UniTriMProcessor

    AutoProcessor.register(UniTriMConfig, UniTriMProcessor, exist_ok=True)


# Auto module -> the registration to run once it has loaded.
REGISTRATIONS: dict[str, Callable[[], None]] = {
    "transformers.models.auto.configuration_auto": _register_config,
    "transformers.models.auto.modeling_auto": _register_model,
    "transformers.models.auto.processing_auto": _register_processor,
}
PACKAGE_PREFIX = __name__.rpartition(".")[0] + "."
WATCHED_PREFIXES = ("transformers.", PACKAGE_PREFIX)


def _is_watched(name: str) -> bool:
    """Whether the import of module `name` may be what runs (or holds back) a registration."""
    return name == "transformers" or name.startswith(WATCHED_PREFIXES)


def _half_imported(name: str, finished: str | None) -> bool:
    """Whether module `name` is being executed right now (`finished`: one whose code has just run to its end)."""
    module = sys.modules.get(name)
    return name != finished and module is not None and getattr(module.__spec__, "_initializing", False)


class _RunAfterImport(importlib.abc.MetaPathFinder):
    """
    Wraps the loaders of transformers' modules and of the package's modules, and after each has executed runs the
    registrations that are ready: their Auto module has loaded, and no module of transformers or of the package is
    half imported. A package module that imports transformers may be what loads the Auto module, and transformers
    loads its Auto modules from inside others (`modeling_auto` from `modeling_utils`' imports): registering then
    would import a half-imported module again (`from transformers import AutoModel` as the first import failed so).
    """

    def __init__(self, registrations: dict[str, Callable[[], None]]) -> None:
        self.pending = dict(registrations)
        self.running = False
        self.lock = threading.RLock()

    def is_ready(self, auto_module: str, finished: str | None) -> bool:
        if auto_module not in sys.modules or _half_imported(auto_module, finished):
            return False
        watched = [name for name in list(sys.modules) if _is_watched(name)]
        return not any(_half_imported(name, finished) for name in watched)

    def run_ready(self, finished: str | None = None) -> None:
        """Run the registrations that are ready, one after the other (one's imports may make another ready)."""
        with self.lock:
            if self.running:
                return
            self.running = True
        try:
            while True:
                with self.lock:
                    ready = next((name for name in self.pending if self.is_ready(name, finished)), None)
                    if ready is None:
                        return
                    register = self.pending.pop(ready)
                register()
        finally:
            with self.lock:
                self.running = False
                if not self.pending and self in sys.meta_path:
                    sys.meta_path.remove(self)

    def find_spec(self, fullname: str, path=None, target=None):
        if not _is_watched(fullname):
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
            self.run_ready(finished=fullname)

        spec.loader.exec_module = exec_module  # this loader object belongs to this spec only
        return spec


def register_with_auto_classes() -> None:
    """Register now with the Auto mappings transformers has loaded, and when the others load."""
    finder = _RunAfterImport(REGISTRATIONS)
    sys.meta_path.insert(0, finder)
    finder.run_ready()
