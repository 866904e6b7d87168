"""Encode a folder of videos and images once into an `IndexStore`: batched, resumable, incremental."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch

from ..errors import UniTriMError
from .index_store import FeatureLayout, IndexStore, StoredFeatures
from .media_files import IMAGE, VIDEO, MediaFile, SkippedFile, classify_file, scan_folder
from .model_fingerprint import model_fingerprint


@dataclass
class IndexingReport:
    """What one indexing run did.

    Args:
        added: paths encoded and stored by this run, in order.
        skipped: files that could not be indexed (not media, unreadable, corrupt), with reasons; includes
            those remembered from earlier runs.
        unchanged: number of files already in the index with the same size and modification time.
        removed: paths dropped from the index because they changed (then re-encoded) or were deleted.
        seconds: wall time of the run.
    """

    added: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def items_per_second(self) -> float:
        return len(self.added) / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _DecodedItem:
    media: MediaFile
    pixel_values: torch.Tensor  # (num_real_frames, 3, S, S)
    timestamps: torch.Tensor  # (num_real_frames,) seconds


def processor_settings(processor) -> dict:
    """The processor settings that change visual features (frames sampled, image transform)."""
    return {"frame_sampler": processor.frame_sampler.to_dict(), "image_transform": processor.image_transform.to_dict()}


def _decode(media: MediaFile, processor) -> _DecodedItem:
    """Frames of one file, transformed for the model.

    Raises:
        UniTriMError: the file cannot be decoded, for any reason (a library error as is; any other exception,
            e.g. a decoder crash on a corrupt file, wrapped with its type and message), so that one bad file is
            recorded as skipped and never stops an indexing run.
    """
    try:
        if media.kind == VIDEO:
            sampled = processor.frame_sampler(media.path)
            real = sampled.mask.astype(bool)
            pixel_values = processor.image_transform(sampled.frames[real])
            timestamps = torch.as_tensor(sampled.timestamps[real], dtype=torch.float32)
        else:
            pixel_values = processor.encode_images(media.path)["pixel_values"]
            timestamps = torch.zeros(1)
    except UniTriMError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure on one file only skips that file
        raise UniTriMError(f"cannot decode {str(media.path)!r}: {type(error).__name__}: {error}") from error
    return _DecodedItem(media, pixel_values, timestamps)


class Indexer:
    """
    Builds and updates the index of a collection with one model and processor.

    Args:
        index_dir: the index folder (created on first use).
        model: a `UniTriMModel`; it is put in eval mode and left so (call `model.train()` afterwards to go on
            training it).
        processor: its `UniTriMProcessor` (frame sampling and image transform).
        batch_size: items encoded per forward pass.
        device: where the model runs (default: where its parameters are).
        flush_every: items per shard; each flushed shard survives an interruption.
        progress: show a tqdm progress bar.

    Raises:
        IndexModelMismatchError: the index exists and was built by another model.
    """

    def __init__(
        self,
        index_dir: str | os.PathLike,
        model,
        processor,
        batch_size: int = 8,
        device: str | torch.device | None = None,
        flush_every: int = 64,
        progress: bool = True,
    ) -> None:
        if batch_size < 1 or flush_every < 1:
            raise ValueError(f"batch_size and flush_every must be >= 1, got {batch_size} and {flush_every}")
        self.model = model.eval()
        if device is not None:
            self.model.to(device)
        self.device = next(model.parameters()).device
        self.processor = processor
        self.batch_size = batch_size
        self.flush_every = flush_every
        self.progress = progress
        fingerprint = model_fingerprint(model)
        settings = processor_settings(processor)
        if IndexStore.exists(index_dir):
            self.store = IndexStore.open(index_dir, fingerprint)
            if self.store.manifest.processor_settings != settings:
                raise UniTriMError(
                    f"the index at {os.fspath(index_dir)!r} was built with processor settings "
                    f"{self.store.manifest.processor_settings}, not {settings}; use the same frame sampling and "
                    "image size, or build a new index"
                )
        else:
            config = model.config
            layout = FeatureLayout(
                num_frames=processor.frame_sampler.num_frames,
                top_k=config.patch_top_k if model.patch_selector is not None else 0,
                embed_dim=config.projection_dim,
            )
            self.store = IndexStore.create(index_dir, fingerprint, layout, settings)

    # ------------------------------------------------------------------ public
    def index_folder(self, folder: str | os.PathLike) -> IndexingReport:
        """Index every video and image under `folder` (recursively) that is new or changed since the last run;
        drop entries of files under `folder` that no longer exist."""
        folder = Path(folder).absolute()
        scan = scan_folder(folder, exclude=[self.store.directory])
        present = {str(media.path) for media in scan.media} | {str(entry.path) for entry in scan.skipped}
        prefix = str(folder) + os.sep

        def vanished() -> set[str]:  # read under the writer lock, from the manifest as it is on disk
            known = [item.path for item in self.store.items] + [entry["path"] for entry in self.store.manifest.skipped]
            return {path for path in known if path.startswith(prefix) and path not in present}

        return self._update(scan.media, scan.skipped, vanished)

    def add_files(self, paths: Iterable[str | os.PathLike]) -> IndexingReport:
        """Index the given files (classified by content; a file named twice, in any spelling, counts once);
        files already indexed and unchanged are left alone."""
        media: list[MediaFile] = []
        skipped: list[SkippedFile] = []
        unique: dict[Path, Path] = {}  # resolved path -> the first absolute spelling given
        for path in paths:
            unique.setdefault(Path(path).resolve(), Path(path).absolute())
        for path in sorted(unique.values()):
            entry = classify_file(path)
            (media if isinstance(entry, MediaFile) else skipped).append(entry)
        return self._update(media, skipped, set)

    # ------------------------------------------------------------------ work
    def _update(
        self, media: list[MediaFile], skipped: list[SkippedFile], vanished: Callable[[], set[str]]
    ) -> IndexingReport:
        # One writer at a time: the lock is held for the whole update and the manifest re-read under it, so
        # another Indexer (or process) on the same index cannot interleave with or overwrite this update.
        with self.store.locked():
            return self._update_locked(media, skipped, vanished())

    def _update_locked(self, media: list[MediaFile], skipped: list[SkippedFile], vanished: set[str]) -> IndexingReport:
        start = time.perf_counter()
        report = IndexingReport()
        indexed = {item.path: item for item in self.store.items}
        remembered = {entry["path"]: entry for entry in self.store.manifest.skipped}
        to_encode: list[MediaFile] = []
        changed: set[str] = set(vanished)
        for entry in media:
            key = str(entry.path)
            previous = indexed.get(key) or remembered.get(key)
            if previous is not None:
                size = previous.size if hasattr(previous, "size") else previous["size"]
                mtime = previous.mtime_ns if hasattr(previous, "mtime_ns") else previous["mtime_ns"]
                if (size, mtime) == (entry.size, entry.mtime_ns):
                    if key in indexed:
                        report.unchanged += 1
                    continue
                changed.add(key)
            to_encode.append(entry)
        for entry in skipped:
            if str(entry.path) in indexed:
                changed.add(str(entry.path))
        if changed:
            report.removed = sorted(changed & (set(indexed) | set(remembered)))
            self.store.remove_paths(changed)
        if skipped:
            self.store.record_skipped([_skipped_dict(entry) for entry in skipped])

        self._encode_all(to_encode, report)
        report.skipped = [
            SkippedFile(Path(entry["path"]), entry["reason"], entry["size"], entry["mtime_ns"])
            for entry in self.store.manifest.skipped
        ]
        report.seconds = time.perf_counter() - start
        return report

    def _encode_all(self, to_encode: list[MediaFile], report: IndexingReport) -> None:
        from tqdm.auto import tqdm

        pending_entries: list[dict] = []
        pending_features: list[StoredFeatures] = []
        failures: list[dict] = []
        with tqdm(total=len(to_encode), desc="indexing", unit="file", disable=not self.progress) as bar:
            for start in range(0, len(to_encode), self.batch_size):
                decoded: list[_DecodedItem] = []
                for media in to_encode[start : start + self.batch_size]:
                    try:
                        decoded.append(_decode(media, self.processor))
                    except UniTriMError as error:
                        failures.append(_skipped_dict(SkippedFile(media.path, str(error), media.size, media.mtime_ns)))
                if decoded:
                    pending_features.append(self.encode(decoded))
                    pending_entries.extend(
                        {"path": str(item.media.path), "kind": item.media.kind, "size": item.media.size,
                         "mtime_ns": item.media.mtime_ns, "num_frames": int(item.pixel_values.shape[0])}
                        for item in decoded
                    )
                bar.update(min(self.batch_size, len(to_encode) - start))
                if len(pending_entries) >= self.flush_every:
                    self._flush(pending_entries, pending_features, failures, report)
            self._flush(pending_entries, pending_features, failures, report)

    def _flush(self, entries: list[dict], features: list[StoredFeatures], failures: list[dict], report: IndexingReport) -> None:
        if entries:
            merged = StoredFeatures(
                *(torch.cat([getattr(part, name) for part in features]) for name in
                  ("video_embeds", "frame_embeds", "video_mask", "timestamps")),
                patch_embeds=None if features[0].patch_embeds is None else torch.cat([part.patch_embeds for part in features]),
            )
            self.store.append_shard(list(entries), merged)
            report.added.extend(entry["path"] for entry in entries)
        if failures:
            self.store.record_skipped(list(failures))
        entries.clear()
        features.clear()
        failures.clear()

    @torch.inference_mode()
    def encode(self, decoded: list[_DecodedItem]) -> StoredFeatures:
        """Visual features of decoded items, padded to the index's T frame slots (videos and images in one call
        each)."""
        layout = self.store.manifest.layout
        count = len(decoded)
        video_embeds = torch.zeros(count, layout.embed_dim)
        frame_embeds = torch.zeros(count, layout.num_frames, layout.embed_dim)
        video_mask = torch.zeros(count, layout.num_frames, dtype=torch.bool)
        timestamps = torch.full((count, layout.num_frames), -1.0)
        patch_embeds = torch.zeros(count, layout.num_frames, layout.top_k, layout.embed_dim) if layout.top_k else None
        for kind in (VIDEO, IMAGE):
            rows = [row for row, item in enumerate(decoded) if item.media.kind == kind]
            if not rows:
                continue
            if kind == IMAGE:
                pixels = torch.cat([decoded[row].pixel_values for row in rows]).to(self.device)
                features = self.model.get_image_features(pixels)
            else:
                size = decoded[rows[0]].pixel_values.shape[-1]
                pixels = torch.zeros(len(rows), layout.num_frames, 3, size, size)
                mask = torch.zeros(len(rows), layout.num_frames, dtype=torch.bool)
                for position, row in enumerate(rows):
                    frames = decoded[row].pixel_values
                    pixels[position, : len(frames)] = frames
                    mask[position, : len(frames)] = True
                features = self.model.get_video_features(pixels.to(self.device), mask.to(self.device))
            features = features.to("cpu", torch.float32)
            slots = features.frame_embeds.shape[1]
            index = torch.tensor(rows)
            video_embeds[index] = features.video_embeds
            frame_embeds[index, :slots] = features.frame_embeds
            video_mask[index, :slots] = features.video_mask.bool()
            if patch_embeds is not None and features.patch_embeds is not None:  # images have no patches
                patch_embeds[index, :slots] = features.patch_embeds
            for row in rows:
                stamps = decoded[row].timestamps
                timestamps[row, : len(stamps)] = stamps
        return StoredFeatures(video_embeds, frame_embeds, video_mask, timestamps, patch_embeds)


def _skipped_dict(entry: SkippedFile) -> dict:
    return {"path": str(entry.path), "reason": entry.reason, "size": entry.size, "mtime_ns": entry.mtime_ns}


def index_folder(
    folder: str | os.PathLike, index_dir: str | os.PathLike, model, processor, **indexer_options
) -> IndexingReport:
    """Build or update the index of `folder` in `index_dir`; `indexer_options` are those of `Indexer`."""
    return Indexer(index_dir, model, processor, **indexer_options).index_folder(folder)


__all__ = ["Indexer", "IndexingReport", "index_folder", "processor_settings"]
