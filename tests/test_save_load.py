"""safetensors round trips, Auto classes and the remote-code folder."""

from __future__ import annotations

import json
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
        for parameter in [*model.temporal_encoder.parameters(), *model.aosm.parameters()]:
            parameter.add_(torch.randn_like(parameter) * 0.1)  # a trained state, not the initialization
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
        torch.set_num_threads({torch.get_num_threads()})  # as this process: same reduction order, exact equality
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


def _media_files(folder) -> tuple[str, str]:
    """A 6-frame video file and a PNG image, both small."""
    import numpy as np
    from PIL import Image

    from unitrim_hf.media.video_writer import write_video

    rng = np.random.default_rng(0)
    video = write_video(folder / "clip.mp4", rng.integers(0, 255, (6, 48, 64, 3), dtype=np.uint8), fps=6)
    Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(folder / "still.png")
    return str(video), str(folder / "still.png")


def _save_model_and_processor(folder) -> tuple[UniTriMModel, "UniTriMProcessor"]:
    from unitrim_hf import UniTriMProcessor

    model = UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny")).eval()
    processor = UniTriMProcessor.for_model_config(model.config, frame_sampler_config={"num_frames": 3})
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, processor


CAPTION = "a man is riding a horse in a field"


def test_saved_processor_carries_its_code_bundle(tmp_path) -> None:
    from unitrim_hf.remote_processor import import_processor_bundle

    folder = tmp_path / "saved"
    _, processor = _save_model_and_processor(folder)
    config = json.loads((folder / "processor_config.json").read_text())
    assert config["auto_map"] == {"AutoProcessor": "remote_processor.UniTriMProcessorLoader"}
    manifest = json.loads((folder / "unitrim_processing" / "manifest.json").read_text())
    assert "processing_unitrim.py" in manifest["files"] and "assets/en-lexicon.txt" in manifest["files"]
    bundled = import_processor_bundle(folder).UniTriMProcessor.from_pretrained(folder)
    assert type(bundled).__module__.startswith("_unitrim_processing_")
    expected, actual = processor(text=[CAPTION]), bundled(text=[CAPTION])
    assert int(expected["triplet_mask"].sum()) > 0
    for name, value in expected.items():
        torch.testing.assert_close(actual[name], value, rtol=0, atol=0)


def test_remote_code_processor_and_model_run_end_to_end_without_the_package(tmp_path) -> None:
    folder = tmp_path / "saved"
    model, processor = _save_model_and_processor(folder)
    video, image = _media_files(tmp_path)
    inputs = processor(text=[CAPTION], videos=[video], images=[image])
    with torch.no_grad():
        output = model(**inputs)
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["unitrim_hf"] = None  # the package must not be importable
        import torch
        from transformers import AutoModel, AutoProcessor
        processor = AutoProcessor.from_pretrained({str(folder)!r}, trust_remote_code=True)
        assert type(processor).__name__ == "UniTriMProcessor", type(processor)
        assert not type(processor).__module__.startswith("unitrim_hf"), type(processor).__module__
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        inputs = processor(text=[{CAPTION!r}], videos=[{video!r}], images=[{image!r}])
        with torch.no_grad():
            output = model(**inputs)
        torch.save({{"inputs": dict(inputs), "video": output.logits_per_text_video,
                    "image": output.logits_per_text_image}}, {str(tmp_path / "remote.pt")!r})
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
        env={"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = torch.load(tmp_path / "remote.pt")
    assert set(remote["inputs"]) == set(inputs) and int(inputs["triplet_mask"].sum()) > 0
    for name, value in inputs.items():
        torch.testing.assert_close(remote["inputs"][name], value, rtol=0, atol=0)
    # Same weights and inputs; another process may round the last bit differently (thread count).
    torch.testing.assert_close(remote["video"], output.logits_per_text_video, rtol=0, atol=1e-5)
    torch.testing.assert_close(remote["image"], output.logits_per_text_image, rtol=0, atol=1e-5)
