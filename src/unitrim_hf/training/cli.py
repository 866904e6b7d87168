"""`unitrim-train` / `python train.py`: train, evaluate, print the results table and a sample search, push.

Arguments are parsed and checked before torch is imported: `--help` and a bad argument (a one-line error naming
it, exit status 2, as argparse does) answer at once.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import CheckpointMismatchError, TrainingArgumentError
from .command_line import parse_arguments
from .launch_check import warn_if_fewer_processes_than_requested
from .output_layout import EVAL_ONLY_METRICS_STEM
from .preflight import check_before_work

if TYPE_CHECKING:
    from .loop import Trainer, TrainingResult

# Arguments that name folders of the training machine: meaningless (and private) in a published model card.
LOCAL_PATH_ARGUMENTS = frozenset({"data_dir", "output_dir", "video_dir", "datasets_cache_dir", "frame_cache_dir"})
PROGRAM_NAME = "unitrim-train"


def _is_local_path(value: object) -> bool:
    return isinstance(value, str) and (Path(value).is_absolute() or Path(value).exists())


def _training_summary(trainer: "Trainer") -> dict:
    """The settings listed in the model card: no local paths (data and output folders, local checkpoints)."""
    values = {}
    for arguments in (trainer.model_args, trainer.data_args, trainer.args):
        values.update({
            key: value for key, value in asdict(arguments).items()
            if value is not None and key not in LOCAL_PATH_ARGUMENTS
            and not (key.endswith("name_or_path") and _is_local_path(value))
        })
    return values


def _print_results(trainer: "Trainer", result: "TrainingResult") -> None:
    """The retrieval table of the model it belongs to (final or best), and where the best one is."""
    evaluation, data_args = result.evaluation, trainer.data_args
    if evaluation is not None:
        print(f"\nRetrieval of the {evaluation.settings.get('model', 'evaluated model')} on {data_args.dataset_name}/"
              f"{data_args.eval_split} ({evaluation.num_videos} videos, {evaluation.num_captions} captions; "
              f"chance R@1 = {100.0 / max(evaluation.num_videos, 1):.1f}%):")
        print(evaluation.to_markdown())
    if result.best_model_dir is not None and result.best_metric is not None:
        print(f"Best model: step {trainer.state.best_step}, {trainer.args.metric_for_best_model} = "
              f"{result.best_metric:.2f} (saved in {result.best_model_dir}"
              + ("; the same weights as the final model)" if trainer.state.best_step == result.global_step else ")"))


def run(argv: Sequence[str] | None = None) -> "TrainingResult":
    """Run the job described by the command line (see `python train.py --help`); returns the `TrainingResult`.

    Raises `TrainingArgumentError` (before any work) for a bad argument, and for a folder the run cannot use (see
    `preflight`): a model folder that does not exist, a benchmark folder without its files, an output folder holding
    an earlier run's checkpoints.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    model_args, data_args, training_args = parse_arguments(argv)
    check_before_work(model_args, data_args, training_args)
    warn_if_fewer_processes_than_requested()
    if training_args.push_to_hub:
        from .hub import prepare_hub_repository

        prepare_hub_repository(training_args.hub_model_id, private=training_args.hub_private_repo)

    from .hub import push_model_folder
    from .loop import Trainer
    from .sample_search import sample_search

    trainer = Trainer(model_args, data_args, training_args)
    result = trainer.train()
    accelerator = trainer.accelerator
    if accelerator.is_main_process:
        _print_results(trainer, result)
        if training_args.do_eval_only and result.evaluation is not None:
            print(f"metrics written to {Path(training_args.output_dir) / EVAL_ONLY_METRICS_STEM}.json and .md")
        if not training_args.do_eval_only:
            model = accelerator.unwrap_model(trainer.model)
            search = sample_search(
                model, trainer.processor, trainer.eval_split, query=training_args.sample_query,
                frame_cache=trainer.eval_cache, batch_size=training_args.per_device_eval_batch_size,
            )
            print("\n" + search.to_text())
        if training_args.push_to_hub:
            folder = result.best_model_dir or result.final_model_dir
            push_model_folder(
                folder, training_args.hub_model_id, dataset_name=data_args.dataset_name,
                base_model=model_args.clip_model_name_or_path, training_args=_training_summary(trainer),
                private=training_args.hub_private_repo,
            )
            print(f"Pushed {folder} to https://huggingface.co/{training_args.hub_model_id}")
        print(f"\nDone in {time.perf_counter() - started:.0f} s (training {result.train_seconds:.0f} s, "
              f"{result.global_step} steps); models in {result.output_dir}")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (`unitrim-train`): `run` without a return value (a returned object would
    become the process's exit status); a bad argument is one line on stderr and exit status 2."""
    try:
        run(argv)
    except (TrainingArgumentError, CheckpointMismatchError) as error:
        print(f"{PROGRAM_NAME}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
