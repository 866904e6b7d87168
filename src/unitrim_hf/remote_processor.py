"""The processor as Hub remote code: a saved folder rebuilds the real `UniTriMProcessor` without the package.

transformers' remote-code loader copies one module and the flat `from .name import ...` modules next to it, which
cannot express a package with sub-packages (the triplet parser) or data files (its tagger lexicon). So saving a
processor also writes a *bundle*: the processor's module and every module it imports relatively, with their package
layout, and the package's `assets/`, under `unitrim_processing/` (listed in `unitrim_processing/manifest.json`),
plus this module at the folder's top. `processor_config.json` maps `AutoProcessor` to `UniTriMProcessorLoader`,
which fetches the bundle's files (from the folder, or the Hub with the same options), imports them as a private
package and returns that package's `UniTriMProcessor.from_pretrained(...)`. Before importing anything of the
bundle it checks that every package the processor needs at run time is installed (`RUNTIME_REQUIREMENTS`), and
raises one `ImportError` naming all the missing ones with their pip command.

This module imports only the standard library and transformers (it is the remote code transformers loads).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

BUNDLE_FOLDER = "unitrim_processing"
MANIFEST_NAME = "manifest.json"
ASSETS_FOLDER = "assets"
PROCESSOR_MODULE = "processing_unitrim"
LOADER_REFERENCE = f"{Path(__file__).stem}.UniTriMProcessorLoader"
# The modules the bundled processor imports besides the standard library and transformers, with their pip names
# (tests/test_remote_processor_requirements.py keeps it equal to the bundle's imports).
RUNTIME_REQUIREMENTS = {"PIL": "Pillow", "av": "av", "nltk": "nltk", "numpy": "numpy", "torch": "torch"}
_HUB_OPTIONS = ("cache_dir", "force_download", "proxies", "token", "revision", "local_files_only", "subfolder")


# ---------------------------------------------------------------------------------------------- writing


def _module_file(location: Path) -> Path | None:
    """`location.py` or `location/__init__.py`, whichever exists."""
    if location.with_suffix(".py").is_file():
        return location.with_suffix(".py")
    if (location / "__init__.py").is_file():
        return location / "__init__.py"
    return None


def _relative_import_files(module_file: Path) -> set[Path]:
    """Files of the modules `module_file` imports relatively (`from .a.b import c`, `from .. import d`), anywhere
    in it (also inside functions)."""
    found: set[Path] = set()
    tree = ast.parse(module_file.read_text(encoding="utf-8"), filename=str(module_file))
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = module_file.parent
        for _ in range(node.level - 1):
            base = base.parent
        target = base.joinpath(*node.module.split(".")) if node.module else base
        if node.module:
            file = _module_file(target)
            if file is None:
                raise FileNotFoundError(f"{module_file}: `from {'.' * node.level}{node.module} import` names no module")
            found.add(file)
        for alias in node.names:  # `from .package import submodule` imports a module too
            submodule = _module_file(target / alias.name)
            if submodule is not None:
                found.add(submodule)
            elif not node.module:
                raise ValueError(
                    f"{module_file}: `from {'.' * node.level} import {alias.name}` imports a name of the package's "
                    "__init__, which the bundle does not carry; import it from its module."
                )
    return found


def bundled_module_files(entry_module: Path) -> list[Path]:
    """`entry_module` and, recursively, every module it imports relatively, with the `__init__.py` of each
    sub-package on the way (the package's own `__init__.py` is left out: the bundle gets an empty one)."""
    package_root = entry_module.parent
    pending, seen = [entry_module], {entry_module}
    while pending:
        for file in _relative_import_files(pending.pop()):
            file = file.resolve()
            if package_root.resolve() not in file.parents:
                raise ValueError(f"{file} lies outside the package {package_root} and cannot be bundled.")
            folder = file.parent
            while folder.resolve() != package_root.resolve():  # sub-package __init__ files run on import
                seen_init = _module_file(folder)
                if seen_init is not None and seen_init not in seen:
                    seen.add(seen_init)
                    pending.append(seen_init)
                folder = folder.parent
            if file not in seen and file != (package_root / "__init__.py").resolve():
                seen.add(file)
                pending.append(file)
    return sorted({file.resolve() for file in seen} - {(package_root / "__init__.py").resolve()})


def write_processor_bundle(save_directory: str | os.PathLike, entry_module: str | os.PathLike) -> list[str]:
    """
    Write the remote code of a processor into `save_directory`: the loader module at the top, and under
    `unitrim_processing/` the processor's module with everything it imports relatively, the package's `assets/` and
    a manifest of the files. Replaces an earlier bundle in that folder.

    Args:
        save_directory: the folder the processor is saved in.
        entry_module: path of the processor's module inside its package.

    Returns:
        the written files.
    """
    entry_module = Path(entry_module).resolve()
    package_root = entry_module.parent
    bundle = Path(save_directory) / BUNDLE_FOLDER
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir(parents=True)
    relative_paths = []
    for file in bundled_module_files(entry_module):
        relative = file.relative_to(package_root)
        (bundle / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, bundle / relative)
        relative_paths.append(relative.as_posix())
    (bundle / "__init__.py").write_text('"""UniTriM processor code, bundled with a saved processor."""\n')
    relative_paths.append("__init__.py")
    assets = package_root / ASSETS_FOLDER
    if assets.is_dir():
        for file in sorted(path for path in assets.rglob("*") if path.is_file()):
            relative = file.relative_to(package_root)
            (bundle / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, bundle / relative)
            relative_paths.append(relative.as_posix())
    manifest = {"entry_module": entry_module.stem, "files": sorted(relative_paths)}
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    loader = Path(save_directory) / Path(__file__).name
    shutil.copyfile(__file__, loader)
    return [str(loader), str(bundle / MANIFEST_NAME)] + [str(bundle / path) for path in relative_paths]


# ---------------------------------------------------------------------------------------------- loading


def _importable(module: str) -> bool:
    """Whether `module` can be imported here, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        return False


def missing_requirements(requirements: dict[str, str] = RUNTIME_REQUIREMENTS) -> list[str]:
    """The pip names of the `requirements` (module -> pip name) whose module cannot be imported, sorted."""
    return sorted((package for module, package in requirements.items() if not _importable(module)), key=str.lower)


def check_runtime_requirements(requirements: dict[str, str] = RUNTIME_REQUIREMENTS) -> None:
    """
    Check, without importing them, that the processor's runtime packages are installed.

    Args:
        requirements: module name -> pip name of each package to check.

    Raises:
        ImportError: naming every missing package of `requirements` and the pip command that installs them, e.g.
            "UniTriMProcessor needs the packages av, nltk: pip install av nltk".
    """
    missing = missing_requirements(requirements)
    if missing:
        noun = "package" if len(missing) == 1 else "packages"
        raise ImportError(f"UniTriMProcessor needs the {noun} {', '.join(missing)}: pip install {' '.join(missing)}")


def import_processor_bundle(pretrained_model_name_or_path: str | os.PathLike, **hub_options: Any):
    """
    Fetch the bundle of a saved processor (a local folder or a Hub repository) and import it as a private package
    named after a hash of its files (so two different bundles never share modules).

    Returns:
        the bundle's processor module.

    Raises:
        ImportError: packages the processor needs are not installed (all of them named, see
            `check_runtime_requirements`).
    """
    from transformers.utils import cached_file

    check_runtime_requirements()

    def fetch(relative_path: str) -> Path:
        path = cached_file(pretrained_model_name_or_path, f"{BUNDLE_FOLDER}/{relative_path}", **hub_options)
        return Path(path)

    manifest_path = fetch(MANIFEST_NAME)
    manifest = json.loads(manifest_path.read_text())
    digest = hashlib.sha256(manifest_path.read_bytes())
    for relative_path in manifest["files"]:
        digest.update(fetch(relative_path).read_bytes())
    root = manifest_path.parent
    package_name = f"_unitrim_processing_{digest.hexdigest()[:16]}"
    if package_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            package_name, root / "__init__.py", submodule_search_locations=[str(root)]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules[package_name] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{package_name}.{manifest['entry_module']}")


class UniTriMProcessorLoader:
    """What `AutoProcessor.from_pretrained(folder, trust_remote_code=True)` finds in a saved folder's auto_map:
    `from_pretrained` checks the processor's runtime requirements, imports the bundled package and returns its real
    `UniTriMProcessor`."""

    @classmethod
    def register_for_auto_class(cls, auto_class: str = "AutoProcessor") -> None:
        """Nothing to register: the processor it returns registers itself when saved again."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any):
        hub_options = {key: kwargs[key] for key in _HUB_OPTIONS if kwargs.get(key) is not None}
        module = import_processor_bundle(pretrained_model_name_or_path, **hub_options)
        return module.UniTriMProcessor.from_pretrained(pretrained_model_name_or_path, **kwargs)
