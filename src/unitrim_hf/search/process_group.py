"""The processes of one indexing run: a single process, or those started by `accelerate launch` / `torchrun`."""

from __future__ import annotations

import os
from typing import Any


class SingleProcess:
    """One process: rank 0 of 1; the collectives return their input."""

    rank = 0
    world_size = 1
    device = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast(self, value: Any) -> Any:
        return value

    def gather(self, value: Any) -> list[Any]:
        return [value]

    def barrier(self) -> None:
        pass

    def close(self) -> None:
        pass


class LaunchedProcesses(SingleProcess):
    """
    The processes of a launcher that sets `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR` and `MASTER_PORT`
    (`accelerate launch`, `torchrun`), joined through `torch.distributed`: NCCL with one GPU per process when
    CUDA is available (and `ACCELERATE_USE_CPU` is not set), gloo on the CPU otherwise.
    """

    def __init__(self) -> None:
        import torch
        import torch.distributed as distributed

        use_cuda = torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true", "yes")
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if use_cuda:
            torch.cuda.set_device(local_rank)
        self.device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
        if not distributed.is_initialized():
            distributed.init_process_group("nccl" if use_cuda else "gloo")
        self._distributed = distributed
        self.rank = distributed.get_rank()
        self.world_size = distributed.get_world_size()

    def broadcast(self, value: Any) -> Any:
        holder = [value]
        self._distributed.broadcast_object_list(holder, src=0)
        return holder[0]

    def gather(self, value: Any) -> list[Any]:
        gathered: list[Any] = [None] * self.world_size
        self._distributed.all_gather_object(gathered, value)
        return gathered

    def barrier(self) -> None:
        self._distributed.barrier()

    def close(self) -> None:
        self._distributed.destroy_process_group()


def launched_processes() -> SingleProcess:
    """`LaunchedProcesses` when started by a launcher with more than one process, else `SingleProcess`."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return LaunchedProcesses()
    return SingleProcess()


__all__ = ["LaunchedProcesses", "SingleProcess", "launched_processes"]
