"""`unitrim index --engine ray`: the files of a collection encoded by a pool of model actors on a Ray cluster (one
GPU each where the cluster has GPUs, one CPU each otherwise), every actor writing Lance fragments, one commit of
them all (`fragments`).

The driver plans under the writer lease exactly as a single process does (what is new, changed, gone); Ray Data
spreads the files of the plan over the actors (`map_batches` with an actor pool); an actor decodes and encodes
a batch as `Indexer` does, writes its rows as fragments and returns their descriptions with the files that
failed. A task that fails (an actor killed, a storage error) is run again by Ray; fragments of a failed attempt
are never returned, so never committed. The driver then records the failures in the `skipped` table and commits.
Every node must see the collection at the path the driver scanned (a shared file system) and the model folder
(or Hub id); the index may be an object-store URI.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from ..errors import IndexWriteError
from ..media.media_files import MediaFile
from .indexer import Indexer, IndexingReport, commit_run
from .fragments import items_dataset

# Times Ray runs a batch again whose actor died or whose fragment write failed, and restarts a dead actor, before
# the run fails (Ray Data's default is without end: a file that crashes its decoder would loop forever).
TASK_RETRIES = 3


class FragmentEncoder:
    """
    A Ray Data actor: holds one model and encodes batches of files into Lance fragments of the index.

    Args:
        model_path: the UniTriM model folder or Hub id (with its processor), as the nodes see it.
        index_dir: the index (folder or object-store URI), already created by the driver.
        batch_size: items per forward pass.
        storage_options: LanceDB / Lance storage options of an object-store index.
    """

    def __init__(self, model_path: str, index_dir: str, batch_size: int, storage_options: dict | None) -> None:
        import torch

        from .cli import _load

        device = "cuda" if torch.cuda.is_available() else "cpu"
        model, processor = _load(model_path, device)
        self.indexer = Indexer(index_dir, model, processor, batch_size, progress=False, storage_options=storage_options)
        self.indexer.flush_every = 1 << 30  # one set of fragments per Ray batch
        self.dataset = items_dataset(self.indexer.store)  # opened once: each batch only adds files to it
        self.storage_options = storage_options

    def __call__(self, batch: dict) -> dict:
        """
        Args:
            batch: columns `path` (bytes, file system encoding), `kind`, `size`, `mtime_ns` of N files.

        Returns:
            One row: `fragments`, `added` and `failures`, each a JSON list (fragment descriptions, paths, dicts of
            the files that failed to decode).
        """
        from .fragments import write_item_fragments
        from .index_rows import features_to_table

        indexer = self.indexer
        media = [MediaFile(Path(os.fsdecode(raw)), str(kind), int(size), int(mtime))
                 for raw, kind, size, mtime in zip(batch["path"], batch["kind"], batch["size"], batch["mtime_ns"])]
        fragments: list[str] = []

        def write(entries: list[dict], features) -> None:
            rows = features_to_table(indexer.store._items.schema, indexer.layout, entries, features,
                                     indexer.fingerprint.digest)
            fragments.extend(write_item_fragments(self.dataset, rows, self.storage_options))

        report = IndexingReport()
        failures = indexer._encode_all(media, report, write, record_failures=False)
        return {"fragments": [json.dumps(fragments)], "added": [json.dumps(report.added)],
                "failures": [json.dumps(failures)]}


class RayIndexer(Indexer):
    """
    An `Indexer` whose files are encoded by Ray actors; planning, the writer lease, removals and the `skipped`
    table work as in `Indexer`, and the new rows appear in one commit.

    Args:
        model_path: the model folder or Hub id, loaded here (to plan and create the index) and by every actor.
        workers: model actors (default: the cluster's GPUs, or its CPUs when it has none).
        flush_every: files per Ray task (one set of fragments each), encoded `batch_size` at a time.
        ray_address: the cluster to join (`ray://host:10001`, `auto`); default: `RAY_ADDRESS`, else a local Ray
            instance; an already initialized Ray is used as it is.
        other arguments: as `Indexer`.
    """

    def __init__(
        self, index_dir: str | os.PathLike, model_path: str, model, processor, batch_size: int = 8,
        workers: int | None = None, ray_address: str | None = None, flush_every: int = 64, progress: bool = True,
        storage_options: dict | None = None,
    ) -> None:
        super().__init__(index_dir, model, processor, batch_size, flush_every=flush_every, progress=progress,
                         storage_options=storage_options)
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.model_path = os.fspath(model_path)
        self.workers = workers
        self.ray_address = ray_address
        self.workers_used = 0

    def _encode_plan(self, to_encode: list[MediaFile], report: IndexingReport) -> None:
        if not to_encode:
            return
        import ray
        import ray.data

        if not ray.is_initialized():
            ray.init(address=self.ray_address or os.environ.get("RAY_ADDRESS"), log_to_driver=False)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        workers = self.workers or max(1, gpus or int(resources.get("CPU", 1)))
        self.workers_used = workers
        read_version = self.store.version
        files = ray.data.from_items(
            [{"path": os.fsencode(media.path), "kind": media.kind, "size": media.size, "mtime_ns": media.mtime_ns}
             for media in to_encode],
            override_num_blocks=max(1, min(workers * 4, len(to_encode) // self.flush_every)),
        )
        context = ray.data.DataContext.get_current()
        earlier = context.actor_task_retry_on_errors
        context.actor_task_retry_on_errors = [IndexWriteError]  # a storage error writing fragments: run it again
        try:
            with warnings.catch_warnings():
                # Ray 2.60 deprecates passing actor options as keywords but has no other way to bound the retries.
                warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
                results = files.map_batches(
                    FragmentEncoder,
                    fn_constructor_kwargs={"model_path": self.model_path, "index_dir": os.fspath(self.index_dir),
                                           "batch_size": self.batch_size, "storage_options": self.storage_options},
                    batch_size=self.flush_every, concurrency=workers, num_gpus=1 if gpus else 0,
                    num_cpus=1, max_restarts=TASK_RETRIES, max_task_retries=TASK_RETRIES,
                ).take_all()
        finally:
            context.actor_task_retry_on_errors = earlier
        fragments = [text for row in results for text in json.loads(row["fragments"])]
        added = [path for row in results for path in json.loads(row["added"])]
        failures = [entry for row in results for entry in json.loads(row["failures"])]
        order = {str(media.path): position for position, media in enumerate(to_encode)}
        report.added = sorted(added, key=order.__getitem__)
        commit_run(self.store, fragments, report.added, failures, read_version, self.storage_options)


__all__ = ["FragmentEncoder", "RayIndexer", "TASK_RETRIES"]
