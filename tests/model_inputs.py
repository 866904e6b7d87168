"""Random inputs in the exact shapes UniTriMModel takes, for tiny-config tests."""

from __future__ import annotations

import torch

from unitrim_hf import UniTriMConfig

START_OF_TEXT, END_OF_TEXT = 49406, 49407


def random_token_batch(
    batch_size: int, length: int, real_lengths: list[int], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP-like ids (SOT ... EOT, zero-padded) and the attention mask, one real length per row."""
    input_ids = torch.zeros(batch_size, length, dtype=torch.long)
    attention_mask = torch.zeros(batch_size, length, dtype=torch.long)
    for row, real_length in enumerate(real_lengths):
        input_ids[row, :real_length] = torch.randint(1, START_OF_TEXT, (real_length,), generator=generator)
        input_ids[row, 0], input_ids[row, real_length - 1] = START_OF_TEXT, END_OF_TEXT
        attention_mask[row, :real_length] = 1
    return input_ids, attention_mask


def random_text_inputs(config: UniTriMConfig, batch_size: int = 3, seed: int = 0, length: int = 12) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    real_lengths = [int(x) for x in torch.randint(3, length + 1, (batch_size,), generator=generator)]
    input_ids, attention_mask = random_token_batch(batch_size, length, real_lengths, generator)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if config.use_triplets:
        max_triplets, triplet_length = config.max_triplets, 6
        flat_ids, flat_mask = random_token_batch(
            batch_size * max_triplets, triplet_length, [triplet_length] * (batch_size * max_triplets), generator
        )
        inputs["triplet_input_ids"] = flat_ids.view(batch_size, max_triplets, triplet_length)
        inputs["triplet_attention_mask"] = flat_mask.view(batch_size, max_triplets, triplet_length)
        triplet_counts = torch.arange(batch_size) % (max_triplets + 1)  # includes a caption with no triplet
        inputs["triplet_mask"] = (torch.arange(max_triplets)[None, :] < triplet_counts[:, None]).long()
    return inputs


def random_video_inputs(config: UniTriMConfig, batch_size: int = 3, num_frames: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed + 1)
    size = config.vision_config.image_size
    pixel_values_videos = torch.randn(batch_size, num_frames, 3, size, size, generator=generator)
    real_frames = torch.arange(batch_size) % num_frames + 1
    video_mask = (torch.arange(num_frames)[None, :] < real_frames[:, None]).long()
    pixel_values_videos = pixel_values_videos * video_mask[:, :, None, None, None]
    return {"pixel_values_videos": pixel_values_videos, "video_mask": video_mask}


def random_image_inputs(config: UniTriMConfig, batch_size: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed + 2)
    size = config.vision_config.image_size
    return {"pixel_values": torch.randn(batch_size, 3, size, size, generator=generator)}
