"""The training loop: accelerate for devices, processes, mixed precision and gradient accumulation.

One "step" is one optimizer step (`gradient_accumulation_steps` batches). Checkpoints are taken after optimizer
steps, each epoch and every `save_steps`; an epoch is a pure function of (seed, epoch), so a run resumed from a
checkpoint skips the batches already seen (`skip_first_batches`) and continues exactly as the uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from datetime import timedelta
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, InitProcessGroupKwargs, broadcast_object_list, gather_object, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..errors import UniTriMError
from ..evaluation.runner import RetrievalEvaluation, evaluate_retrieval
from ..modeling_unitrim import UniTriMModel
from ..processing_unitrim import UniTriMProcessor
from .arguments import DataArguments, ModelArguments, TrainingArguments
from .builders import build_frame_cache, build_frame_sampler, build_model, build_processor, load_split
from .checkpointing import (
    TrainerState,
    load_checkpoint,
    prepare_fresh_output_dir,
    resolve_checkpoint,
    save_checkpoint,
)
from .data import EpochShuffleSampler, RetrievalCollator, VideoCaptionDataset
from .optimization import create_optimizer, create_scheduler, warmup_steps_for
from .trackers import select_trackers

BEST_MODEL_FOLDER = "best_model"
FINAL_MODEL_FOLDER = "final_model"
METRICS_FILE_NAME = "metrics.json"
SKIPPED_VIDEOS_FILE_NAME = "skipped_training_videos.json"

logger = logging.getLogger(__name__)


class NonFiniteLossError(UniTriMError, FloatingPointError):
    """The training loss became NaN or infinite; the message names the step, batch and video ids."""


@dataclass
class TrainingResult:
    """Where the run put its models and what it measured."""

    output_dir: Path
    final_model_dir: Path
    best_model_dir: Path | None
    global_step: int
    train_seconds: float
    evaluation: RetrievalEvaluation | None
    best_metric: float | None


def metric_value(evaluation: RetrievalEvaluation, name: str) -> float:
    """`name` = "direction/metric", e.g. "text_to_video/R@1"; a clear error when it is not reported."""
    direction, metric = name.split("/", 1)
    try:
        return float(evaluation.metrics[direction][metric])
    except KeyError as error:
        available = [f"{key}/{inner}" for key, values in evaluation.metrics.items() for inner in values]
        raise ValueError(f"--metric_for_best_model {name!r} is not among the evaluation's metrics {available}.") from error


def parameter_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter (name order, float32 bytes): equal digests mean bit-identical parameters."""
    digest = hashlib.sha256()
    for name, parameter in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(parameter.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class UnsupportedDistributionError(UniTriMError, RuntimeError):
    """The accelerate configuration shards the model in a way the trainer does not support yet."""


def check_supported_distribution(accelerator: Accelerator) -> None:
    """
    Refuse FSDP and DeepSpeed ZeRO-3 up front: evaluation runs the unwrapped model on the main process only, which
    with parameters sharded across processes would hang (the other ranks wait) or see empty shards.
    """
    kind = accelerator.distributed_type
    if kind == DistributedType.FSDP:
        raise UnsupportedDistributionError(
            "FSDP is not supported by unitrim_hf's trainer yet (evaluation runs on the main process only). Use plain "
            "multi-GPU data parallelism (DDP) or DeepSpeed ZeRO stage 1/2 in `accelerate config`."
        )
    if kind == DistributedType.DEEPSPEED:
        plugin = getattr(accelerator.state, "deepspeed_plugin", None)
        if plugin is not None and int(getattr(plugin, "zero_stage", 0) or 0) == 3:
            raise UnsupportedDistributionError(
                "DeepSpeed ZeRO stage 3 is not supported by unitrim_hf's trainer yet (evaluation runs on the main "
                "process only). Use ZeRO stage 1 or 2, or plain multi-GPU data parallelism (DDP)."
            )


def save_model(
    model: UniTriMModel,
    processor: UniTriMProcessor,
    folder: Path,
    evaluation: RetrievalEvaluation | None,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> None:
    """`save_pretrained` of model and processor (and the metrics) into `folder`, replacing it atomically.

    `state_dict`: the weights to save (`accelerator.get_state_dict`, gathered on every process); the model's own
    when None.
    """
    temporary = folder.with_name(f".tmp-{folder.name}")
    if temporary.exists():
        shutil.rmtree(temporary)
    model.save_pretrained(temporary, state_dict=state_dict)
    processor.save_pretrained(temporary)
    if evaluation is not None:
        (temporary / METRICS_FILE_NAME).write_text(json.dumps(evaluation.to_dict(), indent=1))
    if folder.exists():
        shutil.rmtree(folder)
    temporary.rename(folder)


class Trainer:
    """Builds everything from the arguments, then `train()`; see the module docstring for the step semantics."""

    def __init__(self, model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> None:
        self.model_args, self.data_args, self.args = model_args, data_args, training_args
        self.output_dir = Path(training_args.output_dir)
        if training_args.torch_num_threads:
            torch.set_num_threads(training_args.torch_num_threads)
        trackers = select_trackers(training_args.report_to, self.output_dir / "logs")
        self.accelerator = Accelerator(
            gradient_accumulation_steps=training_args.gradient_accumulation_steps,
            log_with=trackers or None,
            project_dir=str(self.output_dir),
            # Evaluation runs on the main process while the others wait in a collective: allow for its length.
            kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(seconds=training_args.ddp_timeout))],
        )
        check_supported_distribution(self.accelerator)
        if not training_args.resume_from_checkpoint and not training_args.do_eval_only:
            # Before any slow preparation: refuse (or clear) an earlier run's checkpoints.
            prepare_fresh_output_dir(self.accelerator, self.output_dir, bool(training_args.overwrite_output_dir))
        set_seed(training_args.seed)
        self.model = build_model(model_args)
        self.processor = build_processor(model_args, self.model.config, data_args)
        self.image_size = int(self.model.config.vision_config.image_size)
        with self.accelerator.main_process_first():
            self.train_split = None if training_args.do_eval_only else load_split(data_args, "train")
            self.eval_split = load_split(data_args, data_args.eval_split)
            self.train_cache = self.eval_cache = None
            if data_args.use_frame_cache:
                if self.train_split is not None:
                    self.train_cache = build_frame_cache(data_args, "train", self.train_split, self.image_size)
                self.eval_cache = build_frame_cache(data_args, data_args.eval_split, self.eval_split, self.image_size)
        self.state = TrainerState()
        self.logits_shapes: list[list[int]] = []

    # ------------------------------------------------------------------ evaluation

    def evaluate(self) -> RetrievalEvaluation | None:
        """Evaluate the (unwrapped) model on the main process; the others wait. Returns None off the main process."""
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
                per_alignment=True,
                show_progress=True,
                is_main_process=True,
            )
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

    def train(self) -> TrainingResult:
        args, accelerator = self.args, self.accelerator
        if args.do_eval_only:
            return self._evaluate_only()
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
        # The schedule counts optimizer steps; it is stepped by hand (accelerate would step it once per process).
        steps_per_epoch = math.ceil(len(loader) / args.gradient_accumulation_steps)
        total_steps = args.max_steps or steps_per_epoch * args.num_train_epochs
        num_epochs = math.ceil(total_steps / steps_per_epoch)
        scheduler = create_scheduler(optimizer, total_steps, warmup_steps_for(total_steps, args.warmup_steps, args.warmup_ratio))
        accelerator.register_for_checkpointing(scheduler)
        accelerator.init_trackers("unitrim", config=self._tracker_config())

        if args.resume_from_checkpoint:
            folder = resolve_checkpoint(self.output_dir, args.resume_from_checkpoint)
            self.state = load_checkpoint(accelerator, folder)
            accelerator.print(f"Resumed from {folder} at optimizer step {self.state.global_step}.")

        stop_at = min(total_steps, args.stop_after_steps or total_steps)
        progress = tqdm(total=total_steps, initial=self.state.global_step, desc="training", disable=not accelerator.is_main_process)
        evaluation: RetrievalEvaluation | None = None
        running: dict[str, list[float]] = {}
        started = time.perf_counter()
        start_epoch = self.state.global_step // steps_per_epoch
        for epoch in range(start_epoch, num_epochs):
            if self.state.global_step >= stop_at:
                break
            self.state.epoch = epoch
            self.model.train()
            epoch_loader = loader
            already_done = self.state.global_step - epoch * steps_per_epoch
            if already_done > 0:
                epoch_loader = accelerator.skip_first_batches(loader, already_done * args.gradient_accumulation_steps)
            # accelerate's loader calls `set_epoch(self.iteration)` on every `__iter__` (its counter never advances
            # here: the loop breaks on the epoch's last batch), and it forwards the epoch to the sampler OR the
            # dataset, not both. So set its counter, then the sampler's and the dataset's explicitly.
            epoch_loader.set_epoch(epoch)
            sampler.set_epoch(epoch)
            dataset.set_epoch(epoch)
            for batch_index, batch in enumerate(epoch_loader, start=already_done * args.gradient_accumulation_steps):
                video_ids = batch.pop("video_ids")
                with accelerator.accumulate(self.model):
                    output = self.model(**batch, return_loss=True)
                    self._check_finite(output.loss, output.losses, batch_index, video_ids)
                    if args.debug_dump_parameters and len(self.logits_shapes) < 4:
                        self.logits_shapes.append(list(output.logits_per_text_video.shape))
                    accelerator.backward(output.loss)
                    if accelerator.sync_gradients and args.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(self.model.parameters(), args.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad()
                for name, value in {"loss": output.loss, **output.losses}.items():
                    running.setdefault(name, []).append(float(value.detach()))
                if not accelerator.sync_gradients:
                    continue
                scheduler.step()
                accelerator.unwrap_model(self.model).clamp_logit_scale_()
                self.state.global_step += 1
                progress.update(1)
                if self.state.global_step % args.logging_steps == 0 or self.state.global_step == stop_at:
                    values = {("train/" + ("loss" if name == "loss" else f"loss_{name}")): sum(v) / len(v) for name, v in running.items()}
                    values["train/learning_rate"] = scheduler.get_last_lr()[-1]
                    values["train/clip_learning_rate"] = scheduler.get_last_lr()[0]
                    values["train/logit_scale"] = float(accelerator.unwrap_model(self.model).logit_scale.detach().exp())
                    self._log(values)
                    progress.set_postfix(loss=f"{values['train/loss']:.3f}")
                    running = {}
                end_of_epoch = self.state.global_step % steps_per_epoch == 0
                if self.state.global_step == stop_at or end_of_epoch:
                    break
                if args.save_steps and self.state.global_step % args.save_steps == 0:
                    save_checkpoint(accelerator, self.output_dir, self.state, args.save_total_limit)
            if self.state.global_step % steps_per_epoch == 0 or self.state.global_step == total_steps:
                if args.do_eval:
                    evaluation = self._evaluate_and_keep_best()
            save_checkpoint(accelerator, self.output_dir, self.state, args.save_total_limit)
        progress.close()
        train_seconds = time.perf_counter() - started
        self._report_skipped_videos(dataset)
        return self._finish(evaluation, train_seconds)

    def _report_skipped_videos(self, dataset: VideoCaptionDataset) -> None:
        """Write `output_dir/skipped_training_videos.json` (ids left out or replaced on any process) and warn.

        Failures met inside DataLoader worker processes stay in the workers (they are logged there as they happen).
        """
        skipped = sorted(set(gather_object(list(dataset.skipped_video_ids))))
        if not self.accelerator.is_main_process:
            return
        path = self.output_dir / SKIPPED_VIDEOS_FILE_NAME
        if not skipped:
            path.unlink(missing_ok=True)  # a report of an earlier run in this folder would mislead
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"count": len(skipped), "video_ids": skipped}, indent=1))
        logger.warning("%d training videos could not be decoded and were skipped: %s (list in %s)", len(skipped), skipped[:20], path)

    def _evaluate_and_keep_best(self) -> RetrievalEvaluation | None:
        evaluation = self.evaluate()
        improved_value: list[float | None] = [None]
        if evaluation is not None:
            value = metric_value(evaluation, self.args.metric_for_best_model)
            self._log({f"eval/{direction}/{name}": float(number) for direction, values in evaluation.metrics.items()
                       for name, number in values.items() if isinstance(number, (int, float))})
            if self.state.best_metric is None or value > self.state.best_metric:
                improved_value = [value]
        # Every process takes the main process's decision: the same best metric in every state, and the weights
        # gathered on every process (`get_state_dict` is a collective under sharding).
        if self.accelerator.num_processes > 1:
            broadcast_object_list(improved_value)
        if improved_value[0] is not None:
            self.state.best_metric, self.state.best_step = improved_value[0], self.state.global_step
            state_dict = self.accelerator.get_state_dict(self.model)
            if self.accelerator.is_main_process:
                save_model(self.accelerator.unwrap_model(self.model), self.processor, self.output_dir / BEST_MODEL_FOLDER,
                           evaluation, state_dict)
        self.accelerator.wait_for_everyone()
        return evaluation

    def _finish(self, evaluation: RetrievalEvaluation | None, train_seconds: float) -> TrainingResult:
        accelerator = self.accelerator
        model = accelerator.unwrap_model(self.model)
        if self.args.debug_dump_parameters:
            debug = self.output_dir / "debug"
            debug.mkdir(parents=True, exist_ok=True)
            record = {
                "process_index": accelerator.process_index,
                "num_processes": accelerator.num_processes,
                "per_device_batch_size": self.args.per_device_train_batch_size,
                "parameter_sha256": parameter_digest(model),
                "logits_per_text_video_shapes": self.logits_shapes,
                "global_step": self.state.global_step,
            }
            (debug / f"rank{accelerator.process_index}.json").write_text(json.dumps(record, indent=1))
        state_dict = accelerator.get_state_dict(self.model)  # on every process (a collective under sharding)
        if accelerator.is_main_process:
            save_model(model, self.processor, self.output_dir / FINAL_MODEL_FOLDER, evaluation, state_dict)
            if evaluation is not None:
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
        if not self.model_args.model_name_or_path:
            raise ValueError("--do_eval_only needs --model_name_or_path (a saved UniTriM model).")
        self.model = self.model.to(self.accelerator.device)
        evaluation = self.evaluate()
        if evaluation is not None:
            evaluation.save(self.output_dir)
        return TrainingResult(self.output_dir, Path(self.model_args.model_name_or_path), None, 0, 0.0, evaluation, None)

    def _tracker_config(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for arguments in (self.model_args, self.data_args, self.args):
            values.update({key: value for key, value in asdict(arguments).items() if isinstance(value, (int, float, str, bool))})
        return values
