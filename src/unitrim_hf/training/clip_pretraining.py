"""A CLIP pre-training stage on a benchmark's keyframes and captions, with transformers' own `CLIPModel`.

UniTriM is fine-tuned from CLIP weights. Offline there are none to download, so this stage makes one: a
`CLIPModel` with the tower sizes of a preset (by default `unitrim-tiny`'s), trained with CLIP's symmetric
contrastive loss on (keyframe, caption) pairs of the training split, and saved with `save_pretrained` as an
ordinary CLIP folder that `CLIPModel.from_pretrained` and `UniTriMModel.from_clip` read:

    unitrim-pretrain-clip --output_dir outputs/clip-synthetic              # the synthetic benchmark, ~1 min on CPU
    python train.py --clip_model_name_or_path outputs/clip-synthetic --learning_rate 1e-3 --clip_learning_rate 1e-4

Each epoch shows every training video's keyframe once with one of its captions (drawn per epoch), using the
trainer's dataset, sampler and collator; the frame cache is the one `train.py` builds for the same settings.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from accelerate.utils import set_seed
from transformers import CLIPConfig, CLIPModel, HfArgumentParser

from ..modeling.configuration_unitrim import UniTriMConfig
from ..data import read_cached_batch
from ..evaluation.metrics import text_to_video_metrics
from ..evaluation.runner import leave_out_skipped_videos, split_captions, with_rsum
from ..processing_unitrim import UniTriMProcessor
from .command_line import parse_arguments
from .builders import build_frame_cache, load_split
from .batches import EpochShuffleSampler, RetrievalCollator, VideoCaptionDataset
from .optimization import create_optimizer, create_scheduler, warmup_steps_for

logger = logging.getLogger(__name__)
PRETRAINING_FILE_NAME = "clip_pretraining.json"


@dataclass
class ClipPretrainingArguments:
    """Settings of the CLIP stage (`unitrim-pretrain-clip --help`)."""

    output_dir: str = field(default="outputs/clip-synthetic", metadata={"help": "Where the CLIP folder is saved."})
    dataset: str = field(default="synthetic", metadata={"help": "Benchmark of the keyframes and captions."})
    data_dir: str | None = field(default=None, metadata={"help": "Benchmark folder (synthetic: outputs/synthetic_data)."})
    tower_preset: str = field(default="unitrim-tiny", metadata={"help": "Preset whose tower and projection sizes to use."})
    num_train_epochs: int = field(default=60, metadata={"help": "Epochs over the training videos' keyframes."})
    batch_size: int = field(default=64, metadata={"help": "(keyframe, caption) pairs per step."})
    learning_rate: float = field(default=2e-3, metadata={"help": "AdamW learning rate (cosine schedule)."})
    weight_decay: float = field(default=0.2)
    warmup_ratio: float = field(default=0.05)
    max_length: int = field(default=24, metadata={"help": "Caption tokens incl. SOT/EOT."})
    num_frames: int | None = field(default=None, metadata={"help": "Frames of the frame cache (train.py's default)."})
    synthetic_num_train: int | None = field(default=None, metadata={"help": "Synthetic benchmark: training videos."})
    synthetic_num_test: int | None = field(default=None, metadata={"help": "Synthetic benchmark: test videos."})
    synthetic_scenes: str | None = field(
        default=None, metadata={"help": "Synthetic benchmark: scene set, mixed or temporal_order (train.py's)."}
    )
    seed: int = field(default=0)
    torch_num_threads: int = field(default=1, metadata={"help": "torch threads (the tiny towers run best on one)."})


@dataclass
class ClipPretrainingResult:
    """Where the CLIP folder went, how long it took, and its text→image retrieval on the evaluation split."""

    output_dir: str
    steps: int
    train_seconds: float
    final_loss: float
    text_to_image: dict[str, float]
    # Evaluation-split videos that could not be decoded (listed in the frame cache's unreadable_videos.json),
    # left out of `text_to_image` with their captions, as train.py's evaluation does.
    skipped_eval_videos: list[str] = field(default_factory=list)


def tiny_clip_config(tower_preset: str = "unitrim-tiny") -> CLIPConfig:
    """A `CLIPConfig` with the text tower, vision tower, projection size and logit scale of a UniTriM preset."""
    preset = UniTriMConfig.from_preset(tower_preset)
    return CLIPConfig(
        text_config=preset.text_config.to_dict(),
        vision_config=preset.vision_config.to_dict(),
        projection_dim=preset.projection_dim,
        logit_scale_init_value=preset.logit_scale_init_value,
    )


def _benchmark(arguments: ClipPretrainingArguments, image_size: int):
    """Train and test splits with their frame caches, read with `train.py`'s defaults for the dataset."""
    argv = ["--dataset", arguments.dataset, "--output_dir", str(Path(arguments.output_dir).parent / "unused")]
    if arguments.data_dir:
        argv += ["--data_dir", arguments.data_dir]
    elif arguments.dataset == "synthetic":
        argv += ["--data_dir", str(Path(arguments.output_dir).parent / "synthetic_data")]
    for name in ("num_frames", "synthetic_num_train", "synthetic_num_test", "synthetic_scenes"):
        if getattr(arguments, name) is not None:
            argv += [f"--{name}", str(getattr(arguments, name))]
    _, data_args, _ = parse_arguments(argv)
    splits = {}
    for split in ("train", data_args.eval_split):
        dataset = load_split(data_args, split)
        splits[split] = (dataset, build_frame_cache(data_args, split, dataset, image_size))
    return data_args, splits


