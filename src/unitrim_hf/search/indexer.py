"""Encode a folder of videos and images once into an `IndexStore`: batched, resumable, incremental, and split
over the processes of `accelerate launch`."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import torch

from ..errors import UniTriMError
from .display import display_text
from .fragments import commit_item_fragments, items_dataset, items_dataset_uri, write_item_fragments
from .index_rows import FeatureLayout, StoredFeatures
from .index_table import IndexStore
from ..media.media_files import IMAGE, VIDEO, MediaFile, SkippedFile, classify_file, scan_folder
from .model_fingerprint import model_fingerprint
from .process_group import SingleProcess
from .writer_lease import writer_lease


@dataclass
class IndexingReport:
    """What one indexing run did.

    Args:
        added: paths encoded and stored by this run (new or changed files), in order.
        skipped: files that could not be indexed (not media, unreadable, corrupt, changed while being read),
            with reasons; includes those remembered from earlier runs.
        unchanged: number of files already in the index with the same size and modification time.
        removed: paths dropped from the index because they were deleted or can no longer be indexed (a file that
            is there but cannot be read, or whose folder cannot be listed, is skipped, never removed).
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
    size: int
    mtime_ns: int
    content_sha256: str


def processor_settings(processor) -> dict:
    """The processor settings that change visual features (frames sampled, image transform), as they read back
    from the index's JSON metadata (tuples as lists)."""
    settings = {"frame_sampler": processor.frame_sampler.to_dict(), "image_transform": processor.image_transform.to_dict()}
    return json.loads(json.dumps(settings))


def _as_read_back(stored: dict) -> dict:
    """Stored processor settings with the defaults of settings added since filled in as the transform reads them
    (an index written before the image transform had a `resize` setting was made with the "float" resize)."""
    from ..media.image_transforms import CLIPFrameTransform

    transform = stored.get("image_transform")
    if not isinstance(transform, dict):
        return stored
    try:
        read_back = CLIPFrameTransform.from_dict(transform).to_dict()
    except (TypeError, ValueError):
        return stored
    return json.loads(json.dumps({**stored, "image_transform": read_back}))


