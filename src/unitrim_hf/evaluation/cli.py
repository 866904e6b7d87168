"""`unitrim-eval`: evaluate a saved UniTriM model (and processor) on a benchmark split, offline.

Example::

    unitrim-eval --model outputs/unitrim-synthetic/best_model --benchmark synthetic --data_dir outputs/synthetic_data
    python -m unitrim_hf.evaluation.cli --model /models/unitrim-msrvtt --benchmark msrvtt --data_dir /data/msrvtt --dsl
    unitrim-eval --model /models/unitrim-msrvtt --benchmark msrvtt --data_dir /data/msrvtt --dsl --qb_norm --sk_norm
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ..benchmark_names import BENCHMARK_NAMES
from ..errors import CheckpointMismatchError
from ..model_folders import exit_if_missing_model_folder, load_model_strictly

# Paragraph length of the DiDeMo protocol (captions of a video merged into one paragraph of at most 64 tokens).
DIDEMO_MAX_LENGTH = 64


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unitrim-eval",
        description="Text-video and text-image retrieval metrics (R@1/5/10, MdR, MnR) of a saved UniTriM model.",
    )
    parser.add_argument("--model", required=True, help="folder (or cached Hub id) holding the model and processor (save_pretrained)")
    parser.add_argument("--processor", default=None, help="processor folder when it is not saved with the model")
    parser.add_argument("--benchmark", required=True, choices=BENCHMARK_NAMES)
    parser.add_argument(
        "--data_dir", required=True,
        help="benchmark folder (synthetic: its settings are read from it; generated there with the main job's "
             "settings if absent)",
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--config_name", default=None, help='MSR-VTT training list "9k" or "7k" (does not change the test split)')
    parser.add_argument("--cache_dir", default=None, help="datasets cache folder for the prepared split")
    parser.add_argument("--frame_cache", default=None, help="frame cache folder made by unitrim_hf.data.prepare_frames")
    post = parser.add_argument_group(
        "test-time post-processing", "reported beside the raw numbers, never instead of them (see docs/evaluation.md)"
    )
    post.add_argument("--dsl", action="store_true", help="also report DSL (dual / inverted softmax) metrics")
    post.add_argument("--dsl_temperature", type=float, default=1.0, help="DSL softmax temperature on logits (default 1)")
    post.add_argument("--qb_norm", action="store_true", help="also report QB-Norm (dynamic inverted softmax, query bank)")
    post.add_argument("--qb_norm_beta", type=float, default=20.0, help="QB-Norm inverse temperature on cosines (default 20)")
    post.add_argument("--qb_norm_k", type=int, default=1, help="QB-Norm: a bank caption's top-k that activates (default 1)")
    post.add_argument("--qb_norm_all_queries", action="store_true",
                      help="QB-Norm: normalize every query (plain inverted softmax), not only the activated ones")
    post.add_argument("--sk_norm", action="store_true", help="also report SK-norm (Sinkhorn-Knopp bias from the query bank)")
    post.add_argument("--sk_norm_iterations", type=int, default=4, help="SK-norm Sinkhorn-Knopp iterations (default 4)")
    post.add_argument("--query_bank_split", default="train",
                      help="split whose captions form the QB-Norm / SK-norm bank (default train; never the evaluated one)")
    post.add_argument("--query_bank_size", type=int, default=None, help="bank captions (default: all distinct ones)")
    parser.add_argument("--output_dir", default=None, help="write metrics.json and metrics.md here")
    parser.add_argument("--max_length", type=int, default=None, help="caption tokens (default: processor's; DiDeMo: 64)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--block_size", type=int, default=256, help="texts/videos per similarity block")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--no_images", action="store_true", help="skip text-image retrieval on keyframes")
    parser.add_argument("--no_per_alignment", action="store_true", help="skip the per-alignment table")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    parser.add_argument("--allow_download", action="store_true", help="let from_pretrained contact the Hub (default: local files only)")
    return parser


def postprocessing_from_arguments(args: argparse.Namespace) -> dict[str, dict]:
    """`{method: settings}` of the post-processing flags (see `parse_postprocessing`)."""
    methods: dict[str, dict] = {}
    if args.dsl:
        methods["dsl"] = {"temperature": args.dsl_temperature}
    if args.qb_norm:
        methods["qb_norm"] = {"beta": args.qb_norm_beta, "k": args.qb_norm_k, "dynamic": not args.qb_norm_all_queries,
                              "bank_size": args.query_bank_size}
    if args.sk_norm:
        methods["sk_norm"] = {"iterations": args.sk_norm_iterations, "bank_size": args.query_bank_size}
    return methods


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; prints the Markdown report and returns 0 (a model folder that does not exist: one line
    on stderr and exit status 2, before torch loads; a checkpoint whose tensors are missing, mis-shaped or
    unexpected, or whose config.json contradicts its weights: one line naming them, exit status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.qb_norm or args.sk_norm) and args.query_bank_split == args.split:
        parser.error(f"--query_bank_split {args.query_bank_split} is the evaluated split: its captions would leak the "
                     "answers; use the training split")
    postprocessing = postprocessing_from_arguments(args)
    exit_if_missing_model_folder("unitrim-eval", (args.model, args.processor))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    from ..modeling.modeling_unitrim import UniTriMModel
    from ..processing_unitrim import UniTriMProcessor
    from ..data import load_benchmark, load_frame_cache
    from .runner import evaluate_retrieval
    from .training_overlap import warn_if_model_trained_on

    local_only = not args.allow_download
    try:
        model = load_model_strictly(UniTriMModel, args.model, local_files_only=local_only)
    except CheckpointMismatchError as error:
        print(f"unitrim-eval: error: {error}", file=sys.stderr)
        return 2
    processor = UniTriMProcessor.from_pretrained(args.processor or args.model, local_files_only=local_only)
    dataset = load_benchmark(args.benchmark, args.data_dir, args.split, config_name=args.config_name, cache_dir=args.cache_dir)
    if Path(args.model).is_dir():
        warn_if_model_trained_on(args.model, dataset["video_path"])
    query_bank = None
    if args.qb_norm or args.sk_norm:
        query_bank = load_benchmark(args.benchmark, args.data_dir, args.query_bank_split, config_name=args.config_name,
                                    cache_dir=args.cache_dir)
    frame_cache = load_frame_cache(args.frame_cache) if args.frame_cache else None
    max_length = args.max_length or (DIDEMO_MAX_LENGTH if args.benchmark == "didemo" else None)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")

    evaluation = evaluate_retrieval(
        model,
        processor,
        dataset,
        frame_cache=frame_cache,
        max_length=max_length,
        batch_size=args.batch_size,
        device=device,
        include_images=not args.no_images,
        postprocessing=postprocessing,
        query_bank=query_bank,
        per_alignment=not args.no_per_alignment,
        block_size=args.block_size,
        show_progress=not args.no_progress,
    )
    evaluation.settings.update(
        model=str(args.model), benchmark=args.benchmark, split=args.split, data_dir=str(Path(args.data_dir))
    )
    print(evaluation.to_markdown())
    if args.output_dir:
        evaluation.save(args.output_dir)
        print(f"metrics written to {Path(args.output_dir) / 'metrics.json'} and metrics.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
