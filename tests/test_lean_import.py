"""`import unitrim_hf` loads neither torch nor transformers nor the sub-packages, and the Auto classes still find
UniTriM in either import order (fresh processes)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor


def run_python(script: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=300,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_import_loads_nothing_heavy_and_names_load_on_use() -> None:
    output = run_python(
        """
        import sys
        import unitrim_hf
        heavy = [name for name in ("torch", "transformers", "numpy", "nltk", "av", "unitrim_hf.data",
                                   "unitrim_hf.training", "unitrim_hf.evaluation", "unitrim_hf.search",
                                   "unitrim_hf.modeling.modeling_unitrim") if name in sys.modules]
        assert not heavy, heavy
        assert unitrim_hf.UniTriMConfig.model_type == "unitrim"
        assert unitrim_hf.data.__name__ == "unitrim_hf.data" and "unitrim_hf.data" in sys.modules
        assert "UniTriMModel" in dir(unitrim_hf) and "search" in dir(unitrim_hf)
        print("ok")
        """
    )
    assert output.strip() == "ok"


@pytest.mark.parametrize("transformers_first", [False, True])
def test_auto_classes_find_unitrim_in_either_import_order(tmp_path, transformers_first: bool) -> None:
    model = UniTriMModel(UniTriMConfig.from_preset("xclip-tiny"))
    model.save_pretrained(tmp_path)
    UniTriMProcessor.for_model_config(model.config).save_pretrained(tmp_path)
    imports = ["import unitrim_hf", "from transformers import AutoConfig, AutoModel, AutoProcessor"]
    if transformers_first:
        imports.reverse()
    output = run_python(
        "\n".join(imports) + f"""
config = AutoConfig.from_pretrained({str(tmp_path)!r})
model = AutoModel.from_pretrained({str(tmp_path)!r})
processor = AutoProcessor.from_pretrained({str(tmp_path)!r})
print(type(config).__module__, type(model).__module__, type(processor).__module__)
"""
    )
    assert output.split() == [
        "unitrim_hf.modeling.configuration_unitrim", "unitrim_hf.modeling.modeling_unitrim", "unitrim_hf.processing_unitrim"
    ]


@pytest.mark.parametrize(
    "first_transformers_import",
    [
        "from transformers import AutoModel",
        pytest.param("import transformers.testing_utils", marks=pytest.mark.slow),
        pytest.param("from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES", marks=pytest.mark.slow),
        "from transformers import PreTrainedModel",
    ],
)
def test_first_transformers_import_after_the_package_works_and_registers(first_transformers_import: str) -> None:
    """transformers loads its Auto modules from inside other imports; registering at that moment used to import a
    half-imported module again (`import unitrim_hf; from transformers import AutoModel` failed)."""
    output = run_python(
        f"""
        import unitrim_hf
        {first_transformers_import}
        from transformers import AutoConfig, AutoModel, AutoProcessor
        config = AutoConfig.for_model("unitrim")
        print(type(config).__name__, AutoModel._model_mapping[type(config)].__name__)
        """
    )
    assert output.split() == ["UniTriMConfig", "UniTriMModel"]
