"""On-disk index of a collection: fp16 safetensors shards of visual features plus a JSON manifest.

Layout of an index folder::

    manifest.json                 items, skipped files, shards, model fingerprint, feature layout
    shards/shard-<32 hex digits>.safetensors ...   one per flush, uniquely named
    .lock                         held (fcntl.flock) by a writer for the whole of one update

Each shard holds, for its `n` items (T = frame slots, K = selected patches, D = embedding size):
`video_embeds` (n, D) fp16, `frame_embeds` (n, T, D) fp16, `video_mask` (n, T) uint8, `timestamps` (n, T)
float32 seconds (-1 for padding), and `patch_embeds` (n, T, K, D) fp16 when the model selects patches.
Shards are append-only: the manifest is rewritten (atomically) after each shard, so an interrupted build keeps
every flushed item. Writers (`Indexer`s, in one or several processes) take an exclusive lock on `.lock` and
re-read the manifest from disk under it, so concurrent updates are serialised rather than lost. A changed or deleted file only drops its manifest entry; its old row stays unused in its
shard.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file, save_file

from ..errors import UniTriMError
from .model_fingerprint import ModelFingerprint

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".lock"
SHARD_FOLDER = "shards"
STORAGE_DTYPE = torch.float16
FEATURE_NAMES = ("video_embeds", "frame_embeds", "video_mask", "timestamps", "patch_embeds")


class IndexModelMismatchError(UniTriMError):
    """The index was built by another model (different configuration or weights) than the one given."""

    def __init__(self, index_dir: str | os.PathLike, built_by: ModelFingerprint, given: ModelFingerprint):
        self.index_dir = os.fspath(index_dir)
        self.built_by = built_by
        self.given = given
        what = []
        if built_by.config_sha256 != given.config_sha256:
            what.append("configuration")
        if built_by.weights_sha256 != given.weights_sha256:
            what.append("weights")
        super().__init__(
            f"the index at {self.index_dir!r} was built by {built_by.describe()}, but the model given is "
            f"{given.describe()}: their {' and '.join(what)} differ. Search it with the model that built it, or "
            f"rebuild the index with this model (`unitrim index FOLDER --model PATH --index NEW_DIR`)."
        )


class IndexFormatError(UniTriMError):
    """An index folder is missing, unreadable or has an unexpected layout."""


@dataclass(frozen=True)
class FeatureLayout:
    """Shapes shared by every item of an index: frame slots T, selected patches K (0: none), embedding size D."""

    num_frames: int
    top_k: int
    embed_dim: int


@dataclass
class IndexedItem:
    """One manifest entry: a media file and where its features are stored."""

    path: str
    kind: str
    size: int
    mtime_ns: int
    shard: int
    row: int
    num_frames: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class StoredFeatures:
    """The features of a list of items, in that order, as stored (fp16 / uint8 / float32 on the CPU)."""

    video_embeds: torch.Tensor
    frame_embeds: torch.Tensor
    video_mask: torch.Tensor
    timestamps: torch.Tensor
    patch_embeds: torch.Tensor | None = None

    def take(self, rows: torch.Tensor | list[int]) -> "StoredFeatures":
        rows = torch.as_tensor(rows, dtype=torch.long)
        return StoredFeatures(
            self.video_embeds[rows], self.frame_embeds[rows], self.video_mask[rows], self.timestamps[rows],
            None if self.patch_embeds is None else self.patch_embeds[rows],
        )


@dataclass
class IndexManifest:
    fingerprint: ModelFingerprint
    layout: FeatureLayout
    processor_settings: dict
    items: list[IndexedItem] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    shards: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "model": self.fingerprint.to_dict(),
            "layout": self.layout.__dict__,
            "processor_settings": self.processor_settings,
            "shards": self.shards,
            "items": [item.to_dict() for item in self.items],
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, values: dict) -> "IndexManifest":
        return cls(
            fingerprint=ModelFingerprint.from_dict(values["model"]),
            layout=FeatureLayout(**values["layout"]),
            processor_settings=values.get("processor_settings", {}),
            items=[IndexedItem(**item) for item in values["items"]],
            skipped=list(values.get("skipped", [])),
            shards=list(values["shards"]),
        )


class IndexStore:
    """Reads and appends to one index folder. Use `IndexStore.create` or `IndexStore.open`."""

    def __init__(self, directory: Path, manifest: IndexManifest):
        self.directory = directory
        self.manifest = manifest
        self._lock_depth = 0
        self._lock_file = None

    # ------------------------------------------------------------------ opening
    @staticmethod
    def exists(directory: str | os.PathLike) -> bool:
        return (Path(directory) / MANIFEST_NAME).is_file()

    @classmethod
    def create(
        cls, directory: str | os.PathLike, fingerprint: ModelFingerprint, layout: FeatureLayout, processor_settings: dict
    ) -> "IndexStore":
        """A new empty index in `directory` (created if needed; must not hold an index already)."""
        directory = Path(directory)
        if cls.exists(directory):
            raise IndexFormatError(f"{str(directory)!r} already holds an index; open it instead")
        (directory / SHARD_FOLDER).mkdir(parents=True, exist_ok=True)
        store = cls(directory, IndexManifest(fingerprint, layout, processor_settings))
        store.save_manifest()
        return store

    @classmethod
    def open(cls, directory: str | os.PathLike, fingerprint: ModelFingerprint | None = None) -> "IndexStore":
        """
        Open an existing index.

        Raises:
            IndexFormatError: no manifest, or one this version cannot read.
            IndexModelMismatchError: `fingerprint` is given and differs from the model that built the index.
        """
        directory = Path(directory)
        manifest = cls._read_manifest(directory)
        if fingerprint is not None and not manifest.fingerprint.matches(fingerprint):
            raise IndexModelMismatchError(directory, manifest.fingerprint, fingerprint)
        return cls(directory, manifest)

    @staticmethod
    def _read_manifest(directory: Path) -> IndexManifest:
        manifest_path = directory / MANIFEST_NAME
        if not manifest_path.is_file():
            raise IndexFormatError(f"no index at {str(directory)!r} (missing {MANIFEST_NAME}); build one with `unitrim index`")
        try:
            values = json.loads(manifest_path.read_text())
            if values.get("format_version") != FORMAT_VERSION:
                raise IndexFormatError(
                    f"index {str(directory)!r} has format version {values.get('format_version')!r}; "
                    f"this version of unitrim_hf reads version {FORMAT_VERSION}"
                )
            return IndexManifest.from_dict(values)
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise IndexFormatError(f"unreadable manifest {str(manifest_path)!r}: {error}") from error

    def reload(self) -> None:
        """Re-read the manifest from disk (another writer may have updated it)."""
        self.manifest = self._read_manifest(self.directory)

    @contextlib.contextmanager
    def locked(self) -> Iterator["IndexStore"]:
        """
        Hold the index's exclusive writer lock (blocking until other writers release it) and re-read the
        manifest from disk. Re-entrant within one store; every writing method takes it itself.
        """
        if self._lock_depth == 0:
            self._lock_file = open(self.directory / LOCK_NAME, "a+")
            try:
                _exclusive_lock(self._lock_file)
            except BaseException:
                self._lock_file.close()
                self._lock_file = None
                raise
        self._lock_depth += 1
        try:
            self.reload()
            yield self
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0:
                self._lock_file.close()  # closing the descriptor releases the flock
                self._lock_file = None

    # ------------------------------------------------------------------ writing
    def save_manifest(self) -> None:
        """Write the manifest atomically (a crash leaves the previous manifest intact)."""
        path = self.directory / MANIFEST_NAME
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.manifest.to_dict(), indent=1))
        os.replace(temporary, path)

    def append_shard(self, entries: list[dict], features: StoredFeatures) -> None:
        """
        Write one shard with the features of `entries` (row i = entry i) and register the entries.

        Args:
            entries: dicts with `path`, `kind`, `size`, `mtime_ns`, `num_frames`.
            features: float tensors (n, ...) in any dtype, stored as fp16; `video_mask` (n, T); `timestamps` (n, T).
        """
        layout = self.manifest.layout
        count = len(entries)
        expected = {
            "video_embeds": (count, layout.embed_dim),
            "frame_embeds": (count, layout.num_frames, layout.embed_dim),
            "video_mask": (count, layout.num_frames),
            "timestamps": (count, layout.num_frames),
        }
        if layout.top_k:
            expected["patch_embeds"] = (count, layout.num_frames, layout.top_k, layout.embed_dim)
        tensors = {}
        for name, shape in expected.items():
            value = getattr(features, name)
            if value is None or tuple(value.shape) != shape:
                got = None if value is None else tuple(value.shape)
                raise IndexFormatError(f"shard feature {name!r} must have shape {shape}, got {got}")
            tensors[name] = value.detach().cpu()
        for name in ("video_embeds", "frame_embeds", "patch_embeds"):
            if name in tensors:
                tensors[name] = tensors[name].to(STORAGE_DTYPE).contiguous()
        tensors["video_mask"] = tensors["video_mask"].to(torch.uint8).contiguous()
        tensors["timestamps"] = tensors["timestamps"].to(torch.float32).contiguous()

        # A unique name: a shard written by a concurrent or crashed writer is never overwritten.
        file_name = f"{SHARD_FOLDER}/shard-{uuid.uuid4().hex}.safetensors"
        temporary = self.directory / (file_name + ".tmp")
        save_file(tensors, str(temporary))
        os.replace(temporary, self.directory / file_name)
        with self.locked():
            shard_number = len(self.manifest.shards)
            self.manifest.shards.append({"file": file_name, "num_items": count})
            for row, entry in enumerate(entries):
                self.manifest.items.append(IndexedItem(shard=shard_number, row=row, **entry))
            self.save_manifest()

    def remove_paths(self, paths: set[str]) -> None:
        """Drop the manifest entries (indexed or skipped) of `paths`; their shard rows become unused."""
        with self.locked():
            self.manifest.items = [item for item in self.manifest.items if item.path not in paths]
            self.manifest.skipped = [entry for entry in self.manifest.skipped if entry["path"] not in paths]
            self.save_manifest()

    def record_skipped(self, entries: list[dict]) -> None:
        """Remember files that could not be indexed (`path`, `reason`, `size`, `mtime_ns`)."""
        known = {entry["path"] for entry in entries}
        with self.locked():
            self.manifest.skipped = [entry for entry in self.manifest.skipped if entry["path"] not in known] + entries
            self.save_manifest()

    # ------------------------------------------------------------------ reading
    @property
    def items(self) -> list[IndexedItem]:
        return self.manifest.items

    def _shard(self, number: int) -> dict[str, torch.Tensor]:
        """Read one shard from disk. Not cached: `load_features` reads each shard once, and a cache would keep
        a second copy of every feature next to the loaded columns."""
        path = self.directory / self.manifest.shards[number]["file"]
        try:
            return load_file(str(path))
        except (OSError, ValueError) as error:
            raise IndexFormatError(f"cannot read index shard {str(path)!r}: {error}") from error

    def load_features(self, items: list[IndexedItem] | None = None) -> StoredFeatures:
        """The stored features of `items` (default: every indexed item, in manifest order)."""
        items = self.items if items is None else items
        layout = self.manifest.layout
        if not items:
            embed, frames = layout.embed_dim, layout.num_frames
            return StoredFeatures(
                torch.zeros(0, embed, dtype=STORAGE_DTYPE), torch.zeros(0, frames, embed, dtype=STORAGE_DTYPE),
                torch.zeros(0, frames, dtype=torch.uint8), torch.zeros(0, frames),
                torch.zeros(0, frames, layout.top_k, embed, dtype=STORAGE_DTYPE) if layout.top_k else None,
            )
        positions_by_shard: dict[int, list[int]] = {}
        for position, item in enumerate(items):
            positions_by_shard.setdefault(item.shard, []).append(position)
        rows_of = [item.row for item in items]
        # Fill preallocated columns shard by shard (one gather per shard and column): no concatenated copy.
        merged: dict[str, torch.Tensor] = {}
        for shard_number in sorted(positions_by_shard):
            positions = torch.tensor(positions_by_shard[shard_number])
            rows = torch.tensor([rows_of[position] for position in positions_by_shard[shard_number]])
            shard = self._shard(shard_number)
            for name in FEATURE_NAMES:
                if name not in shard:
                    continue
                if name not in merged:
                    column = shard[name]
                    merged[name] = torch.empty((len(items), *column.shape[1:]), dtype=column.dtype)
                merged[name][positions] = shard[name][rows]
        return StoredFeatures(
            merged["video_embeds"], merged["frame_embeds"], merged["video_mask"], merged["timestamps"],
            merged.get("patch_embeds"),
        )


def _exclusive_lock(handle) -> None:
    """Block until this process holds the exclusive flock of `handle` (no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent writers are not supported there
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


__all__ = [
    "FeatureLayout", "IndexFormatError", "IndexModelMismatchError", "IndexStore", "IndexedItem", "StoredFeatures",
]
