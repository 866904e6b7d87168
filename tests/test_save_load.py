"""safetensors round trips, Auto classes and the remote-code folder."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import torch
from transformers import AutoConfig, AutoModel

from model_inputs import random_image_inputs, random_text_inputs, random_video_inputs
from unitrim_hf import UniTriMConfig, UniTriMModel


def _outputs(model: UniTriMModel) -> dict[str, torch.Tensor]:
    config = model.config
    inputs = {**random_text_inputs(config), **random_video_inputs(config), **random_image_inputs(config)}
    with torch.no_grad():
        output = model(**inputs)
    return {"video": output.logits_per_text_video, "image": output.logits_per_text_image}


def _settings(config: UniTriMConfig) -> dict:
    """The config without the loader's bookkeeping (source path, dtype filled in on load)."""
    settings = config.to_dict()
    settings.pop("_name_or_path")
    for tower in ("text_config", "vision_config"):
        settings[tower].pop("dtype")
    return settings


def test_round_trip_gives_identical_outputs(tmp_path) -> None:
    model = UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny")).eval()
    with torch.no_grad():
        for parameter in model.temporal_encoder.output_proj.parameters():
            parameter.normal_()  # a trained state, not the initialisation
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = UniTriMModel.from_pretrained(tmp_path).eval()
    assert _settings(loaded.config) == _settings(model.config)
    for name, value in _outputs(model).items():
        torch.testing.assert_close(_outputs(loaded)[name], value, rtol=0, atol=0)


def test_auto_classes_load_the_saved_model(tmp_path) -> None:
    model = UniTriMModel(UniTriMConfig.from_preset("xclip-tiny")).eval()
    model.save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)) is UniTriMConfig
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is UniTriMModel
    torch.testing.assert_close(_outputs(loaded)["video"], _outputs(model)["video"], rtol=0, atol=0)


def test_remote_code_folder_loads_without_the_package(tmp_path) -> None:
    model = UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny")).eval()
    model.save_pretrained(tmp_path)
    expected = _outputs(model)["video"]
    torch.save(
        {**random_text_inputs(model.config), **random_video_inputs(model.config)}, tmp_path / "inputs.pt"
    )
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["unitrim_hf"] = None  # the package must not be importable
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        inputs = torch.load({str(tmp_path / "inputs.pt")!r})
        with torch.no_grad():
            logits = model(**inputs).logits_per_text_video
        torch.save(logits, {str(tmp_path / "logits.pt")!r})
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
        env={"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), expected, rtol=0, atol=0)
