"""The package's shape: the wing boundaries (docs/architecture.md's map) and one voice in its docstrings."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "unitrim_hf"
STANDARD_LIBRARY = set(sys.stdlib_module_names)


def _imports(module_file: Path) -> list[tuple[int, str]]:
    """(level, module) of every import in `module_file`, also those inside functions; level 0 is absolute,
    and `from . import x` / `from .. import x` give the module "x" at that level."""
    found = []
    for node in ast.walk(ast.parse(module_file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.module:
                found.append((node.level, node.module))
            else:
                found += [(node.level, alias.name) for alias in node.names]
    return found


def _wing_files(wing: str) -> list[Path]:
    files = sorted((PACKAGE / wing).rglob("*.py"))
    assert files, f"no modules under {wing}/"
    return files


def _offending_imports(wing: str, allowed_packages: set[str], allowed_parents: set[str]) -> list[str]:
    """Imports of `wing`'s modules outside stdlib, `allowed_packages`, the wing itself (level 1) and the package
    modules `allowed_parents` (level 2, e.g. `..errors`)."""
    offending = []
    for module_file in _wing_files(wing):
        for level, module in _imports(module_file):
            top = module.split(".")[0]
            if level == 0 and (top in STANDARD_LIBRARY or top in allowed_packages):
                continue
            if level == 1:
                continue
            if level == 2 and top in allowed_parents:
                continue
            offending.append(f"{module_file.relative_to(PACKAGE)}: {'.' * level}{module}")
    return offending


def test_the_model_wing_imports_only_torch_transformers_and_itself() -> None:
    """Everything under modeling/ ships as Hub remote code: it can import nothing of the package outside it
    (its `__init__` alone uses the package's lazy exports, which remote code never loads)."""
    offending = [
        line for line in _offending_imports("modeling", {"torch", "transformers"}, set())
        if line != "modeling/__init__.py: ..lazy_exports"
    ]
    assert not offending, "modeling/ reaches outside torch, transformers and itself:\n" + "\n".join(offending)


def test_the_media_wing_knows_no_model() -> None:
    """media/ turns files into frames and pixels: PyAV, Pillow, numpy, torch tensors and the package's errors."""
    offending = _offending_imports("media", {"av", "PIL", "numpy", "torch"}, {"errors", "lazy_exports"})
    assert not offending, "media/ imports outside its wing:\n" + "\n".join(offending)
    for module_file in _wing_files("media"):
        for level, module in _imports(module_file):
            assert "modeling" not in module.split(".") and "transformers" not in module, (module_file, module)


def test_the_boundary_check_catches_an_import_from_outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above would fail: a modeling module that imports the processor is reported."""
    (tmp_path / "modeling").mkdir()
    (tmp_path / "modeling" / "leaky.py").write_text("def f():\n    from ..processing_unitrim import UniTriMProcessor\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    assert _offending_imports("modeling", {"torch", "transformers"}, set()) == ["modeling/leaky.py: ..processing_unitrim"]


# docs/architecture.md's map: what each part of the package may import of the others (run-time imports; type
# hints under `if TYPE_CHECKING:` do not count). Plumbing every part may use: errors, lazy_exports, benchmark_names,
# model_folders.
PLUMBING = {"errors", "lazy_exports", "benchmark_names", "model_folders"}
PROCESSOR = {"processing_unitrim", "tokenization", "remote_processor"}
MAY_IMPORT = {
    "errors": set(), "lazy_exports": set(), "benchmark_names": set(), "model_folders": set(),
    "modeling": set(),
    "media": set(),
    "triplets": set(),
    "tokenization": set(), "remote_processor": set(),
    "processing_unitrim": {"media", "triplets", "tokenization", "remote_processor"},
    "auto_registration": {"modeling", "processing_unitrim"},
    "data": {"media", "modeling"},
    "evaluation": {"data", "media", "modeling", *PROCESSOR},
    "search": {"media", "modeling", *PROCESSOR},
    "training": {"data", "evaluation", "media", "modeling", *PROCESSOR},
    "comparison": {"training", "evaluation", "modeling"},
}


def _part_of(module_file: Path) -> str:
    relative = module_file.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _run_time_package_imports(module_file: Path) -> set[str]:
    """The package parts (top-level modules or sub-packages) `module_file` imports outside type-checking blocks."""
    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    type_checking = {
        id(child) for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for child in ast.walk(node)
    }
    folder = module_file.parent.relative_to(PACKAGE).parts
    parts = set()
    for node in ast.walk(tree):
        if id(node) in type_checking or not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0:
            names = node.module.split(".") if node.module.startswith("unitrim_hf") else []
            target = names[1:]
        else:
            target = [*folder[: len(folder) - (node.level - 1)], *(node.module.split(".") if node.module else [])]
        if not target and (node.level or node.module == "unitrim_hf"):
            target = [node.names[0].name]
        if target:
            parts.add(target[0])
    return parts


def test_every_part_of_the_package_imports_only_what_the_map_allows() -> None:
    files = [path for path in sorted(PACKAGE.rglob("*.py")) if path.name != "__init__.py" or path.parent != PACKAGE]
    assert {_part_of(path) for path in files} == set(MAY_IMPORT), "a part of the package is missing from the map"
    offending = []
    for path in files:
        part = _part_of(path)
        allowed = MAY_IMPORT[part] | PLUMBING | {part}
        offending += [f"{path.relative_to(PACKAGE)} imports {name}" for name in sorted(_run_time_package_imports(path) - allowed)]
    assert not offending, "\n".join(offending)


# reST roles and double backticks (```fences``` are Markdown, and fine): the package writes `code` and [`Class`].
RESTRUCTURED_TEXT = re.compile(r":(class|func|meth|attr|mod|data|obj|exc):`|(?<!`)``(?!`)")
# One spelling: -ize, as transformers writes it.
BRITISH_SPELLING = re.compile(r"(?<![A-Za-z])(tokeni|normali|initiali|summari|recogni|seriali|optimi)s(e|ed|es|ing|ation)(?![a-z])", re.I)


@pytest.mark.parametrize("pattern", [RESTRUCTURED_TEXT, BRITISH_SPELLING], ids=["docstring-dialect", "ize-spelling"])
def test_one_voice_across_the_package(pattern: re.Pattern[str]) -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, "\n".join(found[:20])
    assert pattern.search("see :class:`~unitrim_hf.UniTriMModel`" if pattern is RESTRUCTURED_TEXT else "normalised")


def test_the_map_check_sees_imports_inside_functions_and_skips_type_hints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "media").mkdir()
    module = tmp_path / "media" / "leaky.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..search.query import Query\n"
        "def f():\n    from ..modeling.pooling import l2_normalize\n    from . import video_decoding\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    assert _run_time_package_imports(module) == {"modeling", "media"}


def test_the_media_wing_exports_the_frame_axes_that_sample_indices_takes() -> None:
    from unitrim_hf.media import FrameGrid, FrameSampler, FrameTimes
    import numpy as np

    assert FrameSampler(4).sample_indices(FrameGrid(100, 25.0)).tolist() == [12, 37, 62, 87]
    assert FrameSampler(2).sample_indices(FrameTimes(np.array([0.0, 1.0, 3.0]), 4.0)).tolist() == [1, 2]
