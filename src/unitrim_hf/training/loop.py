"""The training loop: accelerate for devices, processes, mixed precision and gradient accumulation.

One "step" is one optimizer step (`gradient_accumulation_steps` batches). Checkpoints are taken after optimizer
steps, each epoch and every `save_steps`; an epoch is a pure function of (seed, epoch), so a run resumed from a
checkpoint skips the batches already seen (`skip_first_batches`) and continues exactly as the uninterrupted run.

Under `accelerate launch` with several processes, every artefact has one writer, the main process: it prepares the
benchmark and the frame caches (the others wait, then read them), evaluates (the others wait at the barrier that
follows), saves the best and final models, writes the metrics, the trackers' logs, the model card and pushes. The
model weights are gathered on every process first (`get_state_dict` is a collective under sharding).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import datasets
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, InitProcessGroupKwargs, broadcast_object_list, gather_object, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data import load_frame_cache
from ..errors import NonFiniteLossError, UnsupportedDistributionError
from ..evaluation.runner import RetrievalEvaluation, evaluate_retrieval
from ..evaluation.training_overlap import (
    EvaluationVideos,
    fingerprints,
    training_data_json,
    warn_if_model_trained_on,
    warn_if_trained_on,
)
from ..modeling.modeling_outputs import UniTriMOutput
from ..modeling.modeling_unitrim import UniTriMModel
from ..processing_unitrim import UniTriMProcessor
from .arguments import DataArguments, ModelArguments, TrainingArguments
from .builders import build_frame_cache, build_frame_sampler, build_model, build_processor, frame_cache_folder, load_split
from .checkpointing import TrainerState, prepare_fresh_output_dir, resume_from_checkpoint, save_checkpoint
from .batches import EpochShuffleSampler, RetrievalCollator, VideoCaptionDataset
from .debug_dump import debug_recorder
from .optimization import create_optimizer, create_scheduler, warmup_steps_for
from .output_layout import (
    BEST_MODEL_FOLDER,
    EVAL_ONLY_METRICS_STEM,
    FINAL_MODEL_FOLDER,
    LOGS_FOLDER,
    SKIPPED_VIDEOS_FILE,
    TRAINING_DATA_FILE,
)
from .trackers import select_trackers

logger = logging.getLogger(__name__)

# (training split or None, evaluation split, their frame caches or None)
PreparedData = tuple[datasets.Dataset | None, datasets.Dataset, datasets.Dataset | None, datasets.Dataset | None]






@dataclass
class TrainingResult:
    """Where the run put its models and what it measured (`evaluation`: of the final model)."""

    output_dir: Path
    final_model_dir: Path
    best_model_dir: Path | None
    global_step: int
    train_seconds: float
    evaluation: RetrievalEvaluation | None
    best_metric: float | None


@dataclass
class TrainingPlan:
    """Everything `train` prepares before the first step."""

    loader: DataLoader
    dataset: VideoCaptionDataset
    sampler: EpochShuffleSampler
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    steps_per_epoch: int
    total_steps: int
    num_epochs: int
    stop_at: int


def metric_value(evaluation: RetrievalEvaluation, name: str) -> float:
    """`name` = "direction/metric", e.g. "text_to_video/R@1"; a clear error when it is not reported."""
    direction, metric = name.split("/", 1)
    try:
        return float(evaluation.metrics[direction][metric])
    except KeyError as error:
        available = [f"{key}/{inner}" for key, values in evaluation.metrics.items() for inner in values]
        raise ValueError(f"--metric_for_best_model {name!r} is not among the evaluation's metrics {available}.") from error


def check_supported_distribution(accelerator: Accelerator) -> None:
    """
    Refuse FSDP and DeepSpeed up front: evaluation runs the unwrapped model on the main process only (with sharded
    parameters it would hang or see empty shards), and checkpoints hold the optimizer of one process in safetensors
    (DeepSpeed keeps its own pickled engine state).
    """
    kind = accelerator.distributed_type
    if kind == DistributedType.FSDP:
        raise UnsupportedDistributionError(
            "FSDP is not supported by unitrim_hf's trainer yet (evaluation runs on the main process only). Use plain "
            "multi-GPU data parallelism (DDP) in `accelerate config`."
        )
    if kind == DistributedType.DEEPSPEED:
        plugin = getattr(accelerator.state, "deepspeed_plugin", None)
        stage = int(getattr(plugin, "zero_stage", 0) or 0) if plugin is not None else 0
        raise UnsupportedDistributionError(
            f"DeepSpeed (ZeRO stage {stage}) is not supported by unitrim_hf's trainer yet (its checkpoints are "
            "pickles, and evaluation runs on the main process only). Use plain multi-GPU data parallelism (DDP)."
        )


def save_model(
    model: UniTriMModel,
    processor: UniTriMProcessor,
    folder: Path,
    evaluation: RetrievalEvaluation | None,
    state_dict: dict[str, torch.Tensor] | None = None,
    extra_files: dict[str, str] | None = None,
) -> None:
    """`save_pretrained` of model and processor (and the metrics, `metrics.json` and `metrics.md`) into `folder`,
    replacing it atomically.

    `state_dict`: the weights to save (`accelerator.get_state_dict`, gathered on every process); the model's own
    when None. `extra_files`: {name: text} written beside them. Call on the main process only.
    """
    temporary = folder.with_name(f".tmp-{folder.name}")
    if temporary.exists():
        shutil.rmtree(temporary)
    model.save_pretrained(temporary, state_dict=state_dict)
    processor.save_pretrained(temporary)
    if evaluation is not None:
        evaluation.save(temporary)  # metrics.json and metrics.md
    for name, text in (extra_files or {}).items():
        (temporary / name).write_text(text)
    if folder.exists():
        shutil.rmtree(folder)
    temporary.rename(folder)


class Trainer:
    """Builds everything from the arguments, then `train()`; see the module docstring for the step semantics.

    `step_observers` is a list of callables, each called with every training forward's `UniTriMOutput` (before
    the backward pass); append to it to watch training, e.g. `comparison.diagnostics.TextFeatureProbe.record`.
    """

    def __init__(self, model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> None:
        self.model_args, self.data_args, self.args = model_args, data_args, training_args
        self.output_dir = Path(training_args.output_dir)
        if training_args.torch_num_threads:
            torch.set_num_threads(training_args.torch_num_threads)
        self.accelerator = self._create_accelerator()
        check_supported_distribution(self.accelerator)
        if not training_args.resume_from_checkpoint and not training_args.do_eval_only:
            # Before any slow preparation: refuse (or clear) an earlier run's checkpoints.
            prepare_fresh_output_dir(self.accelerator, self.output_dir, bool(training_args.overwrite_output_dir))
        set_seed(training_args.seed)
        self.model = build_model(model_args, data_args)
        self.processor = build_processor(model_args, self.model.config, data_args)
        self.image_size = int(self.model.config.vision_config.image_size)
        self.train_split, self.eval_split, self.train_cache, self.eval_cache = self._prepare_data()
        self.training_fingerprints: set[str] = set()
        self.state = TrainerState()
        self.debug = debug_recorder(training_args.debug_dump_parameters)
        self.step_observers: list[Callable[[UniTriMOutput], None]] = [self.debug.record_step]

    def _create_accelerator(self) -> Accelerator:
        args = self.args
        return Accelerator(
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            log_with=select_trackers(args.report_to, self.output_dir / LOGS_FOLDER) or None,
            project_dir=str(self.output_dir),
            # Evaluation runs on the main process while the others wait in a collective: allow for its length.
            kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(seconds=args.ddp_timeout))],
        )

    # ------------------------------------------------------------------ data

    def _prepare_data(self) -> PreparedData:
        """The splits and their frame caches: the main process writes them (benchmark files, Arrow cache, frames)
        while the others wait; then the others read what it wrote."""
        accelerator = self.accelerator
        if accelerator.is_main_process:
            prepared = self._load_data(write=True)
        accelerator.wait_for_everyone()
        if not accelerator.is_main_process:
            prepared = self._load_data(write=False)
        return prepared

    def _load_data(self, write: bool) -> PreparedData:
        """Load the splits; `write`: prepare (or check and complete) the frame caches, else only read them."""
        data_args = self.data_args
        train_split = None if self.args.do_eval_only else load_split(data_args, "train")
        eval_split = load_split(data_args, data_args.eval_split)
        train_cache = eval_cache = None
        if data_args.use_frame_cache:
            def cache(split_name: str, split: datasets.Dataset) -> datasets.Dataset:
                if write:
                    return build_frame_cache(data_args, split_name, split, self.image_size)
                return load_frame_cache(frame_cache_folder(data_args, split_name, self.image_size))

            train_cache = cache("train", train_split) if train_split is not None else None
            eval_cache = cache(data_args.eval_split, eval_split)
        return train_split, eval_split, train_cache, eval_cache

    def _check_evaluation_data(self) -> None:
        """Main process: fingerprint the training videos (saved with the models) and warn when the evaluation split
        shares videos with them, or with the training data of the model continued from."""
        if not self.accelerator.is_main_process:
            return
        evaluated = EvaluationVideos(self.eval_split["video_path"])  # fingerprinted once for both checks
        if self.train_split is not None:
            self.training_fingerprints = fingerprints(self.train_split["video_path"])
            warn_if_trained_on(self.training_fingerprints, evaluated, "this run")
        if self.model_args.model_name_or_path:
            warn_if_model_trained_on(self.model_args.model_name_or_path, evaluated)

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, model_label: str, postprocessing=None) -> RetrievalEvaluation | None:
        """Evaluate the (unwrapped) model on the main process; the others wait. Returns None off the main process.

        `model_label` ("final model (step 12)", ...) is recorded in the evaluation's settings and printed tables.
        `postprocessing`: as `evaluate_retrieval`'s, reported beside the plain metrics (the training split is the
        query bank of QB-Norm and SK-norm).
        """
        evaluation = None
        if self.accelerator.is_main_process:
            evaluation = evaluate_retrieval(
                self.accelerator.unwrap_model(self.model),
                self.processor,
                self.eval_split,
                frame_cache=self.eval_cache,
                max_length=self.data_args.max_length,
                batch_size=self.args.per_device_eval_batch_size,
                device=self.accelerator.device,
                include_images=self.args.eval_include_images,
                postprocessing=postprocessing,
                query_bank=self.train_split,
                per_alignment=True,
                show_progress=True,
                is_main_process=True,
            )
            evaluation.settings.update(model=model_label, step=self.state.global_step)
        self.accelerator.wait_for_everyone()
        return evaluation

    # ------------------------------------------------------------------ training

    def _dataloader(self) -> tuple[DataLoader, VideoCaptionDataset, EpochShuffleSampler]:
        dataset = VideoCaptionDataset(
            self.train_split, self.image_size, self.data_args.num_frames, self.args.seed, frame_cache=self.train_cache,
            expand_captions=bool(self.data_args.expand_captions),
            frame_sampler=build_frame_sampler(self.data_args, strategy="random"),
        )
        sampler = EpochShuffleSampler(len(dataset), self.args.seed)
        collator = RetrievalCollator(self.processor, self.data_args.max_length, include_images=True)
        loader = DataLoader(
            dataset,
            batch_size=self.args.per_device_train_batch_size,
            sampler=sampler,
            collate_fn=collator,
            num_workers=self.data_args.dataloader_num_workers,
            drop_last=True,
        )
        return loader, dataset, sampler

    def _plan(self) -> TrainingPlan:
        """Data loader, optimizer and schedule, prepared by accelerate (the schedule is stepped by hand once per
        optimizer step; accelerate would step it once per process)."""
        args, accelerator = self.args, self.accelerator
        loader, dataset, sampler = self._dataloader()
        if len(loader) == 0:
            raise ValueError(
                f"{len(dataset)} training videos give no full batch of {args.per_device_train_batch_size} per process."
            )
        optimizer = create_optimizer(
            self.model, args.learning_rate, args.clip_learning_rate, args.weight_decay,
            (args.adam_beta1, args.adam_beta2), args.adam_epsilon,
        )
        self.model, optimizer, loader = accelerator.prepare(self.model, optimizer, loader)
        steps_per_epoch = math.ceil(len(loader) / args.gradient_accumulation_steps)
        total_steps = args.max_steps or steps_per_epoch * args.num_train_epochs
        scheduler = create_scheduler(optimizer, total_steps, warmup_steps_for(total_steps, args.warmup_steps, args.warmup_ratio))
        return TrainingPlan(
            loader, dataset, sampler, optimizer, scheduler, steps_per_epoch, total_steps,
            num_epochs=math.ceil(total_steps / steps_per_epoch), stop_at=min(total_steps, args.stop_after_steps or total_steps),
        )

    def _resume(self, plan: TrainingPlan) -> None:
        """Load the checkpoint asked for (for "latest": the newest one that passes its integrity check), as chosen by
        the main process, on every process."""
        folder, state = resume_from_checkpoint(self.accelerator, self.output_dir, self.args.resume_from_checkpoint,
                                               self.model, plan.optimizer, plan.scheduler)
        self.state = state
        self.accelerator.print(f"Resumed from {folder} at optimizer step {state.global_step}.")

    def _save_checkpoint(self, plan: TrainingPlan) -> None:
        save_checkpoint(self.accelerator, self.output_dir, self.state, self.args.save_total_limit, self.model,
                        plan.optimizer, plan.scheduler)

    def train(self) -> TrainingResult:
        if self.args.do_eval_only:
            return self._evaluate_only()
        self._check_evaluation_data()
        plan = self._plan()
        self.accelerator.init_trackers("unitrim", config=self._tracker_config())
        if self.args.resume_from_checkpoint:
            self._resume(plan)
        progress = tqdm(total=plan.total_steps, initial=self.state.global_step, desc="training",
                        disable=not self.accelerator.is_main_process)
        evaluation: RetrievalEvaluation | None = None
        started = time.perf_counter()
        for epoch in range(self.state.global_step // plan.steps_per_epoch, plan.num_epochs):
            if self.state.global_step >= plan.stop_at:
                break
            self._train_epoch(plan, epoch, progress)
            if self.args.do_eval and self._epoch_complete(plan):
                evaluation = self._evaluate_and_keep_best()
            self._save_checkpoint(plan)
        progress.close()
        train_seconds = time.perf_counter() - started
        self._report_skipped_videos(plan.dataset)
        return self._finish(evaluation, train_seconds)

    def _epoch_complete(self, plan: TrainingPlan) -> bool:
        step = self.state.global_step
        return step % plan.steps_per_epoch == 0 or step == plan.total_steps

    def _epoch_loader(self, plan: TrainingPlan, epoch: int) -> tuple[Any, int]:
        """The epoch's batches (without those a resumed run already took) and the index of its first batch."""
        self.state.epoch = epoch
        accumulation = self.args.gradient_accumulation_steps
        loader = plan.loader
        already_done = self.state.global_step - epoch * plan.steps_per_epoch
        if already_done > 0:
            loader = self.accelerator.skip_first_batches(plan.loader, already_done * accumulation)
        # accelerate's loader calls `set_epoch(self.iteration)` on every `__iter__` (its counter never advances
        # here: the loop breaks on the epoch's last batch), and it forwards the epoch to the sampler OR the
        # dataset, not both. So set its counter, then the sampler's and the dataset's explicitly.
        loader.set_epoch(epoch)
        plan.sampler.set_epoch(epoch)
        plan.dataset.set_epoch(epoch)
        return loader, already_done * accumulation

    def _train_epoch(self, plan: TrainingPlan, epoch: int, progress: tqdm) -> None:
        """Optimizer steps until the end of the epoch or `stop_at`, with the `save_steps` checkpoints."""
        self.model.train()
        loader, first_batch = self._epoch_loader(plan, epoch)
        running: dict[str, list[float]] = {}
        for batch_index, batch in enumerate(loader, start=first_batch):
            self._training_step(plan, batch, batch_index, running)
            if not self.accelerator.sync_gradients:
                continue
            self._after_optimizer_step(plan, running, progress)
            if self.state.global_step == plan.stop_at or self.state.global_step % plan.steps_per_epoch == 0:
                break
            if self.args.save_steps and self.state.global_step % self.args.save_steps == 0:
                self._save_checkpoint(plan)

    def _training_step(self, plan: TrainingPlan, batch: dict[str, Any], batch_index: int, running: dict[str, list[float]]) -> None:
        """Forward, finiteness check, backward, clipping and (when gradients synchronise) the optimizer step."""
        accelerator, args = self.accelerator, self.args
        video_ids = batch.pop("video_ids")
        with accelerator.accumulate(self.model):
            output = self.model(**batch, return_loss=True)
            self._check_finite(output.loss, output.losses, batch_index, video_ids)
            for observe in self.step_observers:
                observe(output)
            accelerator.backward(output.loss)
            if accelerator.sync_gradients and args.max_grad_norm > 0:
                accelerator.clip_grad_norm_(self.model.parameters(), args.max_grad_norm)
            plan.optimizer.step()
            plan.optimizer.zero_grad()
        for name, value in {"loss": output.loss, **output.losses}.items():
            running.setdefault(name, []).append(float(value.detach()))

    def _logged_now(self, plan: TrainingPlan) -> bool:
        step = self.state.global_step
        return step % self.args.logging_steps == 0 or step == plan.stop_at

    def _after_optimizer_step(self, plan: TrainingPlan, running: dict[str, list[float]], progress: tqdm) -> None:
        """Schedule, logit-scale cap, step count, progress and (every `logging_steps`) the logged losses."""
        plan.scheduler.step()
        model = self.accelerator.unwrap_model(self.model)
        model.clamp_logit_scale_()
        self.state.global_step += 1
        progress.update(1)
        if not self._logged_now(plan):
            return
        values = {("train/" + ("loss" if name == "loss" else f"loss_{name}")): sum(v) / len(v) for name, v in running.items()}
        rates = plan.scheduler.get_last_lr()
        values.update({"train/learning_rate": rates[-1], "train/clip_learning_rate": rates[0],
                       "train/logit_scale": float(model.logit_scale.detach().exp())})
        self._log(values)
        progress.set_postfix(loss=f"{values['train/loss']:.3f}")
        running.clear()

    def _check_finite(self, loss: torch.Tensor, losses: dict[str, torch.Tensor], batch_index: int, video_ids: list[str]) -> None:
        finite = torch.tensor([float(torch.isfinite(loss.detach()).all())], device=loss.device)
        if bool((self.accelerator.gather(finite) > 0).all()):
            return
        components = {name: float(value.detach()) for name, value in losses.items()}
        raise NonFiniteLossError(
            f"Non-finite training loss on process {self.accelerator.process_index} at optimizer step "
            f"{self.state.global_step} (epoch {self.state.epoch}, batch {batch_index}): loss={float(loss.detach())}, "
            f"components={components}, video ids={video_ids}. (Another process may hold the non-finite value if this "
            "one is finite.) Lower the learning rates or switch off mixed precision."
        )

    def _log(self, values: dict[str, float]) -> None:
        self.state.log_history.append({"step": self.state.global_step, **values})
        self.accelerator.log(values, step=self.state.global_step)

    def _report_skipped_videos(self, dataset: VideoCaptionDataset) -> None:
        """Write `output_dir/skipped_training_videos.json` (ids left out or replaced on any process) and warn.

        Failures met inside DataLoader worker processes stay in the workers (they are logged there as they happen).
        """
        skipped = sorted(set(gather_object(list(dataset.skipped_video_ids))))
        if not self.accelerator.is_main_process:
            return
        path = self.output_dir / SKIPPED_VIDEOS_FILE
        if not skipped:
            path.unlink(missing_ok=True)  # a report of an earlier run in this folder would mislead
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"count": len(skipped), "video_ids": skipped}, indent=1))
        logger.warning("%d training videos could not be decoded and were skipped: %s (list in %s)", len(skipped), skipped[:20], path)

    # ------------------------------------------------------------------ models

    def _save_model(self, folder_name: str, evaluation: RetrievalEvaluation | None) -> None:
        """Gather the weights on every process, then write `output_dir/folder_name` from the main process."""
        state_dict = self.accelerator.get_state_dict(self.model)
        if self.accelerator.is_main_process:
            extra = {}
            if self.training_fingerprints:
                extra[TRAINING_DATA_FILE] = training_data_json(self.data_args.dataset_name, self.training_fingerprints)
            save_model(self.accelerator.unwrap_model(self.model), self.processor, self.output_dir / folder_name,
                       evaluation, state_dict, extra)

    def _evaluate_and_keep_best(self) -> RetrievalEvaluation | None:
        evaluation = self.evaluate(f"final model (step {self.state.global_step})")
        improved_value: list[float | None] = [None]
        if evaluation is not None:
            value = metric_value(evaluation, self.args.metric_for_best_model)
            self._log({f"eval/{direction}/{name}": float(number) for direction, values in evaluation.metrics.items()
                       for name, number in values.items() if isinstance(number, (int, float))})
            if self.state.best_metric is None or value > self.state.best_metric:
                improved_value = [value]
        # Every process takes the main process's decision: the same best metric in every state, and the weights
        # gathered on every process.
        if self.accelerator.num_processes > 1:
            broadcast_object_list(improved_value)
        if improved_value[0] is not None:
            self.state.best_metric, self.state.best_step = improved_value[0], self.state.global_step
            best = None
            if evaluation is not None:
                best = RetrievalEvaluation.from_dict(evaluation.to_dict())
                best.settings["model"] = f"best model (step {self.state.global_step})"
            self._save_model(BEST_MODEL_FOLDER, best)
        self.accelerator.wait_for_everyone()
        return evaluation

    def _finish(self, evaluation: RetrievalEvaluation | None, train_seconds: float) -> TrainingResult:
        accelerator = self.accelerator
        self.debug.write(self.output_dir, accelerator.unwrap_model(self.model), accelerator.process_index,
                         accelerator.num_processes, self.args.per_device_train_batch_size, self.state.global_step)
        if evaluation is not None and evaluation.settings.get("step") != self.state.global_step:
            evaluation = None  # of an earlier step (the run stopped before its next evaluation)
        self._save_model(FINAL_MODEL_FOLDER, evaluation)
        if accelerator.is_main_process and evaluation is not None:
            evaluation.save(self.output_dir)
        accelerator.wait_for_everyone()
        accelerator.end_training()
        best = self.output_dir / BEST_MODEL_FOLDER
        return TrainingResult(
            output_dir=self.output_dir,
            final_model_dir=self.output_dir / FINAL_MODEL_FOLDER,
            # Only a best model of this run (or of the run it resumed): never a stale folder of an earlier run.
            best_model_dir=best if best.is_dir() and self.state.best_step is not None else None,
            global_step=self.state.global_step,
            train_seconds=train_seconds,
            evaluation=evaluation,
            best_metric=self.state.best_metric,
        )

    def _evaluate_only(self) -> TrainingResult:
        self.model = self.model.to(self.accelerator.device)
        if self.accelerator.is_main_process:
            warn_if_model_trained_on(self.model_args.model_name_or_path, self.eval_split["video_path"])
        evaluation = self.evaluate(f"model {self.model_args.model_name_or_path}")
        if evaluation is not None:
            # Beside, never over, the `metrics.json` of a training run in the same folder.
            evaluation.save(self.output_dir, EVAL_ONLY_METRICS_STEM)
        return TrainingResult(self.output_dir, Path(self.model_args.model_name_or_path), None, 0, 0.0, evaluation, None)

    def _tracker_config(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for arguments in (self.model_args, self.data_args, self.args):
            values.update({key: value for key, value in asdict(arguments).items() if isinstance(value, (int, float, str, bool))})
        return values
