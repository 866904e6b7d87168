"""Index a folder of videos and images once, then search it with text (two-stage: coarse, then MGSA).

The index is a LanceDB database (a folder, or an object-store URI) of Lance tables: see `index_table`. Names
load lazily on first use, so the `unitrim` command parses its arguments before torch or lancedb are imported.
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

# Public name -> the submodule that defines it.
_EXPORTS = {
    "display_text": "display",
    "Explanation": "explain", "WordMatch": "explain", "explain_match": "explain",
    "IndexFormatError": ".errors", "IndexModelMismatchError": ".errors",
    "FeatureLayout": "index_rows", "IndexedItem": "index_rows", "StoredFeatures": "index_rows",
    "IndexStore": "index_table",
    "Indexer": "indexer", "IndexingReport": "indexer", "index_folder": "indexer",
    "MediaFile": ".media.media_files", "MediaScan": ".media.media_files", "SkippedFile": ".media.media_files",
    "classify_file": ".media.media_files", "scan_folder": ".media.media_files",
    "ModelFingerprint": "model_fingerprint", "model_fingerprint": "model_fingerprint",
    "EncodedQuery": "query", "encode_query": "query",
    "format_table": "report", "render_html": "report", "results_to_dict": "report", "write_html": "report",
    "write_json": "report",
    "CoarseRecallReport": "searcher", "SearchResult": "searcher", "Searcher": "searcher",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = sorted(_EXPORTS)