@torch.inference_mode()
def text_to_image_metrics(model: CLIPModel, processor: UniTriMProcessor, split, frame_cache, max_length: int) -> dict[str, float]:
    """Text→keyframe retrieval (R@1/5/10, Rsum, ...) of a `CLIPModel` on one split, one keyframe per video."""
    model.eval()
    keyframes = read_cached_batch(frame_cache, list(range(len(frame_cache))))
    order = {video_id: row for row, video_id in enumerate(keyframes["video_id"])}
    captions, caption_to_video = split_captions(split)
    video_ids = list(dict.fromkeys(split["video_id"]))
    kept = [position for position, video_id in enumerate(video_ids) if video_id in order]  # decodable videos
    kept_captions, targets = leave_out_skipped_videos(len(video_ids), kept, caption_to_video)
    captions, caption_to_video = [captions[row] for row in kept_captions], targets
    pixels = processor.image_transform(np.stack([keyframes["keyframe"][order[video_ids[position]]] for position in kept]))
    image_embeds = torch.nn.functional.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
    text_inputs = processor._tokenize(list(captions), max_length)
    text_embeds = torch.nn.functional.normalize(model.get_text_features(**text_inputs).pooler_output, dim=-1)
    return with_rsum(text_to_video_metrics(text_embeds @ image_embeds.t(), torch.as_tensor(caption_to_video)))


def pretrain_clip(arguments: ClipPretrainingArguments) -> ClipPretrainingResult:
    """Train a `CLIPModel` on (keyframe, caption) pairs and save it to `arguments.output_dir`."""
    torch.set_num_threads(arguments.torch_num_threads)
    set_seed(arguments.seed)
    config = tiny_clip_config(arguments.tower_preset)
    model = CLIPModel(config)
    processor = UniTriMProcessor.for_model_config(
        UniTriMConfig.from_preset(arguments.tower_preset, alignments=["sentence_video"], use_triplets=False),
        max_length=arguments.max_length
    )
    image_size = int(config.vision_config.image_size)
    data_args, splits = _benchmark(arguments, image_size)
    train_split, train_cache = splits["train"]
    dataset = VideoCaptionDataset(train_split, image_size, data_args.num_frames, arguments.seed, frame_cache=train_cache)
    sampler = EpochShuffleSampler(len(dataset), arguments.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=arguments.batch_size, sampler=sampler, drop_last=True,
        collate_fn=RetrievalCollator(processor, arguments.max_length, include_images=True),
    )
    if len(loader) == 0:
        raise ValueError(f"{len(dataset)} training videos give no full batch of {arguments.batch_size}.")
    total_steps = len(loader) * arguments.num_train_epochs
    optimizer = create_optimizer(model, arguments.learning_rate, arguments.learning_rate, arguments.weight_decay)
    scheduler = create_scheduler(optimizer, total_steps, warmup_steps_for(total_steps, None, arguments.warmup_ratio))
    started = time.perf_counter()
    model.train()
    loss = torch.tensor(math.nan)
    for epoch in range(arguments.num_train_epochs):
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        for batch in loader:
            output = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           pixel_values=batch["pixel_values"], return_loss=True)
            loss = output.loss
            if not torch.isfinite(loss):
                raise FloatingPointError(f"CLIP pre-training loss became {float(loss)} in epoch {epoch}; lower --learning_rate.")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            with torch.no_grad():
                model.logit_scale.clamp_(0.0, math.log(100.0))
    train_seconds = time.perf_counter() - started
    eval_split, eval_cache = splits[data_args.eval_split]
    metrics = text_to_image_metrics(model, processor, eval_split, eval_cache, arguments.max_length)
    skipped = sorted(set(eval_split["video_id"]) - set(eval_cache["video_id"]))
    output_dir = Path(arguments.output_dir)
    model.save_pretrained(output_dir)
    result = ClipPretrainingResult(str(output_dir), total_steps, train_seconds, float(loss.detach()), metrics, skipped)
    (output_dir / PRETRAINING_FILE_NAME).write_text(json.dumps({"arguments": asdict(arguments), **asdict(result)}, indent=1))
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """`unitrim-pretrain-clip`: run the stage and print where the folder went and its text→image retrieval."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    (arguments,) = HfArgumentParser(ClipPretrainingArguments).parse_args_into_dataclasses(args=argv)
    result = pretrain_clip(arguments)
    metrics = result.text_to_image
    print(f"CLIP ({arguments.tower_preset} towers) trained for {result.steps} steps in {result.train_seconds:.0f} s "
          f"(final loss {result.final_loss:.3f}); text→image on {metrics['num_queries']} test keyframes: "
          f"R@1 {metrics['R@1']:.1f}, R@5 {metrics['R@5']:.1f}, Rsum {metrics['Rsum']:.1f}. Saved to {result.output_dir}")
    if result.skipped_eval_videos:
        shown = ", ".join(result.skipped_eval_videos[:10]) + (" ..." if len(result.skipped_eval_videos) > 10 else "")
        print(f"Left out {len(result.skipped_eval_videos)} test videos that could not be decoded: {shown}")


if __name__ == "__main__":
    main()
