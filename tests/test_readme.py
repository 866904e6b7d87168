"""The README's usage example runs as written (with a local tiny CLIP checkpoint and generated media)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPModel

from unitrim_hf import UniTriMConfig
from unitrim_hf.media.video_writer import write_video

README = Path(__file__).resolve().parents[1] / "README.md"


def test_usage_example_runs(tmp_path, monkeypatch) -> None:
    example = re.search(r"## Use it\n\n```python\n(.*?)```", README.read_text(), re.DOTALL).group(1)
    tiny = UniTriMConfig.from_preset("unitrim-tiny")
    clip = CLIPModel(CLIPConfig(text_config=tiny.text_config.to_dict(), vision_config=tiny.vision_config.to_dict(), projection_dim=32))
    clip.save_pretrained(tmp_path / "clip")
    write_video(tmp_path / "clip.mp4", np.random.default_rng(0).integers(0, 255, (20, 48, 64, 3), dtype=np.uint8))
    Image.new("RGB", (40, 30), "red").save(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(example.replace('"openai/clip-vit-base-patch32"', repr(str(tmp_path / "clip"))), namespace)
    output = namespace["output"]
    assert output.logits_per_text_video.shape == (1, 1) and torch.isfinite(output.logits_per_text_video).all()
    assert set(output.alignment_scores) == set(tiny.alignments)
