"""The search index as Lance tables through LanceDB: one row per item, versioned atomic commits.

An index is a LanceDB database (a local folder, or an `s3://` / `gs://` / `az://` URI) with two tables:
`items` (one row per indexed file with its features, see `index_rows`) and `skipped` (files that could not
be indexed, with the reason). Every write is one Lance commit: readers see the previous or the new version,
never a partial one; a killed writer leaves the last committed version. Re-indexing a changed file is a
`merge_insert` keyed by the path, so the old row is replaced only by the commit that adds the new one.
The coarse stage is LanceDB's vector search on `vector` (dot product): exact (flat) on small tables, through
an IVF-PQ index once the table holds `VECTOR_INDEX_MIN_ROWS` rows (rows added since the index was trained are
searched exactly until `optimize` folds them in).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import torch

from .display import display_text, path_bytes, path_from_bytes
from ..errors import IndexFormatError, IndexModelMismatchError, IndexWriteError, UniTriMError
from .index_rows import (
    FORMAT_VERSION,
    ITEM_COLUMNS,
    FeatureLayout,
    IndexedItem,
    StoredFeatures,
    check_vector_checksums,
    features_to_table,
    item_schema,
    schema_metadata,
    table_to_features,
    table_to_items,
)
from .model_fingerprint import ModelFingerprint

ITEMS_TABLE = "items"
SKIPPED_TABLE = "skipped"
# Below this many rows the coarse stage is an exact flat scan; from it on, `ensure_vector_index` builds IVF-PQ.
VECTOR_INDEX_MIN_ROWS = 20_000
# Query-time settings of the IVF-PQ coarse stage (see docs/search.md for the recall they give).
DEFAULT_NPROBES = 48
DEFAULT_REFINE_FACTOR = 10
SKIPPED_SCHEMA = pa.schema([
    pa.field("path", pa.binary(), nullable=False),
    pa.field("path_text", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("size", pa.int64()),
    pa.field("mtime_ns", pa.int64()),
])
# Errors of Lance / Arrow / the file system while reading, reported as `IndexFormatError`; besides these, a
# panic of LanceDB's Rust code on damaged files comes as `pyo3_async_runtimes.RustPanic` (not importable).
_READ_ERRORS = (OSError, ValueError, RuntimeError, pa.ArrowException)
_RUST_PANIC_MODULES = ("pyo3_async_runtimes", "pyo3_runtime")


@dataclass
class CoarseMatches:
    """Rows returned by the coarse stage, best first: their items, scores (dot products) and features."""

    items: list[IndexedItem]
    scores: list[float]
    features: StoredFeatures


def _is_read_error(error: Exception) -> bool:
    """Whether `error` is Lance, Arrow or the file system failing to read an index (not a bug of the caller)."""
    return isinstance(error, _READ_ERRORS) or type(error).__module__ in _RUST_PANIC_MODULES


@contextmanager
def _reading(location: str) -> Iterator[None]:
    """
    The read boundary of the store: an error of Lance, Arrow or the file system inside is raised again as
    [`IndexFormatError`] naming the index ("the index at ... cannot be read: ...").
    """
    try:
        yield
    except IndexFormatError as error:
        if display_text(location) in str(error):
            raise
        raise IndexFormatError(f"the index at {display_text(location)!r} cannot be read: {error}") from error
    except Exception as error:
        if not _is_read_error(error):
            raise
        raise IndexFormatError(f"the index at {display_text(location)!r} cannot be read: {error}") from error


@contextmanager
def _writing(location: str) -> Iterator[None]:
    """
    The write boundary of the store: Lance, Arrow or the file system failing inside (a full disk: Lance's
    "No space left on device") is raised again as [`IndexWriteError`] naming the index. Lance commits a version
    only when all of its data is written, so the index keeps its last committed version.
    """
    try:
        yield
    except (UniTriMError, TypeError, KeyError, AttributeError):
        raise
    except Exception as error:
        if not _is_read_error(error):
            raise
        reason = " ".join(str(error).split())
        raise IndexWriteError(
            f"the index at {display_text(location)!r} could not be written ({reason}); it keeps its last committed "
            "version: free space (or fix the folder's permissions) and run unitrim index again"
        ) from error


def _is_uri(location: str) -> bool:
    return "://" in location


def _sql_bytes(raw: bytes) -> str:
    return f"X'{raw.hex()}'"


def _sql_in(column: str, values: list[bytes]) -> str:
    return f"{column} IN ({', '.join(_sql_bytes(value) for value in values)})"


class IndexStore:
    """
    One index: open with `IndexStore.open` (latest version, or `version=`) or create with `IndexStore.create`
    (`location`: a folder or object-store URI; `storage_options`: passed to `lancedb.connect` for object stores,
    e.g. credentials, region, endpoint).

    Args:
        location: where the index is.
        database, items, skipped: the LanceDB connection and its two tables.
        metadata: the index metadata read from the items table's schema.
        schema: the items table's schema (its feature columns must match the stored layout).
    """

    def __init__(self, location: str, database, items, skipped, metadata: dict, schema: pa.Schema) -> None:
        self.location = location
        self._database = database
        self._items = items
        self._skipped = skipped
        self.metadata = metadata
        try:
            self.fingerprint = ModelFingerprint.from_dict(metadata.get("model"))
            self.layout = _layout_from_metadata(metadata.get("layout"), schema)
            self.processor_settings = _settings_from_metadata(metadata.get("processor_settings", {}))
        except IndexFormatError as error:
            raise IndexFormatError(f"the index at {display_text(location)!r} has corrupt metadata: {error}") from error

    # ------------------------------------------------------------------ opening
    @staticmethod
    def _connect(location: str | os.PathLike, storage_options: dict | None = None):
        import lancedb

        location = os.fspath(location)
        return location, lancedb.connect(location, storage_options=storage_options)

    @classmethod
    def _connect_to_existing(cls, location: str | os.PathLike, storage_options: dict | None = None):
        """(location, connection) when an index is there (its tables listed once), else (location, None)."""
        location = os.fspath(location)
        if not _is_uri(location) and not Path(location).is_dir():
            return location, None
        try:
            _, database = cls._connect(location, storage_options)
            return location, (database if ITEMS_TABLE in database.list_tables().tables else None)
        except Exception as error:
            if not _is_read_error(error):
                raise
            return location, None

    @classmethod
    def exists(cls, location: str | os.PathLike, storage_options: dict | None = None) -> bool:
        return cls._connect_to_existing(location, storage_options)[1] is not None

    @classmethod
    def create(
        cls, location: str | os.PathLike, fingerprint: ModelFingerprint, layout: FeatureLayout,
        processor_settings: dict, storage_options: dict | None = None,
    ) -> "IndexStore":
        """A new empty index at `location` (a folder is created if needed); an existing index is opened instead
        when it was built by the same model, so concurrent creators agree."""
        metadata = {"format_version": FORMAT_VERSION, "model": fingerprint.to_dict(), "layout": layout.__dict__,
                    "processor_settings": processor_settings}
        location, database = cls._connect(location, storage_options)
        try:
            database.create_table(SKIPPED_TABLE, schema=SKIPPED_SCHEMA, exist_ok=True)
            database.create_table(ITEMS_TABLE, schema=item_schema(layout, metadata), exist_ok=True)
        except Exception as error:
            if not _is_read_error(error):
                raise
            raise IndexFormatError(f"cannot create an index at {location!r}: {error}") from error
        return cls._open_tables(location, database, fingerprint)

    @classmethod
    def open(
        cls, location: str | os.PathLike, fingerprint: ModelFingerprint | None = None, version: int | None = None,
        storage_options: dict | None = None,
    ) -> "IndexStore":
        """
        Open an existing index (its latest version, or `version`).

        Raises:
            IndexFormatError: no index there, or one this version cannot read.
            IndexModelMismatchError: `fingerprint` is given and differs from the model that built the index.
        """
        store = cls.open_if_exists(location, fingerprint, version, storage_options)
        if store is None:
            location = os.fspath(location)
            if not _is_uri(location) and (Path(location) / "manifest.json").is_file():
                raise IndexFormatError(
                    f"{display_text(location)!r} holds an index of an earlier unitrim_hf version (safetensors "
                    "shards); build a new one with `unitrim index` into another folder"
                )
            raise IndexFormatError(f"no index at {display_text(location)!r}; build one with `unitrim index`")
        return store

    @classmethod
    def open_if_exists(
        cls, location: str | os.PathLike, fingerprint: ModelFingerprint | None = None, version: int | None = None,
        storage_options: dict | None = None,
    ) -> "IndexStore | None":
        """`open`, or None when there is no index at `location` (one connection, the tables listed once)."""
        location, database = cls._connect_to_existing(location, storage_options)
        if database is None:
            return None
        return cls._open_tables(location, database, fingerprint, version)

    @classmethod
    def _open_tables(
        cls, location: str, database, fingerprint: ModelFingerprint | None, version: int | None = None
    ) -> "IndexStore":
        """The store of the index tables of `database` (see `open` for the errors)."""
        with _reading(location):
            items = database.open_table(ITEMS_TABLE)
            skipped = database.open_table(SKIPPED_TABLE)
            if version is not None:
                items.checkout(version)
            schema = items.schema
            metadata = schema_metadata(schema)
        if not isinstance(metadata, dict):
            raise IndexFormatError(
                f"the index at {display_text(location)!r} has corrupt metadata: it must be an object, got "
                f"{type(metadata).__name__}"
            )
        if metadata.get("format_version") != FORMAT_VERSION:
            raise IndexFormatError(
                f"the index at {display_text(location)!r} has format version {metadata.get('format_version')!r}; "
                f"this version of unitrim_hf reads version {FORMAT_VERSION} (rebuild it with `unitrim index`)"
            )
        store = cls(location, database, items, skipped, metadata, schema)
        if fingerprint is not None and not store.fingerprint.matches(fingerprint):
            raise IndexModelMismatchError(location, store.fingerprint, fingerprint)
        return store

    @property
    def version(self) -> int:
        """The items table version this store reads."""
        return self._items.version

    def pin(self) -> None:
        """Read the current version from now on, whatever later writers commit (a consistent snapshot)."""
        with _reading(self.location):
            self._items.checkout(self._items.version)

    def refresh(self) -> None:
        """Read the latest committed version from now on."""
        with _reading(self.location):
            self._items.checkout_latest()
            self._skipped.checkout_latest()

    # ------------------------------------------------------------------ reading
    def count(self, kind: str | None = None) -> int:
        with _reading(self.location):
            return self._items.count_rows(None if kind is None else f"kind = '{kind}'")

    def __len__(self) -> int:
        return self.count()

    def _unique(self, items: list[IndexedItem], seen: set[str] | None = None) -> list[IndexedItem]:
        """`items`, refused when a path appears twice (among them, or in `seen`, which is updated): the index
        holds one row per path, so a repeated one is a corrupt index, never a result listed twice."""
        seen = set() if seen is None else seen
        for item in items:
            if item.path in seen:
                raise IndexFormatError(
                    f"the index at {display_text(self.location)!r} is corrupt: {item.display_path!r} has more than "
                    "one row (rebuild it with `unitrim index` into a new folder)"
                )
            seen.add(item.path)
        return items

    def _read(self, query) -> pa.Table:
        with _reading(self.location):
            return query.to_arrow()

    @property
    def items(self) -> list[IndexedItem]:
        """Every indexed item (no features), in table order."""
        with _reading(self.location):
            query = self._items.search().select(list(ITEM_COLUMNS)).with_row_id(True).limit(None)
        return self._unique(table_to_items(self._read(query)))

    @property
    def skipped(self) -> list[dict]:
        """Files that could not be indexed: dicts with `path` (str), `reason`, `size`, `mtime_ns`."""
        with _reading(self.location):
            query = self._skipped.search().limit(None)
        table = self._read(query)
        rows = table.to_pylist()
        return [{"path": path_from_bytes(row["path"]), "reason": row["reason"], "size": row["size"],
                 "mtime_ns": row["mtime_ns"]} for row in rows]

    def read_rows(self, row_ids: list[int]) -> tuple[list[IndexedItem], StoredFeatures]:
        """Items and verified features of `row_ids` (of this version), in that order."""
        with _reading(self.location):
            query = self._items.take_row_ids([int(row) for row in row_ids]).with_row_id()
        table = self._read(query)
        found = {row: position for position, row in enumerate(table.column("_rowid").to_pylist())}
        missing = [row for row in row_ids if int(row) not in found]
        if missing:
            raise IndexFormatError(f"no rows {missing[:5]} in version {self.version} of the index")
        table = table.take([found[int(row)] for row in row_ids])
        return table_to_features(table, self.layout)

    def iter_features(self, kind: str | None = None, batch_size: int = 4096) -> Iterator[tuple[list[IndexedItem], StoredFeatures]]:
        """Every item (of `kind`) with its verified features, `batch_size` rows at a time, in table order."""
        seen: set[str] = set()
        with _reading(self.location):
            query = self._items.search().with_row_id(True).limit(None)
            if kind is not None:
                query = query.where(f"kind = '{kind}'")
            batches = iter(query.to_batches(batch_size))
        while (batch := self._next_batch(batches)) is not None:
            items, features = table_to_features(pa.Table.from_batches([batch]), self.layout)
            yield self._unique(items, seen), features

    def _next_batch(self, batches: Iterator[pa.RecordBatch]) -> pa.RecordBatch | None:
        """The next batch of a Lance read (None at the end), read errors as [`IndexFormatError`]."""
        with _reading(self.location):
            return next(batches, None)

    def load_features(self) -> tuple[list[IndexedItem], StoredFeatures]:
        """Every item and its verified features (the whole index in memory)."""
        parts = list(self.iter_features())
        if not parts:
            return [], _empty_features(self.layout)
        return [item for items, _ in parts for item in items], StoredFeatures.concatenate([f for _, f in parts])

    def verify_vectors(self, batch_size: int = 65_536) -> None:
        """
        Check every coarse vector of this version against its checksum (the path and vector columns only, about
        2 KB a row for D = 512): what the coarse stage reads besides the candidates' verified rows.

        Raises:
            IndexFormatError: a vector is corrupt (naming the file), or the table cannot be read.
        """
        with _reading(self.location):
            query = self._items.search().select(["path", "vector", "vector_checksum"]).limit(None)
            batches = iter(query.to_batches(batch_size))
        while (batch := self._next_batch(batches)) is not None:
            check_vector_checksums(pa.Table.from_batches([batch]), self.layout.embed_dim)

    def nearest(
        self, vector, limit: int, kind: str | None = None, nprobes: int = DEFAULT_NPROBES,
        refine_factor: int | None = DEFAULT_REFINE_FACTOR,
    ) -> CoarseMatches:
        """
        The `limit` rows (of `kind`) with the largest dot product with `vector` (D,), with verified features:
        exact on tables without a vector index; with one, IVF-PQ visiting `nprobes` partitions and re-ranking
        `refine_factor * limit` rows by their exact vectors.
        """
        with _reading(self.location):
            query = (self._items.search(list(map(float, vector)), vector_column_name="vector").distance_type("dot")
                     .limit(limit).with_row_id(True))
            if kind is not None:
                query = query.where(f"kind = '{kind}'", prefilter=True)
            query = query.nprobes(nprobes)
            if refine_factor:
                query = query.refine_factor(refine_factor)
        table = self._read(query)
        items, features = table_to_features(table, self.layout)
        self._unique(items)
        scores = (features.video_embeds.float() @ _as_tensor(vector)).tolist()
        return CoarseMatches(items, scores, features)

    def _indices(self) -> dict[str, object]:
        """The table's indices by column."""
        with _reading(self.location):
            return {index.columns[0]: index for index in self._items.list_indices()}

    def has_vector_index(self) -> bool:
        return "vector" in self._indices()

    # ------------------------------------------------------------------ writing
    def upsert(self, entries: list[dict], features: StoredFeatures) -> None:
        """
        Insert or replace (by path) the rows of `entries` with their `features`, in one commit.

        Args:
            entries: dicts with `path`, `kind`, `size`, `mtime_ns`, `content_sha256`, `num_frames`.
            features: row i = entry i (shapes of the index's layout).
        """
        if not entries:
            return
        table = features_to_table(self._items.schema, self.layout, entries, features, self.fingerprint.digest)
        self.upsert_rows(table)

    def upsert_rows(self, rows: pa.Table | pa.RecordBatchReader) -> None:
        """`merge_insert` of ready Arrow rows (from `index_rows.features_to_table`), keyed by path, one commit."""
        with _writing(self.location):
            self._items.merge_insert("path").when_matched_update_all().when_not_matched_insert_all().execute(rows)

    def delete_paths(self, paths: Iterable[str]) -> None:
        """Remove the rows (indexed or skipped) of `paths`, one commit per table (in chunks of 1000 paths)."""
        raw = sorted({path_bytes(path) for path in paths})
        for start in range(0, len(raw), 1000):
            predicate = _sql_in("path", raw[start : start + 1000])
            with _writing(self.location):
                self._items.delete(predicate)
                self._skipped.delete(predicate)

    def record_skipped(self, entries: list[dict]) -> None:
        """Remember files that could not be indexed (`path`, `reason`, `size`, `mtime_ns`); one commit."""
        if not entries:
            return
        rows = pa.Table.from_pylist([
            {"path": path_bytes(entry["path"]), "path_text": display_text(entry["path"]), "reason": entry["reason"],
             "size": int(entry["size"]), "mtime_ns": int(entry["mtime_ns"])} for entry in entries
        ], schema=SKIPPED_SCHEMA)
        with _writing(self.location):
            self._skipped.merge_insert("path").when_matched_update_all().when_not_matched_insert_all().execute(rows)

    def forget_skipped(self, paths: Iterable[str]) -> None:
        raw = sorted({path_bytes(path) for path in paths})
        for start in range(0, len(raw), 1000):
            with _writing(self.location):
                self._skipped.delete(_sql_in("path", raw[start : start + 1000]))

    def ensure_vector_index(self, min_rows: int = VECTOR_INDEX_MIN_ROWS, **ivf_pq_options) -> bool:
        """
        Build the IVF-PQ index of `vector` (dot product) and a bitmap index of `kind` (what the kind filter of the
        coarse stage reads) once the table holds `min_rows` rows; on a table that has them, fold in rows added
        since (`optimize`, which also compacts small fragments), only when there are such rows. Returns whether
        the table has a vector index.

        Args:
            ivf_pq_options: for `lancedb.index.IvfPq` (default: sqrt(rows) partitions, D/8 sub-vectors).
        """
        from lancedb.index import Bitmap, IvfPq

        indices = self._indices()
        if "vector" in indices:
            if any(index.num_unindexed_rows for index in indices.values()):
                self.verify_vectors()  # what the index is about to fold in
                with _writing(self.location):
                    self._items.optimize()
            return True
        rows = self.count()
        if rows < min_rows:
            return False
        self.verify_vectors()  # what the index is trained on and its searches re-rank by
        options = {"num_partitions": max(1, int(rows**0.5)), "num_sub_vectors": max(1, self.layout.embed_dim // 8)}
        options |= ivf_pq_options
        with _writing(self.location):
            self._items.create_index("vector", config=IvfPq(distance_type="dot", **options))
            if "kind" not in indices:
                self._items.create_index("kind", config=Bitmap())
        return True


def _layout_from_metadata(values, schema: pa.Schema) -> FeatureLayout:
    """
    The [`FeatureLayout`] stored as `values`, checked against the list sizes of `schema`'s feature columns.

    Raises:
        IndexFormatError: `values` is not an object, a field is missing or not a non-negative integer, or the
            layout disagrees with the table's columns (naming the field).
    """
    if not isinstance(values, dict):
        raise IndexFormatError(f"the layout must be an object, got {type(values).__name__}")
    sizes = {}
    for name in ("num_frames", "top_k", "embed_dim"):
        value = values.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise IndexFormatError(f"the layout field {name!r} must be a non-negative integer, got {value!r}")
        sizes[name] = value
    layout = FeatureLayout(**sizes)
    try:
        expected = item_schema(layout, {})
        matches = all(schema.field(field.name).type == field.type for field in expected)
    except KeyError:
        matches = False
    if not matches or layout.embed_dim == 0 or layout.num_frames == 0:
        raise IndexFormatError(f"the layout {sizes} does not match the table's columns")
    return layout


def _settings_from_metadata(values) -> dict:
    """The stored processor settings, which must be an object.

    Raises:
        IndexFormatError: `values` is not an object.
    """
    if not isinstance(values, dict):
        raise IndexFormatError(f"the field 'processor_settings' must be an object, got {type(values).__name__}")
    return values


def _as_tensor(vector) -> torch.Tensor:
    return torch.as_tensor(vector, dtype=torch.float32).reshape(-1)


def _empty_features(layout: FeatureLayout) -> StoredFeatures:
    frames, patches, dim = layout.num_frames, layout.top_k, layout.embed_dim
    return StoredFeatures(
        torch.zeros(0, dim, dtype=torch.float16), torch.zeros(0, frames, dim, dtype=torch.float16),
        torch.zeros(0, frames, dtype=torch.uint8), torch.zeros(0, frames),
        torch.zeros(0, frames, patches, dim, dtype=torch.float16) if patches else None,
        torch.zeros(0, frames, patches, dtype=torch.long) if patches else None,
    )


__all__ = ["CoarseMatches", "IndexStore", "VECTOR_INDEX_MIN_ROWS"]
