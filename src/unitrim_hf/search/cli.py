"""`unitrim index FOLDER ...`, `unitrim search "query" ...` and `unitrim serve ...`: build an index of a collection,
then search it (once, or from a long-running app with a search page and a JSON API).

Arguments are parsed and checked before torch, transformers or lancedb are imported, so `--help` and argument
errors answer at once. Under `accelerate launch -m unitrim_hf.search.cli index ...` the files are split over the
processes and one commit makes all their rows visible; with `--engine ray` a pool of Ray actors encodes them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

KIND_CHOICES = ("all", "video", "image")
ENGINE_CHOICES = ("local", "ray")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unitrim", description="Index and search your videos and images with UniTriM.")
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", help="encode every video and image under a folder (new or changed files only)")
    index.add_argument("folder", help="folder to scan recursively")
    index.add_argument("--model", required=True, help="UniTriM model folder or Hub id (with its processor)")
    index.add_argument("--index", required=True, dest="index_dir",
                       help="index folder or object-store URI (s3://..., gs://...; created if missing)")
    index.add_argument("--batch-size", type=_positive_int, default=8, help="items per forward pass (default 8)")
    index.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default cpu, or the "
                       "process's device under accelerate launch)")
    index.add_argument("--flush-every", type=_positive_int, default=64,
                       help="items per commit (default 64; with several processes or --engine ray, items per set of "
                       "fragments, all committed at the end)")
    index.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    index.add_argument("--engine", choices=ENGINE_CHOICES, default="local",
                       help="local: this process (or those of accelerate launch); ray: a pool of model actors on a "
                       "Ray cluster (needs the ray extra)")
    index.add_argument("--ray-address", default=None,
                       help="with --engine ray: the cluster (ray://HOST:10001 or auto; default RAY_ADDRESS, else a "
                       "local Ray instance)")
    index.add_argument("--workers", type=_positive_int, default=None,
                       help="with --engine ray: model actors (default one per GPU of the cluster, else one per CPU)")

    search = commands.add_parser("search", help="search an index with a text query")
    search.add_argument("query", help="the text query")
    search.add_argument("--index", required=True, dest="index_dir", help="index folder or URI built by `unitrim index`")
    search.add_argument("--model", required=True, help="the model that built the index")
    search.add_argument("--top-k", type=_positive_int, default=10, help="results to return (default 10)")
    search.add_argument("--kind", choices=KIND_CHOICES, default="all", help="video, image or all (default)")
    search.add_argument("--num-candidates", type=_positive_int, default=100,
                        help="coarse candidates rescored with MGSA (default 100)")
    search.add_argument("--nprobes", type=_positive_int, default=None,
                        help="IVF partitions visited by the coarse stage of a large index (default 48)")
    search.add_argument("--device", default=None, help="torch device (default cpu)")
    search.add_argument("--json", dest="json_path", default=None, help="also write the results as JSON here")
    search.add_argument("--html", dest="html_path", default=None, help="also write an HTML page with thumbnails here")

    serve = commands.add_parser("serve", help="a search page and JSON API over an index (needs the serve extra)")
    serve.add_argument("--index", required=True, dest="index_dir", help="index folder or URI built by `unitrim index`")
    serve.add_argument("--model", required=True, help="the model that built the index")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")
    serve.add_argument("--nprobes", type=_positive_int, default=None,
                       help="IVF partitions visited by the coarse stage of a large index (default 48)")
    serve.add_argument("--device", default=None, help="torch device (default cpu)")
    return parser


def _check_arguments(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> None:
    """Errors found without loading anything: a query that is not UTF-8 text, a missing folder."""
    if arguments.command == "search":
        try:
            arguments.query.encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(arguments.query).decode("utf-8", "backslashreplace")
            parser.error(f"the query is not valid UTF-8 text: {shown!r}")
        if not arguments.query.strip():
            parser.error("the query is empty")
    elif arguments.command == "index" and not os.path.isdir(arguments.folder):
        from .display import display_text

        parser.error(f"{display_text(arguments.folder)!r} is not an existing folder")
    elif arguments.command == "index" and arguments.engine == "local" and (arguments.ray_address or arguments.workers):
        parser.error("--ray-address and --workers go with --engine ray")
    elif arguments.command == "index" and arguments.engine == "ray" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        parser.error("--engine ray runs from one driver process, not under accelerate launch")


def _load(model_path: str, device):
    from ..errors import UniTriMError
    from ..model_folders import load_model_strictly
    from ..modeling.modeling_unitrim import UniTriMModel
    from ..processing_unitrim import UniTriMProcessor

    try:
        model = load_model_strictly(UniTriMModel, model_path)  # missing or mis-shaped tensors: refused, named
        processor = UniTriMProcessor.from_pretrained(model_path)
    except OSError as error:
        raise UniTriMError(f"cannot load a UniTriM model and processor from {model_path!r}: {error}") from error
    return model.to(device or "cpu").eval(), processor


def _run_index(arguments: argparse.Namespace) -> int:
    from .display import display_text
    from .indexer import Indexer
    from .process_group import SingleProcess, launched_processes

    processes = launched_processes() if arguments.engine == "local" else SingleProcess()
    try:
        model, processor = _load(arguments.model, arguments.device or processes.device)
        progress = not arguments.no_progress and processes.is_main
        if arguments.engine == "ray":
            from .ray_engine import RayIndexer

            indexer = RayIndexer(arguments.index_dir, arguments.model, model, processor, arguments.batch_size,
                                 arguments.workers, arguments.ray_address, arguments.flush_every, progress=progress)
        else:
            indexer = Indexer(
                arguments.index_dir, model, processor, arguments.batch_size, None, arguments.flush_every,
                progress=progress, processes=processes,
            )
        report = indexer.index_folder(arguments.folder)
    finally:
        processes.close()
    if not processes.is_main:
        return 0
    suffix = f" by {processes.world_size} processes" if processes.world_size > 1 else ""
    if arguments.engine == "ray" and indexer.workers_used:
        suffix = f" by {indexer.workers_used} Ray workers"
    print(
        f"indexed {len(report.added)} new or changed files in {report.seconds:.1f} s "
        f"({report.items_per_second:.1f} files/s){suffix}; {report.unchanged} unchanged, {len(report.removed)} "
        f"removed, {len(indexer.store)} in the index"
    )
    if report.skipped:
        print(f"{len(report.skipped)} files not indexed:")
        for entry in report.skipped:
            print(f"  {display_text(entry.path)}: {entry.reason}")
    return 0


def _run_search(arguments: argparse.Namespace) -> int:
    from .index_table import DEFAULT_NPROBES
    from .report import format_table, source_problem, write_html, write_json
    from .searcher import Searcher

    model, processor = _load(arguments.model, arguments.device)
    searcher = Searcher(arguments.index_dir, model, processor, nprobes=arguments.nprobes or DEFAULT_NPROBES)
    searcher.bank_features()  # the relevance baseline (cached per model): start-up, not the query's time
    start = time.perf_counter()
    query = searcher.encode(arguments.query)
    results = searcher.search(query, arguments.top_k, arguments.kind, arguments.num_candidates)
    elapsed = time.perf_counter() - start
    triplets = "; ".join(" ".join(part for part in triplet if part) for triplet in query.triplets) or "none"
    print(f"query: {arguments.query!r}  triplets: {triplets}  ({len(searcher)} items, {elapsed * 1000:.1f} ms)")
    print(format_table(results))
    changed = [result for result in results if source_problem(result) is not None]
    if changed:
        print(f"{len(changed)} of these files changed or disappeared since they were indexed "
              "(run `unitrim index` again)")
    if arguments.json_path:
        write_json(arguments.json_path, arguments.query, results, query.triplets)
    if arguments.html_path:
        write_html(arguments.html_path, arguments.query, results)
    return 0


def _run_serve(arguments: argparse.Namespace) -> int:
    from .index_table import DEFAULT_NPROBES
    from .serve.server import require_index, serve

    require_index(arguments.index_dir)  # before the model loads
    model, processor = _load(arguments.model, arguments.device)
    return serve(arguments.index_dir, model, processor, arguments.host, arguments.port,
                 arguments.nprobes or DEFAULT_NPROBES)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `unitrim` console script; returns the exit status (2 for a reported error)."""
    parser = _build_parser()
    arguments = parser.parse_args(argv)
    _check_arguments(parser, arguments)
    from ..errors import UniTriMError
    from ..model_folders import check_model_folder
    from .display import display_text

    try:
        check_model_folder(arguments.model)  # before torch loads: "no such model folder: PATH"
        if arguments.command == "index":
            return _run_index(arguments)
        if arguments.command == "serve":
            return _run_serve(arguments)
        return _run_search(arguments)
    except (UniTriMError, ImportError, ValueError, OSError) as error:
        message = display_text(str(error).replace("\n", " "))
        print(f"unitrim {arguments.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