def _file_state(path: Path) -> tuple[int, int, str]:
    """(size, mtime_ns, sha256 of the content) of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        before = os.fstat(handle.fileno())
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return before.st_size, before.st_mtime_ns, digest.hexdigest()


def _decode(media: MediaFile, processor) -> _DecodedItem:
    """Frames of one file, transformed for the model, with the size, mtime and hash of what was decoded.

    Raises:
        UniTriMError: the file cannot be decoded, for any reason (a library error as is; any other exception,
            e.g. a decoder crash on a corrupt file, wrapped with its type and message), or it was replaced while
            being read, so that one bad file is recorded as skipped and never stops an indexing run.
    """
    try:
        size, mtime_ns, content_sha256 = _file_state(media.path)
        if media.kind == VIDEO:
            sampled = processor.frame_sampler(media.path)
            real = sampled.mask.astype(bool)
            pixel_values = processor.image_transform(sampled.frames[real])
            timestamps = torch.as_tensor(sampled.timestamps[real], dtype=torch.float32)
        else:
            pixel_values = processor.encode_images(media.path)["pixel_values"]
            timestamps = torch.zeros(1)
        after = media.path.stat()
    except UniTriMError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure on one file only skips that file
        raise UniTriMError(f"cannot decode {display_text(media.path)!r}: {type(error).__name__}: {error}") from error
    if (after.st_size, after.st_mtime_ns) != (size, mtime_ns):
        raise UniTriMError(f"{display_text(media.path)!r} was replaced while being indexed; it is tried again next run")
    return _DecodedItem(media, pixel_values, timestamps, size, mtime_ns, content_sha256)


@dataclass
class _Plan:
    """What one update does, decided once (by the main process) from the index as committed."""

    to_encode: list[MediaFile]
    to_remove: list[str]
    newly_skipped: list[dict]
    unchanged: int
    run_id: str
    unreadable: list[dict] = field(default_factory=list)


class Indexer:
    """
    Builds and updates the index of a collection with one model and processor.

    Args:
        index_dir: the index folder or object-store URI (`s3://bucket/index`; created on first use).
        model: a `UniTriMModel`; it is put in eval mode and left so (call `model.train()` afterwards to go on
            training it).
        processor: its `UniTriMProcessor` (frame sampling and image transform).
        batch_size: items encoded per forward pass.
        device: where the model runs (default: where its parameters are).
        flush_every: items per commit; every committed item survives an interruption.
        progress: show a tqdm progress bar.
        processes: the processes sharing this run (`process_group.launched_processes()` under `accelerate
            launch`); each encodes its share of the files and one commit makes them all visible.
        storage_options: LanceDB storage options for object stores.

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
        processes: SingleProcess | None = None,
        storage_options: dict | None = None,
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
        self.processes = processes or SingleProcess()
        self.index_dir = index_dir
        self.storage_options = storage_options
        self.fingerprint = model_fingerprint(model)
        self.settings = processor_settings(processor)
        config = model.config
        if getattr(config, "text_gated_interaction", False):
            raise ValueError(
                "An EERCF model (config.text_gated_interaction) scores every patch and the encoded frames of each "
                "video, which the index does not store: evaluate it with unitrim-evaluate instead of indexing it."
            )
        self.layout = FeatureLayout(
            # A model with AOSM / ISA matrices scores exactly config.max_frames slots (it pads shorter videos to them).
            num_frames=config.max_frames if getattr(config, "has_fixed_lengths", False) else processor.frame_sampler.num_frames,
            top_k=config.patch_top_k if model.patch_selector is not None else 0,
            embed_dim=config.projection_dim,
        )
        self.store: IndexStore | None = self._checked(
            IndexStore.open_if_exists(index_dir, self.fingerprint, storage_options=storage_options)
        )

    def _checked(self, store: IndexStore | None) -> IndexStore | None:
        """`store`, refused when it was built with other processor settings."""
        if store is not None and _as_read_back(store.processor_settings) != self.settings:
            raise UniTriMError(
                f"the index at {display_text(self.index_dir)!r} was built with processor settings "
                f"{store.processor_settings}, not {self.settings}; use the same frame sampling and image size, or "
                "build a new index"
            )
        return store

    def _ensure_store(self) -> IndexStore:
        """Open the index, creating it (main process first) when missing. Every process passes the barrier
        whatever it found when it was constructed (the main process may have created the index since), so the
        processes' collectives stay in step."""
        if self.store is None and self.processes.is_main:
            self.store = self._checked(
                IndexStore.create(self.index_dir, self.fingerprint, self.layout, self.settings, self.storage_options)
            )
        self.processes.barrier()
        if self.store is None:
            self.store = self._checked(IndexStore.open(self.index_dir, self.fingerprint, storage_options=self.storage_options))
        self.store.refresh()
        return self.store

    # ------------------------------------------------------------------ public
    def index_folder(self, folder: str | os.PathLike) -> IndexingReport:
        """Index every video and image under `folder` (recursively) that is new or changed since the last run;
        drop entries of files under `folder` that no longer exist.

        Raises:
            UniTriMError: `folder` is not an existing folder (nothing is created then).
        """
        folder = Path(folder).absolute()
        if not folder.is_dir():
            raise UniTriMError(f"{display_text(folder)!r} is not an existing folder")
        excluded = [self.index_dir] if "://" not in os.fspath(self.index_dir) else []
        scan = scan_folder(folder, exclude=excluded) if self.processes.is_main else None
        prefix = os.fsencode(folder) + os.fsencode(os.sep)
        return self._update(scan.media if scan else [], scan.skipped if scan else [], prefix)

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
        return self._update(media, skipped, None)

    # ------------------------------------------------------------------ work
    def _plan(self, media: list[MediaFile], skipped: list[SkippedFile], prefix: bytes | None) -> _Plan:
        """Compare the scan with the committed index: what to encode, what to drop, what is unchanged."""
        store = self.store
        indexed = {item.path: item for item in store.items}
        remembered = {entry["path"]: entry for entry in store.skipped}
        to_encode: list[MediaFile] = []
        unchanged = 0
        for entry in media:
            key = str(entry.path)
            previous = indexed.get(key) or remembered.get(key)
            if previous is not None:
                size = previous.size if key in indexed else previous["size"]
                mtime = previous.mtime_ns if key in indexed else previous["mtime_ns"]
                if (size, mtime) == (entry.size, entry.mtime_ns):
                    unchanged += key in indexed
                    continue
            to_encode.append(entry)
        present = {str(entry.path) for entry in media} | {str(entry.path) for entry in skipped}
        to_remove = {str(entry.path) for entry in skipped if str(entry.path) in indexed}
        unreadable: list[dict] = []
        if prefix is not None:
            for path in sorted(set(indexed) | set(remembered)):
                if not os.fsencode(path).startswith(prefix) or path in present:
                    continue
                reason = _why_not_scanned(path, prefix)
                if reason is None:
                    to_remove.add(path)
                else:
                    previous = indexed.get(path)
                    size, mtime = (previous.size, previous.mtime_ns) if previous else (
                        remembered[path]["size"], remembered[path]["mtime_ns"])
                    unreadable.append({"path": path, "reason": reason, "size": size, "mtime_ns": mtime})
        return _Plan(to_encode, sorted(to_remove), [_skipped_dict(entry) for entry in skipped], unchanged,
                     uuid.uuid4().hex, unreadable)

    def _update(self, media: list[MediaFile], skipped: list[SkippedFile], prefix: bytes | None) -> IndexingReport:
        """Plan against the committed index and carry the plan out, under the writer lease (main process)."""
        start = time.perf_counter()
        with writer_lease(self.index_dir) if self.processes.is_main else nullcontext():
            report = self._update_under_lease(media, skipped, prefix)
        report.seconds = time.perf_counter() - start
        return report

    def _update_under_lease(self, media: list[MediaFile], skipped: list[SkippedFile], prefix: bytes | None) -> IndexingReport:
        store = self._ensure_store()
        plan = None
        if self.processes.is_main:
            plan = self._plan(media, skipped, prefix)
        plan = self.processes.broadcast(plan)
        report = IndexingReport(unchanged=plan.unchanged)
        if self.processes.is_main:
            # Files no longer present or no longer indexable: dropped now (they have no new row to wait for).
            store.delete_paths(plan.to_remove)
            store.record_skipped(plan.newly_skipped)
            report.removed = list(plan.to_remove)
        self._encode_plan(plan.to_encode, report)
        if self.processes.is_main:
            store.ensure_vector_index()
        store.refresh()
        unreadable = {entry["path"]: entry for entry in plan.unreadable}
        entries = [entry for entry in store.skipped if entry["path"] not in unreadable] + plan.unreadable
        report.skipped = [SkippedFile(Path(entry["path"]), entry["reason"], entry["size"], entry["mtime_ns"]) for entry in entries]
        return report

    def _commit(self, entries: list[dict], features: StoredFeatures) -> None:
        """Insert or replace the rows of `entries` (one commit); files that failed before are no longer skipped."""
        self.store.upsert(entries, features)
        self.store.forget_skipped(entry["path"] for entry in entries)

    def _encode_plan(self, to_encode: list[MediaFile], report: IndexingReport) -> None:
        """Encode and store the files of the plan: committed every `flush_every` items by a single process, in
        one commit of every process's fragments under a launcher."""
        if self.processes.world_size == 1:
            self._encode_all(to_encode, report, self._commit)
        else:
            self._encode_distributed(to_encode[self.processes.rank :: self.processes.world_size], report)

    def _encode_distributed(self, mine: list[MediaFile], report: IndexingReport) -> None:
        """Each process writes its rows as Lance fragments (visible to no reader); the main process commits them
        all at once, on top of the version it planned from."""
        from .index_rows import features_to_table

        read_version = self.store.version  # the main process's, after its commits of the plan
        dataset = items_dataset(self.store)
        fragments: list[str] = []

        def write(entries: list[dict], features: StoredFeatures) -> None:
            rows = features_to_table(self.store._items.schema, self.layout, entries, features, self.fingerprint.digest)
            fragments.extend(write_item_fragments(dataset, rows, self.storage_options))

        local = IndexingReport()
        failures = self._encode_all(mine, local, write, record_failures=False)
        gathered = self.processes.gather((local.added, failures, fragments))
        if self.processes.is_main:
            report.added = [path for added, _, _ in gathered for path in added]
            commit_run(
                self.store, [text for _, _, written in gathered for text in written], report.added,
                [failure for _, failed, _ in gathered for failure in failed], read_version, self.storage_options,
            )
        self.processes.barrier()

    def _encode_all(
        self, to_encode: list[MediaFile], report: IndexingReport, commit, record_failures: bool = True
    ) -> list[dict]:
        """Decode and encode `to_encode` in batches, `commit(entries, features)` every `flush_every` items;
        returns the failures not yet recorded (all of them when `record_failures` is false)."""
        from tqdm.auto import tqdm

        entries: list[dict] = []
        features: list[StoredFeatures] = []
        failures: list[dict] = []

        def flush() -> None:
            if entries:
                commit(list(entries), StoredFeatures.concatenate(features))
                report.added.extend(entry["path"] for entry in entries)
            if record_failures and failures:
                self._record_failures(failures)
                failures.clear()
            entries.clear()
            features.clear()

        with tqdm(total=len(to_encode), desc="indexing", unit="file", disable=not self.progress) as bar:
            for start in range(0, len(to_encode), self.batch_size):
                decoded: list[_DecodedItem] = []
                for media in to_encode[start : start + self.batch_size]:
                    try:
                        decoded.append(_decode(media, self.processor))
                    except UniTriMError as error:
                        failure = _skipped_dict(SkippedFile(media.path, str(error), media.size, media.mtime_ns))
                        failures.append(failure | {"keep_row": _changed_or_unreadable(media, error)})
                if decoded:
                    features.append(self.encode(decoded))
                    entries.extend(
                        {"path": str(item.media.path), "kind": item.media.kind, "size": item.size,
                         "mtime_ns": item.mtime_ns, "content_sha256": item.content_sha256,
                         "num_frames": int(item.pixel_values.shape[0])}
                        for item in decoded
                    )
                bar.update(min(self.batch_size, len(to_encode) - start))
                if len(entries) >= self.flush_every:
                    flush()
            flush()
        return failures

    def _record_failures(self, failures: list[dict]) -> None:
        """Remember files that failed to decode; one indexed before (changed into something undecodable) loses
        its stale row, unless it failed because it changed during the run or cannot be read (its row stays until
        a later run encodes it)."""
        self.store.delete_paths(entry["path"] for entry in failures if not entry.get("keep_row"))
        self.store.record_skipped(failures)

    @torch.inference_mode()
    def encode(self, decoded: list[_DecodedItem]) -> StoredFeatures:
        """Visual features of decoded items, padded to the index's T frame slots (videos and images in one call
        each)."""
        layout = self.layout
        count = len(decoded)
        video_embeds = torch.zeros(count, layout.embed_dim)
        frame_embeds = torch.zeros(count, layout.num_frames, layout.embed_dim)
        video_mask = torch.zeros(count, layout.num_frames, dtype=torch.bool)
        timestamps = torch.full((count, layout.num_frames), -1.0)
        patch_embeds = torch.zeros(count, layout.num_frames, layout.top_k, layout.embed_dim) if layout.top_k else None
        patch_indices = torch.zeros(count, layout.num_frames, layout.top_k, dtype=torch.long) if layout.top_k else None
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
            features = features.to("cpu")
            slots = features.frame_embeds.shape[1]
            index = torch.tensor(rows)
            video_embeds[index] = features.video_embeds.float()
            frame_embeds[index, :slots] = features.frame_embeds.float()
            video_mask[index, :slots] = features.video_mask.bool()
            if patch_embeds is not None and features.patch_embeds is not None:  # images have no patches
                patch_embeds[index, :slots] = features.patch_embeds.float()
                if features.patch_indices is not None:
                    patch_indices[index, :slots] = features.patch_indices.long()
            for row in rows:
                stamps = decoded[row].timestamps
                timestamps[row, : len(stamps)] = stamps
        return StoredFeatures(video_embeds, frame_embeds, video_mask, timestamps, patch_embeds, patch_indices)


