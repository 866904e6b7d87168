"""Lance's own protocol for many writers of one index: every worker writes data fragments (files no version
refers to yet), one process commits them all in a single transaction.

A worker calls `write_item_fragments` with its rows and hands the returned JSON descriptions to the committer;
the committer calls `commit_item_fragments`, which deletes the earlier rows of the same paths and appends the
new fragments in one `LanceOperation.Update`, checked against the version the run planned from
(`read_version`): when another writer committed in between, the commit is refused (an append of the same paths
would store them twice) and nothing of this run becomes visible. Until that commit the fragments are invisible:
a worker or a committer killed at any point leaves the index at its previous version (killed during the commit:
that one or the new one, whole), and the files it wrote are unreferenced data that Lance's cleanup of old
versions deletes once they are 7 days old.
"""

from __future__ import annotations

import pyarrow as pa

from ..errors import IndexWriteError
from .display import display_text, path_bytes
from .index_table import IndexStore, _writing

# Paths looked up per scan of the dataset (the SQL predicate stays short).
_PATHS_PER_PREDICATE = 1000


def items_dataset(store: IndexStore):
    """The Lance dataset (`lance.LanceDataset`) behind the index's items table, at the store's version."""
    return store._items.to_lance()


def items_dataset_uri(store: IndexStore) -> str:
    """The URI of the Lance dataset behind the index's items table (a folder, or an object-store URI)."""
    return items_dataset(store).uri


def _index_location(uri: str) -> str:
    """The index (the LanceDB database) that the items dataset at `uri` belongs to, as messages name it."""
    suffix = "/items.lance"
    return uri[: -len(suffix)] if uri.rstrip("/").endswith(suffix) else uri


def _dataset(uri: str, version: int | None, storage_options: dict | None):
    import lance

    return lance.dataset(uri, version=version, storage_options=storage_options)


def write_item_fragments(
    dataset, rows: pa.Table, storage_options: dict | None = None, max_rows_per_file: int = 1 << 20
) -> list[str]:
    """
    Write `rows` (the items table's schema, from `index_rows.features_to_table`) as data fragments of the items
    dataset (its URI, or the `lance.LanceDataset` of `items_dataset`, which saves opening it again), committing
    nothing.

    Returns:
        One JSON text per fragment (`lance.fragment.FragmentMetadata.to_json`), for `commit_item_fragments`.
    """
    from lance.fragment import write_fragments

    if not len(rows):
        return []
    uri = dataset if isinstance(dataset, str) else dataset.uri
    with _writing(_index_location(uri)):
        dataset = _dataset(uri, None, storage_options) if isinstance(dataset, str) else dataset
        fragments = write_fragments(rows, dataset, schema=dataset.schema, mode="append",
                                    max_rows_per_file=max_rows_per_file, storage_options=storage_options)
    return [_as_text(fragment.to_json()) for fragment in fragments]


def _as_text(description) -> str:
    import json

    return description if isinstance(description, str) else json.dumps(description)


def _paths_by_fragment(dataset, raw_paths: list[bytes]) -> dict[int, list[bytes]]:
    """The paths among `raw_paths` that have a row in `dataset`, by the id of the fragment holding the row."""
    found: dict[int, list[bytes]] = {}
    for start in range(0, len(raw_paths), _PATHS_PER_PREDICATE):
        chunk = raw_paths[start : start + _PATHS_PER_PREDICATE]
        table = dataset.to_table(columns=["path"], filter=_path_predicate(chunk), with_row_address=True)
        for raw, address in zip(table.column("path").to_pylist(), table.column("_rowaddr").to_pylist()):
            found.setdefault(address >> 32, []).append(raw)
    return found


def _path_predicate(raw_paths: list[bytes]) -> str:
    return "path IN (" + ", ".join(f"X'{raw.hex()}'" for raw in raw_paths) + ")"


def commit_item_fragments(
    uri: str, fragments: list[str], replaced_paths: list[str], read_version: int,
    storage_options: dict | None = None,
) -> int:
    """
    Make `fragments` visible and drop the earlier rows of `replaced_paths` (the paths of the new rows, and of
    files whose rows go without a replacement), in one commit on top of `read_version`.

    Args:
        uri: the items dataset (`items_dataset_uri`).
        fragments: JSON descriptions from `write_item_fragments`, of any number of workers.
        replaced_paths: paths whose rows at `read_version` are deleted by the same commit.
        read_version: the version the run planned from; the commit is refused when the dataset has moved past it
            (checked before, and by Lance's conflict check during the commit).

    Returns:
        The new version (`read_version` itself when there is nothing to commit).

    Raises:
        IndexWriteError: the commit conflicts with a concurrent writer, or the storage fails; the index keeps
            its last committed version.
    """
    import lance
    from lance import LanceOperation
    from lance.commit import CommitConflictError
    from lance.fragment import FragmentMetadata

    new_fragments = [FragmentMetadata.from_json(text) for text in fragments]
    raw_paths = sorted({path_bytes(path) for path in replaced_paths})
    with _writing(_index_location(uri)):
        dataset = _dataset(uri, read_version, storage_options)
        removed: list[int] = []
        updated = []
        for fragment_id, held in sorted(_paths_by_fragment(dataset, raw_paths).items()):
            metadata = dataset.get_fragment(fragment_id).delete(_path_predicate(held))  # None: no row left
            if metadata is None:
                removed.append(fragment_id)
            else:
                updated.append(metadata)
        if not new_fragments and not removed and not updated:
            return read_version
        if removed or updated:
            operation = LanceOperation.Update(removed_fragment_ids=removed, updated_fragments=updated,
                                              new_fragments=new_fragments)
        else:
            operation = LanceOperation.Append(new_fragments)
        if _dataset(uri, None, storage_options).version != read_version:
            raise _changed_meanwhile(uri, read_version)
        try:
            committed = lance.LanceDataset.commit(uri, operation, read_version=read_version,
                                                  storage_options=storage_options, max_retries=0)
        except CommitConflictError as error:
            raise _changed_meanwhile(uri, read_version) from error
    return committed.version


def _changed_meanwhile(uri: str, read_version: int) -> IndexWriteError:
    return IndexWriteError(
        f"the index at {display_text(_index_location(uri))!r} was changed by another writer since version "
        f"{read_version}, which this run planned from; nothing of this run was committed: run unitrim index again"
    )


__all__ = ["commit_item_fragments", "items_dataset", "items_dataset_uri", "write_item_fragments"]
