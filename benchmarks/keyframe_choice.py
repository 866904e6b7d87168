"""Which frame each keyframe strategy picks on the synthetic benchmark's test clips.

Writes the synthetic benchmark (the main job's clips: 16 frames of 64x64 at 8 fps) to a temporary folder, samples
``--frames`` frames per clip uniformly (the main job's 8), and compares the keyframe of ``"self_attention"`` with
``"middle"`` and ``"clip_centroid"``, for each frame feature source:

* ``pixels``: the frames' RGB values at 16x16 (a model-free stand-in, to see the rule's behaviour);
* ``random-clip``: CLIP ViT-B/32 image features with random weights (seed 0): what the training frame cache would
  use if it took the features of a randomly initialized model, which it does not;
* any other value: a CLIP or UniTriM checkpoint folder, read with ``CLIPFrameEmbedder``.

    python benchmarks/keyframe_choice.py [--num-clips 100] [--frames 8] [--features pixels random-clip PATH]
        [--temperature T] [--json choice.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from unitrim_hf import FrameSampler, clip_transform
from unitrim_hf.data import write_synthetic_benchmark
from unitrim_hf.data.keyframes import CLIPFrameEmbedder, select_keyframe_index


def pixel_features(frames: np.ndarray) -> torch.Tensor:
    """uint8 (n, H, W, 3) -> (n, 768): RGB in [0, 1] at 16x16."""
    return clip_transform(frames, size=16, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)).flatten(1)


def random_clip_features() -> CLIPFrameEmbedder:
    """A CLIPFrameEmbedder over a randomly initialized ViT-B/32 CLIP, saved to a temporary folder."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    folder = Path(tempfile.mkdtemp()) / "random-clip"
    CLIPModel(CLIPConfig()).save_pretrained(folder)
    return CLIPFrameEmbedder(str(folder))


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    arguments.add_argument("--num-clips", type=int, default=100)
    arguments.add_argument("--frames", type=int, default=8)
    arguments.add_argument("--features", nargs="+", default=["pixels", "random-clip"])
    arguments.add_argument("--temperature", type=float, default=None, help="softmax temperature (default sqrt(D))")
    arguments.add_argument("--seed", type=int, default=1, help="seed of the synthetic test clips")
    arguments.add_argument("--json", type=Path, default=None)
    options = arguments.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        root = write_synthetic_benchmark(folder, num_train=1, num_test=options.num_clips, seed=options.seed)
        paths = sorted((root / "videos" / "all").glob("*.mp4"))[: options.num_clips]
        sampler = FrameSampler(num_frames=options.frames)
        videos = [sampler(str(path)) for path in paths]

    results = {}
    for source in options.features:
        embed = {"pixels": pixel_features, "random-clip": None}.get(source) or (
            random_clip_features() if source == "random-clip" else CLIPFrameEmbedder(source)
        )
        chosen = collections.Counter()
        same_as_middle = same_as_centroid = 0
        for sampled in videos:
            features = torch.as_tensor(embed(sampled.frames[np.asarray(sampled.mask) > 0]))
            lookup = lambda frames, features=features: features  # embed each clip once for both strategies
            attention = select_keyframe_index(sampled.frames, sampled.mask, "self_attention", lookup, options.temperature)
            centroid = select_keyframe_index(sampled.frames, sampled.mask, "clip_centroid", lookup)
            middle = select_keyframe_index(sampled.frames, sampled.mask, "middle")
            chosen[attention] += 1
            same_as_middle += attention == middle
            same_as_centroid += attention == centroid
        results[source] = {
            "clips": len(videos),
            "self_attention_equals_middle": same_as_middle / len(videos),
            "self_attention_equals_centroid": same_as_centroid / len(videos),
            "self_attention_frame_counts": {str(index): chosen[index] for index in range(options.frames)},
        }

    print(f"| features | clips | = middle (frame {options.frames // 2}) | = clip_centroid | frames chosen (0..{options.frames - 1}) |")
    print("|---|---|---|---|---|")
    for source, result in results.items():
        counts = " ".join(str(count) for count in result["self_attention_frame_counts"].values())
        print(
            f"| {source} | {result['clips']} | {100 * result['self_attention_equals_middle']:.0f} % "
            f"| {100 * result['self_attention_equals_centroid']:.0f} % | {counts} |"
        )
    if options.json is not None:
        options.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