def _why_not_scanned(path: str, prefix: bytes) -> str | None:
    """None when the indexed `path`, missing from the scan of the folder `prefix` names, is gone (or hidden, which
    the scan leaves out): its row may be dropped. Otherwise why it is still there (unreadable, or in a folder
    that could not be listed): a skip, never a removal."""
    relative = os.fsencode(path)[len(prefix) :].split(os.fsencode(os.sep))
    if any(part.startswith(b".") for part in relative):
        return None
    try:
        state = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        return f"cannot be read ({type(error).__name__}: {error}); its row is kept, it is tried again next run"
    if not stat.S_ISREG(state.st_mode):
        return None
    return "its folder could not be listed; its row is kept, it is tried again next run"


def _changed_or_unreadable(media: MediaFile, error: BaseException) -> bool:
    """Whether a file that failed to decode failed for a passing reason: it cannot be read (permissions) or it
    is no longer what the scan saw (rewritten during the run)."""
    if isinstance(error.__cause__, PermissionError):
        return True
    try:
        state = os.stat(media.path)
    except OSError:
        return True
    return (state.st_size, state.st_mtime_ns) != (media.size, media.mtime_ns)


def _skipped_dict(entry: SkippedFile) -> dict:
    return {"path": str(entry.path), "reason": entry.reason, "size": entry.size, "mtime_ns": entry.mtime_ns}


