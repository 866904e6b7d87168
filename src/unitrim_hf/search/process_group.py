"""The processes of one indexing run: a single process, or those started by `accelerate launch`."""

from __future__ import annotations

import os
from typing import Any


class SingleProcess:
    """One process: rank 0 of 1; the collectives return their input."""

    rank = 0
    world_size = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast(self, value: Any) -> Any:
        return value

    def gather(self, value: Any) -> list[Any]:
        return [value]

    def barrier(self) -> None:
        pass


class AccelerateProcesses(SingleProcess):
    """The processes of `accelerate launch` (or `torchrun`), through accelerate's `PartialState`."""

    def __init__(self) -> None:
        from accelerate import PartialState

        self.state = PartialState()
        self.rank = self.state.process_index
        self.world_size = self.state.num_processes

    @property
    def device(self):
        return self.state.device

    def broadcast(self, value: Any) -> Any:
        from accelerate.utils import broadcast_object_list

        holder = [value]
        broadcast_object_list(holder, from_process=0)
        return holder[0]

    def gather(self, value: Any) -> list[Any]:
        from accelerate.utils import gather_object

        return gather_object([value])

    def barrier(self) -> None:
        self.state.wait_for_everyone()


def launched_processes() -> SingleProcess:
    """`AccelerateProcesses` when started by a launcher with more than one process, else `SingleProcess`."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return AccelerateProcesses()
    return SingleProcess()


__all__ = ["AccelerateProcesses", "SingleProcess", "launched_processes"]
