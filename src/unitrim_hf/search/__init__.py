"""Index a folder of videos and images once, then search it with text (two-stage: coarse, then MGSA)."""

from .coarse_stage import ExactCoarseIndex, FaissCoarseIndex
from .explain import Explanation, WordMatch, explain_match
from .index_store import FeatureLayout, IndexFormatError, IndexModelMismatchError, IndexStore, StoredFeatures
from .indexer import Indexer, IndexingReport, index_folder
from .media_files import MediaFile, MediaScan, SkippedFile, classify_file, scan_folder
from .model_fingerprint import ModelFingerprint, model_fingerprint
from .query import EncodedQuery, encode_query
from .report import format_table, render_html, results_to_dict, write_html, write_json
from .searcher import CoarseRecallReport, SearchResult, Searcher

__all__ = [
    "CoarseRecallReport", "EncodedQuery", "ExactCoarseIndex", "Explanation", "FaissCoarseIndex", "FeatureLayout",
    "IndexFormatError", "IndexModelMismatchError", "IndexStore", "Indexer", "IndexingReport", "MediaFile",
    "MediaScan", "ModelFingerprint", "SearchResult", "Searcher", "SkippedFile", "StoredFeatures", "WordMatch",
    "classify_file", "encode_query", "explain_match", "format_table", "index_folder", "model_fingerprint",
    "render_html", "results_to_dict", "scan_folder", "write_html", "write_json",
]
