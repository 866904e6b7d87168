"""One index row per item: the Arrow schema of the items table, and features <-> rows with a checksum per row.

Columns (T = frame slots, K = selected patches, D = embedding size):

| column | type | content |
|---|---|---|
| `path` | binary | the file's absolute path as file-system bytes (`os.fsencode`), the key of the table |
| `path_text` | string | the path as safe display text (`display.display_text`) |
| `kind` | string | "video" or "image" |
| `size`, `mtime_ns` | int64 | size and modification time of the file that was encoded |
| `content_sha256` | string | SHA-256 of the bytes that were encoded |
| `model_fingerprint` | string | `ModelFingerprint.digest` of the model that encoded them |
| `num_frames` | int32 | real frames (1 for images) |
| `vector` | fixed_size_list<float32, D> | the coarse vector: the stored video embedding (fp16 values) |
| `frame_embeds` | fixed_size_list<float16, T*D> | temporally encoded frame features |
| `video_mask` | fixed_size_list<uint8, T> | 1 for real frames |
| `timestamps` | fixed_size_list<float32, T> | seconds from the stream start (-1 padding, 0 images) |
| `patch_embeds` | fixed_size_list<float16, T*K*D> | selected patch features (only when K > 0) |
| `patch_indices` | fixed_size_list<int32, T*K> | their positions in the frame's patch grid (only when K > 0) |
| `checksum` | int64 | CRC-32 of every column above, verified when the row is read |
| `vector_checksum` | int64 | CRC-32 of the path and the coarse vector, verified before the coarse stage reads them |
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from .display import display_text, path_bytes, path_from_bytes
from ..errors import IndexFormatError

FORMAT_VERSION = 3
METADATA_KEY = b"unitrim_index"
# Columns that are not features, read for listings (no feature bytes).
ITEM_COLUMNS = ("path", "path_text", "kind", "size", "mtime_ns", "content_sha256", "num_frames")
# Columns covered by the checksum, in checksum order.
CHECKED_SCALARS = ("path", "kind", "size", "mtime_ns", "content_sha256", "model_fingerprint", "num_frames")


@dataclass(frozen=True)
class FeatureLayout:
    """Shapes shared by every item of an index: frame slots T, selected patches K (0: none), embedding size D."""

    num_frames: int
    top_k: int
    embed_dim: int

    def feature_columns(self) -> tuple[str, ...]:
        base = ("vector", "frame_embeds", "video_mask", "timestamps")
        return base + (("patch_embeds", "patch_indices") if self.top_k else ())


@dataclass
class StoredFeatures:
    """
    The features of a list of items, in that order, as stored (on the CPU).

    Args:
        video_embeds: (n, D) float16.
        frame_embeds: (n, T, D) float16.
        video_mask: (n, T) uint8.
        timestamps: (n, T) float32 seconds.
        patch_embeds: (n, T, K, D) float16, or None without patch selection.
        patch_indices: (n, T, K) int64, or None.
    """

    video_embeds: torch.Tensor
    frame_embeds: torch.Tensor
    video_mask: torch.Tensor
    timestamps: torch.Tensor
    patch_embeds: torch.Tensor | None = None
    patch_indices: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.video_embeds.shape[0]

    def take(self, rows: torch.Tensor | list[int]) -> "StoredFeatures":
        rows = torch.as_tensor(rows, dtype=torch.long)
        pick = lambda value: None if value is None else value[rows]  # noqa: E731
        return StoredFeatures(*(pick(getattr(self, name)) for name in _FEATURE_FIELDS))

    @classmethod
    def concatenate(cls, parts: list["StoredFeatures"]) -> "StoredFeatures":
        join = lambda name: None if getattr(parts[0], name) is None else torch.cat([getattr(p, name) for p in parts])  # noqa: E731
        return cls(*(join(name) for name in _FEATURE_FIELDS))


_FEATURE_FIELDS = ("video_embeds", "frame_embeds", "video_mask", "timestamps", "patch_embeds", "patch_indices")


@dataclass
class IndexedItem:
    """One indexed file (no features).

    Args:
        path: the absolute path as `str` (undecodable bytes as surrogates: `open(path)` works).
        kind: "video" or "image".
        size, mtime_ns: of the file when it was encoded (a different value now: the file changed since).
        content_sha256: hash of the encoded bytes.
        num_frames: real frames.
        row_id: the row's id in the table version it was read from (`Searcher` results name it).
    """

    path: str
    kind: str
    size: int
    mtime_ns: int
    content_sha256: str = ""
    num_frames: int = 1
    row_id: int = -1

    @property
    def display_path(self) -> str:
        return display_text(self.path)


def item_schema(layout: FeatureLayout, metadata: dict) -> pa.Schema:
    """The items table's schema; `metadata` (format version, model fingerprint, layout, processor settings) is
    kept in the schema as JSON."""
    frames, patches, dim = layout.num_frames, layout.top_k, layout.embed_dim
    fields = [
        pa.field("path", pa.binary(), nullable=False),
        pa.field("path_text", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("mtime_ns", pa.int64()),
        pa.field("content_sha256", pa.string()),
        pa.field("model_fingerprint", pa.string()),
        pa.field("num_frames", pa.int32()),
        pa.field("vector", pa.list_(pa.float32(), dim)),
        pa.field("frame_embeds", pa.list_(pa.float16(), frames * dim)),
        pa.field("video_mask", pa.list_(pa.uint8(), frames)),
        pa.field("timestamps", pa.list_(pa.float32(), frames)),
    ]
    if patches:
        fields += [
            pa.field("patch_embeds", pa.list_(pa.float16(), frames * patches * dim)),
            pa.field("patch_indices", pa.list_(pa.int32(), frames * patches)),
        ]
    fields.append(pa.field("checksum", pa.int64()))
    fields.append(pa.field("vector_checksum", pa.int64()))
    return pa.schema(fields, metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})


def schema_metadata(schema: pa.Schema) -> dict:
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise IndexFormatError("the table has no unitrim index metadata (not an index written by unitrim_hf)")
    try:
        return json.loads(raw)
    except ValueError as error:
        raise IndexFormatError(f"unreadable index metadata: {error}") from error


def _row_checksum(scalars: list, arrays: list[np.ndarray], row: int) -> int:
    checksum = 0
    for value in scalars:
        checksum = zlib.crc32(value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape"), checksum)
    for array in arrays:
        checksum = zlib.crc32(memoryview(np.ascontiguousarray(array[row])).cast("B"), checksum)
    return checksum


def _vector_checksum(raw_path: bytes, vector: np.ndarray) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(vector, dtype=np.float32)).cast("B"), zlib.crc32(raw_path))


def check_vector_checksums(table: pa.Table, embed_dim: int) -> None:
    """
    Check the coarse vectors of Arrow rows holding `path`, `vector` and `vector_checksum`.

    Raises:
        IndexFormatError: a vector does not match its checksum (naming the file).
    """
    try:
        raw_paths = table.column("path").to_pylist()
        vectors = _column_array(table, "vector", (embed_dim,))
        checksums = table.column("vector_checksum").to_pylist()
    except (KeyError, ValueError, pa.ArrowException) as error:
        raise IndexFormatError(f"malformed index rows: {error}") from error
    for row, raw_path in enumerate(raw_paths):
        if _vector_checksum(raw_path, vectors[row]) != checksums[row]:
            raise IndexFormatError(
                f"the search vector of {display_text(path_from_bytes(raw_path))!r} is corrupt (its checksum does not "
                "match); re-index that file or rebuild the index"
            )


def _fixed_list(values: np.ndarray, arrow_type: pa.DataType) -> pa.FixedSizeListArray:
    flat = np.ascontiguousarray(values).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, type=arrow_type.value_type), arrow_type.list_size)


def features_to_table(
    schema: pa.Schema, layout: FeatureLayout, entries: list[dict], features: StoredFeatures, model_digest: str
) -> pa.Table:
    """
    Arrow rows of `entries` (dicts with `path`, `kind`, `size`, `mtime_ns`, `content_sha256`, `num_frames`) and
    their `features` (row i = entry i, any float dtype; stored as in the schema), each with its checksum.

    Raises:
        IndexFormatError: a feature does not have the index's layout.
    """
    count = len(entries)
    frames, patches, dim = layout.num_frames, layout.top_k, layout.embed_dim
    expected = {
        "video_embeds": (count, dim), "frame_embeds": (count, frames, dim), "video_mask": (count, frames),
        "timestamps": (count, frames),
    }
    if patches:
        expected |= {"patch_embeds": (count, frames, patches, dim), "patch_indices": (count, frames, patches)}
    for name, shape in expected.items():
        value = getattr(features, name)
        if value is None or tuple(value.shape) != shape:
            raise IndexFormatError(f"feature {name!r} must have shape {shape}, got {None if value is None else tuple(value.shape)}")
    arrays = {
        "vector": features.video_embeds.detach().cpu().to(torch.float16).float().numpy().reshape(count, -1),
        "frame_embeds": features.frame_embeds.detach().cpu().to(torch.float16).numpy().reshape(count, -1),
        "video_mask": features.video_mask.detach().cpu().to(torch.uint8).numpy().reshape(count, -1),
        "timestamps": features.timestamps.detach().cpu().to(torch.float32).numpy().reshape(count, -1),
    }
    if patches:
        arrays["patch_embeds"] = features.patch_embeds.detach().cpu().to(torch.float16).numpy().reshape(count, -1)
        arrays["patch_indices"] = features.patch_indices.detach().cpu().to(torch.int32).numpy().reshape(count, -1)
    columns: dict[str, list] = {name: [] for name in CHECKED_SCALARS + ("path_text", "checksum", "vector_checksum")}
    ordered = [arrays[name] for name in layout.feature_columns()]
    for row, entry in enumerate(entries):
        values = {
            "path": path_bytes(entry["path"]), "kind": entry["kind"], "size": int(entry["size"]),
            "mtime_ns": int(entry["mtime_ns"]), "content_sha256": entry.get("content_sha256", ""),
            "model_fingerprint": model_digest, "num_frames": int(entry["num_frames"]),
        }
        for name in CHECKED_SCALARS:
            columns[name].append(values[name])
        columns["path_text"].append(display_text(entry["path"]))
        columns["checksum"].append(_row_checksum([values[name] for name in CHECKED_SCALARS], ordered, row))
        columns["vector_checksum"].append(_vector_checksum(values["path"], arrays["vector"][row]))
    data = {name: pa.array(columns[name], type=schema.field(name).type) for name in columns}
    data |= {name: _fixed_list(arrays[name], schema.field(name).type) for name in arrays}
    return pa.Table.from_pydict(data, schema=schema).select(schema.names)


def _column_array(table: pa.Table, name: str, shape: tuple[int, ...]) -> np.ndarray:
    column = table.column(name).combine_chunks()
    values = column.flatten().to_numpy(zero_copy_only=False).reshape(len(table), *shape)
    return values if values.flags.writeable else values.copy()


def table_to_items(table: pa.Table) -> list[IndexedItem]:
    """The `IndexedItem`s of Arrow rows holding (at least) `ITEM_COLUMNS` (and `_rowid` when read with it)."""
    columns = {name: table.column(name).to_pylist() for name in ITEM_COLUMNS}
    row_ids = table.column("_rowid").to_pylist() if "_rowid" in table.column_names else [-1] * len(table)
    return [
        IndexedItem(path_from_bytes(columns["path"][i]), columns["kind"][i], columns["size"][i], columns["mtime_ns"][i],
                    columns["content_sha256"][i] or "", columns["num_frames"][i], row_ids[i])
        for i in range(len(table))
    ]


def table_to_features(table: pa.Table, layout: FeatureLayout, verify: bool = True) -> tuple[list[IndexedItem], StoredFeatures]:
    """
    Items and features of Arrow rows of the items table (all columns), after checking every row's checksum.

    Raises:
        IndexFormatError: a row's checksum does not match its content (naming the file), or a column is
            missing or malformed.
    """
    frames, patches, dim = layout.num_frames, layout.top_k, layout.embed_dim
    try:
        items = table_to_items(table)
        shapes = {"vector": (dim,), "frame_embeds": (frames, dim), "video_mask": (frames,), "timestamps": (frames,),
                  "patch_embeds": (frames, patches, dim), "patch_indices": (frames, patches)}
        arrays = {name: _column_array(table, name, shapes[name]) for name in layout.feature_columns()}
        fingerprints = table.column("model_fingerprint").to_pylist()
        checksums = table.column("checksum").to_pylist()
        raw_paths = table.column("path").to_pylist()
    except (KeyError, ValueError, pa.ArrowException) as error:
        raise IndexFormatError(f"malformed index rows: {error}") from error
    if verify:
        ordered = [arrays[name] for name in layout.feature_columns()]
        for row, item in enumerate(items):
            scalars = [raw_paths[row], item.kind, item.size, item.mtime_ns, item.content_sha256, fingerprints[row],
                       item.num_frames]
            if _row_checksum(scalars, ordered, row) != checksums[row]:
                raise IndexFormatError(
                    f"the index row of {item.display_path!r} is corrupt (its checksum does not match its stored "
                    "features); re-index that file or rebuild the index"
                )
    features = StoredFeatures(
        video_embeds=torch.from_numpy(arrays["vector"].astype(np.float16)),
        frame_embeds=torch.from_numpy(arrays["frame_embeds"]),
        video_mask=torch.from_numpy(arrays["video_mask"]),
        timestamps=torch.from_numpy(arrays["timestamps"]),
        patch_embeds=torch.from_numpy(arrays["patch_embeds"]) if patches else None,
        patch_indices=torch.from_numpy(arrays["patch_indices"].astype(np.int64)) if patches else None,
    )
    return items, features


__all__ = [
    "FORMAT_VERSION", "FeatureLayout", "IndexedItem", "StoredFeatures", "check_vector_checksums", "features_to_table", "item_schema",
    "schema_metadata", "table_to_features", "table_to_items",
]
