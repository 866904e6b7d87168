"""The training objective: InfoNCE by hand, disentangler terms, and gathering across two real processes."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from model_inputs import random_image_inputs, random_text_inputs, random_video_inputs
from unitrim_hf import UniTriMConfig, UniTriMModel
from unitrim_hf.modeling import losses
from unitrim_hf.modeling.disentanglement import orthogonality_loss, reconstruction_loss
from unitrim_hf.modeling.losses import gather_features, symmetric_info_nce
from unitrim_hf.modeling.modeling_outputs import UniTriMTextFeatures

GLOBAL_BATCH = 6


def test_symmetric_info_nce_by_hand() -> None:
    logits = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    text_to_video = -(torch.log_softmax(logits, 1)[0, 0] + torch.log_softmax(logits, 1)[1, 1]) / 2
    video_to_text = -(torch.log_softmax(logits, 0)[0, 0] + torch.log_softmax(logits, 0)[1, 1]) / 2
    value = symmetric_info_nce(logits, logits.t(), torch.arange(2))
    torch.testing.assert_close(value, (text_to_video + video_to_text) / 2)


def test_disentangler_terms() -> None:
    spatial = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    temporal = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    torch.testing.assert_close(orthogonality_loss(spatial, temporal), torch.tensor(0.5))
    target = F.normalize(temporal, dim=-1)
    torch.testing.assert_close(reconstruction_loss(spatial, temporal), (spatial - target).pow(2).sum(-1).mean())


def test_gather_without_process_group_is_the_identity() -> None:
    model = UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny")).eval()
    features = model.get_text_features(**random_text_inputs(model.config))
    gathered, offset = gather_features(features)
    assert gathered is features and offset == 0


def _batch(config: UniTriMConfig, with_images: bool = False) -> dict[str, torch.Tensor]:
    images = random_image_inputs(config, GLOBAL_BATCH, seed=3) if with_images else {}
    return {**random_text_inputs(config, GLOBAL_BATCH, seed=3), **random_video_inputs(config, GLOBAL_BATCH, seed=3), **images}


def _worker(
    rank: int, world_size: int, init_file: str, output_dir: str, shard_sizes: tuple[int, ...], with_images: bool
) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    text_gathers = []
    gather = losses.gather_features

    def counting_gather(features):
        if isinstance(features, UniTriMTextFeatures):
            text_gathers.append(features.batch_size)
        return gather(features)

    losses.gather_features = counting_gather
    torch.manual_seed(0)
    model = UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny")).eval()
    batch = _batch(model.config, with_images)
    start = sum(shard_sizes[:rank])
    local = {key: value[start : start + shard_sizes[rank]] for key, value in batch.items()}
    # Rank 1 trims its text padding: shards of different text lengths must still gather.
    if rank == 1:
        keep = int(local["attention_mask"].sum(1).max())
        local["input_ids"], local["attention_mask"] = local["input_ids"][:, :keep], local["attention_mask"][:, :keep]
    output = model(**local, return_loss=True)
    output.loss.backward()
    torch.save(
        {
            "loss": output.loss.detach(),
            "logits_shape": tuple(output.logits_per_text_video.shape),
            "grad": model.text_projection.weight.grad.clone(),
            "text_gathers": len(text_gathers),
            "losses": sorted(output.losses),
        },
        os.path.join(output_dir, f"rank{rank}.pt"),
    )
    dist.destroy_process_group()


@pytest.mark.timeout(300)
# Unequal shards with images run by default (the case that exercises the padding and both losses).
@pytest.mark.parametrize(
    ("shard_sizes", "with_images"),
    [pytest.param((3, 3), False, marks=pytest.mark.slow), pytest.param((4, 2), False, marks=pytest.mark.slow), ((4, 2), True)],
)
def test_two_processes_see_the_gathered_batch(tmp_path, shard_sizes: tuple[int, int], with_images: bool) -> None:
    world_size = 2
    mp.spawn(
        _worker, args=(world_size, str(tmp_path / "init"), str(tmp_path), shard_sizes, with_images),
        nprocs=world_size, join=True,
    )
    results = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(world_size)]
    for rank, result in enumerate(results):
        assert result["logits_shape"] == (shard_sizes[rank], GLOBAL_BATCH)
        # The texts are gathered once per step, also when they are scored against videos and keyframes.
        assert result["text_gathers"] == 1
        assert ("text_image" in result["losses"]) == with_images

    torch.manual_seed(0)
    model = UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny")).eval()
    single = model(**_batch(model.config, with_images), return_loss=True)
    single.loss.backward()
    # Equal or not, the shards' losses average to the single-process loss on the whole batch, and the mean of
    # the per-process gradients (what DDP applies) is exactly its gradient.
    torch.testing.assert_close(sum(r["loss"] for r in results) / world_size, single.loss.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        sum(r["grad"] for r in results) / world_size, model.text_projection.weight.grad, rtol=1e-3, atol=1e-5
    )
