"""The remote-code processor names every package it needs and lacks, at load time, in one ImportError."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import unitrim_hf
from unitrim_hf import UniTriMProcessor
from unitrim_hf.remote_processor import (
    RUNTIME_REQUIREMENTS,
    bundled_module_files,
    check_runtime_requirements,
    missing_requirements,
)


def _external_imports(module_file: Path) -> set[str]:
    """Top-level names of the modules `module_file` imports absolutely (anywhere in it), but the standard library."""
    names = set()
    for node in ast.walk(ast.parse(module_file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names)


def test_runtime_requirements_are_what_the_bundle_imports() -> None:
    package_root = Path(unitrim_hf.__file__).parent
    imported = set().union(*map(_external_imports, bundled_module_files(package_root / "processing_unitrim.py")))
    assert imported - {"transformers"} == set(RUNTIME_REQUIREMENTS)


def test_missing_packages_are_named_in_one_error(monkeypatch) -> None:
    assert missing_requirements() == []
    check_runtime_requirements()
    for module in ("nltk", "av"):
        monkeypatch.setitem(sys.modules, module, None)  # what `import` then refuses
    assert missing_requirements() == ["av", "nltk"]
    with pytest.raises(ImportError) as raised:
        check_runtime_requirements()
    assert str(raised.value) == "UniTriMProcessor needs the packages av, nltk: pip install av nltk"
    monkeypatch.setitem(sys.modules, "PIL", None)
    assert missing_requirements() == ["av", "nltk", "Pillow"]  # pip names, sorted without case
    with pytest.raises(ImportError, match=r"^UniTriMProcessor needs the package Pillow: pip install Pillow$"):
        check_runtime_requirements({"PIL": "Pillow", "numpy": "numpy"})


def test_remote_code_folder_names_every_missing_package_at_load(tmp_path) -> None:
    folder = tmp_path / "saved"
    UniTriMProcessor().save_pretrained(folder)
    script = textwrap.dedent(
        f"""
        import sys
        for module in ("unitrim_hf", "av", "nltk", "PIL"):
            sys.modules[module] = None  # not installed
        from transformers import AutoProcessor
        try:
            AutoProcessor.from_pretrained({str(folder)!r}, trust_remote_code=True)
        except ImportError as error:
            print(error)
        else:
            print("loaded")
        print(sorted(name for name in sys.modules if name.startswith("_unitrim_processing_")))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
        env={"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # One error naming all three, before any module of the bundle is imported.
    assert result.stdout.splitlines() == [
        "UniTriMProcessor needs the packages av, nltk, Pillow: pip install av nltk Pillow",
        "[]",
    ]