def commit_run(
    store: IndexStore, fragments: list[str], added: list[str], failures: list[dict], read_version: int,
    storage_options: dict | None = None,
) -> None:
    """
    Make one run's fragments visible: first the `skipped` table (files encoded now are no longer skipped; the
    failures are), then one commit of the items table that appends `fragments` and drops the earlier rows of
    `added` and of failed files that lose their row. Killed between the two, the index keeps its previous items
    and the next run encodes those files again.

    Args:
        fragments: from `fragments.write_item_fragments`, written by any number of workers.
        added: paths of the rows in `fragments`.
        failures: dicts of files that failed to decode (`path`, `reason`, `size`, `mtime_ns`, `keep_row`).
        read_version: the items version the run planned from.
    """
    store.forget_skipped(added)
    store.record_skipped(failures)
    dropped = [entry["path"] for entry in failures if not entry.get("keep_row")]
    commit_item_fragments(items_dataset_uri(store), fragments, list(added) + dropped, read_version, storage_options)
    store.refresh()


def index_folder(
    folder: str | os.PathLike, index_dir: str | os.PathLike, model, processor, **indexer_options
) -> IndexingReport:
    """Build or update the index of `folder` in `index_dir`; `indexer_options` are those of `Indexer`."""
    return Indexer(index_dir, model, processor, **indexer_options).index_folder(folder)


__all__ = ["Indexer", "IndexingReport", "commit_run", "index_folder", "processor_settings"]
