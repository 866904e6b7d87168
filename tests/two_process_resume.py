"""`accelerate launch tests/two_process_resume.py SCENARIO TRAIN_ARGUMENTS...`: train.py's command line in which
process 1 sees the checkpoint folder differently from the main process, as on a shared file system that another
writer or a flaky mount changes under one process:

- `newest_unseen_on_rank1`: process 1 lists the checkpoints before the newest one was renamed into place;
- `load_fails_on_rank1`: on process 1 reading the model parameters of the chosen checkpoint fails.

Each process writes the exception that ended it (type and message) to `<output_dir>/error_rank<rank>.txt`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from unitrim_hf.training import checkpointing, cli


def _simulate(scenario: str) -> None:
    if scenario == "newest_unseen_on_rank1":
        original_listing = checkpointing.complete_checkpoints

        def complete_checkpoints(output_dir: str | Path) -> list[Path]:
            return original_listing(output_dir)[:-1]

        checkpointing.complete_checkpoints = complete_checkpoints
    elif scenario == "load_fails_on_rank1":
        def load_model_parameters(model, folder: Path) -> None:
            raise OSError(f"{folder}/model.safetensors: Input/output error (simulated)")

        checkpointing.load_model_parameters = load_model_parameters
    else:
        raise ValueError(f"unknown scenario {scenario!r}")


def main() -> None:
    scenario, arguments = sys.argv[1], sys.argv[2:]
    rank = int(os.environ["RANK"])
    if rank == 1:
        _simulate(scenario)
    output_dir = Path(arguments[arguments.index("--output_dir") + 1])
    try:
        cli.main(arguments)
    except Exception as error:
        (output_dir / f"error_rank{rank}.txt").write_text(f"{type(error).__name__}: {error}")
        raise


if __name__ == "__main__":
    main()
