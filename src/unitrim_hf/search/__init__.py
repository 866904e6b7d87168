"""Index a folder of videos and images once, then search it with text (two-stage: coarse, then MGSA).

The index is a LanceDB database (a folder, or an object-store URI) of Lance tables: see `index_table`.
"""

from .display import display_text
from .explain import Explanation, WordMatch, explain_match
from .index_errors import IndexFormatError, IndexModelMismatchError
from .index_rows import FeatureLayout, IndexedItem, StoredFeatures
from .index_table import IndexStore
from .indexer import Indexer, IndexingReport, index_folder
from .media_files import MediaFile, MediaScan, SkippedFile, classify_file, scan_folder
from .model_fingerprint import ModelFingerprint, model_fingerprint
from .query import EncodedQuery, encode_query
from .report import format_table, render_html, results_to_dict, write_html, write_json
from .searcher import CoarseRecallReport, SearchResult, Searcher

__all__ = [
    "CoarseRecallReport", "EncodedQuery", "Explanation", "FeatureLayout", "IndexFormatError",
    "IndexModelMismatchError", "IndexStore", "IndexedItem", "Indexer", "IndexingReport", "MediaFile", "MediaScan",
    "ModelFingerprint", "SearchResult", "Searcher", "SkippedFile", "StoredFeatures", "WordMatch", "classify_file",
    "display_text", "encode_query", "explain_match", "format_table", "index_folder", "model_fingerprint",
    "render_html", "results_to_dict", "scan_folder", "write_html", "write_json",
]
