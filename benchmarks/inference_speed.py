"""CPU inference time of the UniTriM presets in one run, as ratios to the CLIP work they contain.

Three measurements, each timed round-robin over the presets (warm-up, then `--repeats` rounds; median and min):

1. video encoding: `get_video_features` on `--batch-size` videos x `--frames` frames; reference "clip-frames" is
   the bare CLIP vision tower + visual projection on the same frames (taken from the clip4clip-meanp model).
   Goal: full UniTriM <= 1.10x clip-frames.
2. text encoding: `get_text_features` on `--num-captions` captions of `--caption-length` tokens (plus, for presets
   with triplets, every caption with `max_triplets` triplet phrases of `max_triplet_length` tokens: the upper bound).
3. scoring: `similarity` of `--num-captions` text features against a `--gallery-size` video gallery, on
   precomputed features. The text features are the real ones of step 2; the gallery repeats the real features
   of the step-1 videos with seeded Gaussian noise (10 % of their RMS) added to frame and patch features and the
   video feature recomputed, so no extra CLIP encoding is needed (scoring cost does not depend on the values).

Models are randomly initialized (the cost does not depend on the weights); inputs are seeded random tensors.

    python benchmarks/inference_speed.py [--presets unitrim xclip clip4clip-meanp] [--threads N] [--repeats 5]
        [--frames 12] [--batch-size 4] [--json results.json]
    python benchmarks/inference_speed.py --presets unitrim-tiny xclip-tiny clip4clip-meanp-tiny --repeats 1
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch
from _timing import Timing, machine_info, markdown_table, report, set_torch_threads, time_interleaved

from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMTextFeatures, UniTriMVisualFeatures

DEFAULT_PRESETS = ["unitrim", "xclip", "clip4clip-meanp"]
BASELINE_PREFIX = "clip4clip-meanp"
CLIP_FRAMES = "clip-frames"
START_OF_TEXT, END_OF_TEXT = 49406, 49407
GALLERY_NOISE = 0.1


# ---------------------------------------------------------------------------------------------- inputs


def random_captions(
    num_captions: int, length: int, generator: torch.Generator, min_length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP-like token ids (num_captions, length): SOT, random tokens, EOT, zero padding; and the attention mask."""
    min_length = min(min_length or length // 2, length)
    real_lengths = torch.randint(max(min_length, 2), length + 1, (num_captions,), generator=generator)
    input_ids = torch.randint(1, START_OF_TEXT, (num_captions, length), generator=generator)
    attention_mask = (torch.arange(length)[None, :] < real_lengths[:, None]).long()
    input_ids = input_ids * attention_mask
    input_ids[:, 0] = START_OF_TEXT
    input_ids[torch.arange(num_captions), real_lengths - 1] = END_OF_TEXT
    return input_ids, attention_mask


def text_inputs(config: UniTriMConfig, num_captions: int, caption_length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Inputs of `get_text_features`; with triplets, all `max_triplets` slots real (the most expensive case)."""
    generator = torch.Generator().manual_seed(seed)
    input_ids, attention_mask = random_captions(num_captions, caption_length, generator)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if config.use_triplets:
        max_triplets, triplet_length = config.max_triplets, config.max_triplet_length
        ids, mask = random_captions(num_captions * max_triplets, triplet_length, generator, min_length=4)
        inputs["triplet_input_ids"] = ids.view(num_captions, max_triplets, triplet_length)
        inputs["triplet_attention_mask"] = mask.view(num_captions, max_triplets, triplet_length)
        inputs["triplet_mask"] = torch.ones(num_captions, max_triplets, dtype=torch.long)
    return inputs


def video_inputs(config: UniTriMConfig, batch_size: int, num_frames: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """(batch_size, num_frames, 3, H, W) standard-normal frames (like CLIP-normalized pixels), all frames real."""
    generator = torch.Generator().manual_seed(seed + 1)
    size = config.vision_config.image_size
    return {
        "pixel_values_videos": torch.randn(batch_size, num_frames, 3, size, size, generator=generator),
        "video_mask": torch.ones(batch_size, num_frames, dtype=torch.long),
    }


def synthetic_gallery(features: UniTriMVisualFeatures, gallery_size: int, seed: int = 0) -> UniTriMVisualFeatures:
    """
    `gallery_size` videos made from the rows of `features`: rows repeated in turn, frame and patch features
    perturbed with Gaussian noise of `GALLERY_NOISE` times their RMS, the video feature recomputed from the frames
    (L2-normalized masked mean of L2-normalized frames, as the model does).
    """
    generator = torch.Generator().manual_seed(seed + 2)
    rows = torch.arange(gallery_size) % features.batch_size
    gallery = features.take(rows)

    def perturb(tensor: torch.Tensor | None) -> torch.Tensor | None:
        if tensor is None:
            return None
        scale = GALLERY_NOISE * tensor.pow(2).mean().sqrt()
        return tensor + scale * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)

    gallery.frame_embeds = perturb(gallery.frame_embeds) * gallery.video_mask[..., None]
    gallery.patch_embeds = perturb(gallery.patch_embeds)
    mask = gallery.video_mask[..., None].to(gallery.frame_embeds.dtype)
    frames = torch.nn.functional.normalize(gallery.frame_embeds, dim=-1) * mask
    gallery.pooler_output = torch.nn.functional.normalize(frames.sum(dim=1) / mask.sum(dim=1), dim=-1)
    return gallery


# ---------------------------------------------------------------------------------------------- measurement


def clip_frame_encoder(model: UniTriMModel, pixel_values_videos: torch.Tensor):
    """The bare CLIP work inside video encoding: vision tower + visual projection on every frame, flattened."""
    frames = pixel_values_videos.flatten(0, 1)

    def encode() -> torch.Tensor:
        return model.visual_projection(model.vision_model(pixel_values=frames).pooler_output)

    return encode


def timing_entry(timing: Timing, **references: Timing | None) -> dict[str, Any]:
    """The timing plus, per reference, `ratio_to_<name>` (of medians) and `min_ratio_to_<name>` (of minimums).

    On a machine shared with other work, noise only adds time, so the ratio of minimums is the steadier one."""
    entry = timing.as_dict()
    for name, reference in references.items():
        entry[f"ratio_to_{name}"] = None if reference is None else timing.median_seconds / reference.median_seconds
        entry[f"min_ratio_to_{name}"] = None if reference is None else timing.min_seconds / reference.min_seconds
    return entry


def run(args: argparse.Namespace) -> dict[str, Any]:
    threads = set_torch_threads(args.threads)
    torch.manual_seed(0)
    models = {preset: UniTriMModel(UniTriMConfig.from_preset(preset)).eval() for preset in args.presets}
    baseline = next((preset for preset in args.presets if preset.startswith(BASELINE_PREFIX)), None)
    reference_model = models[baseline or args.presets[0]]

    with torch.inference_mode():
        videos = {p: video_inputs(m.config, args.batch_size, args.frames) for p, m in models.items()}
        texts = {p: text_inputs(m.config, args.num_captions, args.caption_length) for p, m in models.items()}

        reference_videos = videos[baseline or args.presets[0]]["pixel_values_videos"]
        video_functions = {CLIP_FRAMES: clip_frame_encoder(reference_model, reference_videos)}
        for preset, model in models.items():
            video_functions[preset] = (lambda m=model, v=videos[preset]: m.get_video_features(**v))
        video_timings = time_interleaved(video_functions, args.repeats, args.warmup)

        text_functions = {p: (lambda m=m, t=texts[p]: m.get_text_features(**t)) for p, m in models.items()}
        text_timings = time_interleaved(text_functions, args.repeats, args.warmup)

        score_functions = {}
        for preset, model in models.items():
            text_features: UniTriMTextFeatures = model.get_text_features(**texts[preset])
            gallery = synthetic_gallery(model.get_video_features(**videos[preset]), args.gallery_size)
            score_functions[preset] = lambda m=model, t=text_features, g=gallery: m.similarity(t, g)
        score_timings = time_interleaved(score_functions, args.repeats, args.warmup)

    def baseline_of(timings: dict[str, Timing]) -> Timing | None:
        return timings[baseline] if baseline else None

    results: dict[str, Any] = {
        "benchmark": "inference_speed",
        "machine": machine_info(threads),
        "settings": {
            "presets": list(args.presets),
            "baseline_preset": baseline,
            "clip_frames_reference_from": baseline or args.presets[0],
            "repeats": args.repeats,
            "warmup": args.warmup,
            "batch_size": args.batch_size,
            "frames": args.frames,
            "num_captions": args.num_captions,
            "caption_length": args.caption_length,
            "gallery_size": args.gallery_size,
            "gallery": f"step-1 video features repeated, frame/patch features + {GALLERY_NOISE} x RMS Gaussian noise",
            "triplets": "all max_triplets slots real, max_triplet_length tokens each",
        },
        "video_encoding": {CLIP_FRAMES: timing_entry(video_timings[CLIP_FRAMES])},
        "text_encoding": {},
        "scoring": {},
    }
    for preset in args.presets:
        results["video_encoding"][preset] = timing_entry(
            video_timings[preset], clip_frames=video_timings[CLIP_FRAMES], baseline=baseline_of(video_timings)
        )
        results["text_encoding"][preset] = timing_entry(text_timings[preset], baseline=baseline_of(text_timings))
        results["scoring"][preset] = timing_entry(score_timings[preset], baseline=baseline_of(score_timings))
    return results


# ---------------------------------------------------------------------------------------------- report


VIDEO_GOAL = 1.10


def print_report(results: dict[str, Any]) -> None:
    settings, machine = results["settings"], results["machine"]
    baseline = settings["baseline_preset"] or "clip4clip-meanp (not run)"
    print(
        f"torch {machine['torch']}, {machine['torch_threads']} threads of {machine['available_cores']} cores; "
        f"median and min of {settings['repeats']} repeats after {settings['warmup']} warm-up; "
        "ratios as median/median and min/min.\n"
    )
    video = results["video_encoding"]
    print(f"Video encoding: {settings['batch_size']} videos x {settings['frames']} frames")
    rows = [[f"{CLIP_FRAMES} (reference)", video[CLIP_FRAMES]["median_seconds"], video[CLIP_FRAMES]["min_seconds"], None, None, None, None]]
    rows += [
        [
            preset, video[preset]["median_seconds"], video[preset]["min_seconds"],
            video[preset]["ratio_to_clip_frames"], video[preset]["min_ratio_to_clip_frames"],
            video[preset]["ratio_to_baseline"], video[preset]["min_ratio_to_baseline"],
        ]
        for preset in settings["presets"]
    ]
    headers = ["model", "median s", "min s", "x clip-frames (median)", "x clip-frames (min)",
               f"x {baseline} (median)", f"x {baseline} (min)"]
    print(markdown_table(headers, rows) + "\n")

    for key, title in (
        ("text_encoding", f"Text encoding: {settings['num_captions']} captions x {settings['caption_length']} tokens"),
        ("scoring", f"Scoring: {settings['num_captions']} x {settings['gallery_size']} text-video `similarity`"),
    ):
        section = results[key]
        print(title)
        rows = [
            [
                preset, section[preset]["median_seconds"] * 1e3, section[preset]["min_seconds"] * 1e3,
                section[preset]["ratio_to_baseline"], section[preset]["min_ratio_to_baseline"],
            ]
            for preset in settings["presets"]
        ]
        print(markdown_table(["preset", "median ms", "min ms", f"x {baseline} (median)", f"x {baseline} (min)"], rows) + "\n")

    for preset in settings["presets"]:
        if preset.startswith("unitrim"):
            ratios = video[preset]["ratio_to_clip_frames"], video[preset]["min_ratio_to_clip_frames"]
            verdict = "meets" if max(ratios) <= VIDEO_GOAL else ("meets by min only" if min(ratios) <= VIDEO_GOAL else "misses")
            print(
                f"{preset} video encoding / CLIP frame encoding: {ratios[0]:.3f} (median), {ratios[1]:.3f} (min); "
                f"{verdict} the goal <= {VIDEO_GOAL:.2f}."
            )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=DEFAULT_PRESETS, help="preset names; -tiny ones for a smoke run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all available cores)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds before timing (default 1)")
    parser.add_argument("--frames", type=int, default=12, help="frames per video (default 12)")
    parser.add_argument("--batch-size", type=int, default=4, help="videos encoded per call (default 4)")
    parser.add_argument("--num-captions", type=int, default=100, help="captions encoded and scored (default 100)")
    parser.add_argument("--caption-length", type=int, default=32, help="tokens per caption (default 32)")
    parser.add_argument("--gallery-size", type=int, default=100, help="videos in the scored gallery (default 100)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    for name in ("repeats", "frames", "batch_size", "num_captions", "caption_length", "gallery_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.caption_length < 2:
        parser.error("--caption-length must be >= 2 (SOT and EOT)")
    if len(set(args.presets)) != len(args.presets):
        parser.error(f"--presets lists a name twice: {args.presets}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    results = run(args)
    return report(results, print_report, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
