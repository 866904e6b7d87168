"""`unitrim index FOLDER ...` and `unitrim search "query" ...`: build an index of a collection, then search it."""

from __future__ import annotations

import argparse
import sys
import time

from ..errors import UniTriMError
from .searcher import KIND_FILTERS


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unitrim", description="Index and search your videos and images with UniTriM.")
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", help="encode every video and image under a folder (new or changed files only)")
    index.add_argument("folder", help="folder to scan recursively")
    index.add_argument("--model", required=True, help="UniTriM model folder or Hub id (with its processor)")
    index.add_argument("--index", required=True, dest="index_dir", help="index folder (created if missing)")
    index.add_argument("--batch-size", type=int, default=8, help="items per forward pass (default 8)")
    index.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default cpu)")
    index.add_argument("--flush-every", type=int, default=64, help="items per shard written to disk (default 64)")
    index.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    search = commands.add_parser("search", help="search an index with a text query")
    search.add_argument("query", help="the text query")
    search.add_argument("--index", required=True, dest="index_dir", help="index folder built by `unitrim index`")
    search.add_argument("--model", required=True, help="the model that built the index")
    search.add_argument("--top-k", type=int, default=10, help="results to return (default 10)")
    search.add_argument("--kind", choices=KIND_FILTERS, default="all", help="video, image or all (default)")
    search.add_argument("--num-candidates", type=int, default=100, help="coarse candidates rescored with MGSA")
    search.add_argument("--coarse", choices=("exact", "faiss"), default="exact", help="coarse stage backend")
    search.add_argument("--device", default=None, help="torch device (default cpu)")
    search.add_argument("--json", dest="json_path", default=None, help="also write the results as JSON here")
    search.add_argument("--html", dest="html_path", default=None, help="also write an HTML page with thumbnails here")
    return parser


def _load(model_path: str, device: str | None):
    from ..modeling_unitrim import UniTriMModel
    from ..processing_unitrim import UniTriMProcessor

    try:
        model = UniTriMModel.from_pretrained(model_path)
        processor = UniTriMProcessor.from_pretrained(model_path)
    except OSError as error:
        raise UniTriMError(f"cannot load a UniTriM model and processor from {model_path!r}: {error}") from error
    return model.to(device or "cpu").eval(), processor


def _run_index(arguments: argparse.Namespace) -> int:
    from .indexer import Indexer

    model, processor = _load(arguments.model, arguments.device)
    indexer = Indexer(
        arguments.index_dir, model, processor, arguments.batch_size, None, arguments.flush_every,
        progress=not arguments.no_progress,
    )
    report = indexer.index_folder(arguments.folder)
    print(
        f"indexed {len(report.added)} new files in {report.seconds:.1f} s ({report.items_per_second:.1f} files/s); "
        f"{report.unchanged} unchanged, {len(report.removed)} removed, {len(indexer.store.items)} in the index"
    )
    if report.skipped:
        print(f"{len(report.skipped)} files not indexed:")
        for entry in report.skipped:
            print(f"  {entry.path}: {entry.reason}")
    return 0


def _run_search(arguments: argparse.Namespace) -> int:
    from .report import format_table, write_html, write_json
    from .searcher import Searcher

    model, processor = _load(arguments.model, arguments.device)
    searcher = Searcher(arguments.index_dir, model, processor, coarse_backend=arguments.coarse)
    start = time.perf_counter()
    query = searcher.encode(arguments.query)
    results = searcher.search(query, arguments.top_k, arguments.kind, arguments.num_candidates)
    elapsed = time.perf_counter() - start
    triplets = "; ".join(" ".join(part for part in triplet if part) for triplet in query.triplets) or "none"
    print(f"query: {arguments.query!r}  triplets: {triplets}  ({len(searcher)} items, {elapsed * 1000:.1f} ms)")
    print(format_table(results))
    if arguments.json_path:
        write_json(arguments.json_path, arguments.query, results, query.triplets)
    if arguments.html_path:
        write_html(arguments.html_path, arguments.query, results)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `unitrim` console script; returns the exit status (2 for a reported error)."""
    arguments = _build_parser().parse_args(argv)
    try:
        if arguments.command == "index":
            return _run_index(arguments)
        return _run_search(arguments)
    except (UniTriMError, ImportError, ValueError) as error:
        print(f"unitrim {arguments.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
