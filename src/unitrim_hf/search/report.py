"""Search results as a text table, JSON, or a self-contained HTML page with keyframe thumbnails."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from .atomic_write import write_text_atomically
from .display import display_text
from ..modeling.relevance import LEGEND
from .searcher import SearchResult
from .thumbnails import thumbnail_png_base64

SOURCE_CHANGED = "the file changed since it was indexed (run `unitrim index` again)"


def _words(result: SearchResult) -> str:
    if result.explanation is None:
        return ""
    return ", ".join(word.word for word in result.explanation.top_words)


def _triplet(result: SearchResult) -> str:
    if result.explanation is None or result.explanation.best_triplet is None:
        return ""
    return " ".join(part for part in result.explanation.best_triplet if part)


def _frame(result: SearchResult) -> str:
    if result.explanation is None:
        return ""
    return f"#{result.explanation.best_frame} @ {result.explanation.best_frame_timestamp:.2f}s"


def relevance_text(result: SearchResult) -> str:
    """The result's relevance label with its z-score, e.g. "match (z 5.2)"; "" when it was not computed."""
    if not result.relevance_label:
        return ""
    z = "" if result.relevance != result.relevance else f" (z {result.relevance:.1f})"
    return result.relevance_label + z


def format_table(results: list[SearchResult]) -> str:
    """A plain-text table: rank, score, relevance, kind, best frame, words, triplet, per-alignment scores, path
    (with the relevance legend under it)."""
    alignment_names = list(dict.fromkeys(name for result in results for name in result.alignment_scores))
    header = ["rank", "score", "relevance", "kind", "best frame", "words", "triplet"] + alignment_names + ["path"]
    rows = [
        [str(r.rank), f"{r.score:.4f}", relevance_text(r), r.kind, _frame(r), _words(r), _triplet(r)]
        + [f"{r.alignment_scores[name]:.4f}" if name in r.alignment_scores else "-" for name in alignment_names]
        + [r.display_path]
        for r in results
    ]
    widths = [max(len(line[column]) for line in [header] + rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header] + rows]
    if not results:
        lines.append("(no results)")
    elif any(result.relevance_label for result in results):
        lines.append(LEGEND)
    return "\n".join(lines)


def results_to_dict(query: str, results: list[SearchResult], triplets: list | None = None) -> dict:
    """JSON-ready dict: the query, its parsed triplets and every result with its explanation."""
    if triplets is None and results and results[0].explanation is not None:
        triplets = results[0].explanation.triplets
    return {
        "query": query,
        "query_triplets": [list(triplet) for triplet in triplets or []],
        "results": [result.to_dict() for result in results],
    }


def write_json(path: str | os.PathLike, query: str, results: list[SearchResult], triplets: list | None = None) -> Path:
    """Write `results_to_dict` as JSON atomically (an earlier file at `path` is untouched on any failure)."""
    return write_text_atomically(path, json.dumps(results_to_dict(query, results, triplets), indent=2))


def source_problem(result: SearchResult) -> str | None:
    """Why the indexed file cannot be shown as it was indexed (missing, or replaced since), or None."""
    try:
        status = os.stat(result.path)
    except OSError as error:
        return f"the file is no longer readable ({error.strerror or error})"
    if result.size >= 0 and (status.st_size, status.st_mtime_ns) != (result.size, result.mtime_ns):
        return SOURCE_CHANGED
    return None


def _thumbnail(result: SearchResult) -> str:
    """The card's image, or a note why there is none (a missing, replaced or undecodable file never fails the
    page: decoding errors of any type, e.g. Pillow's `DecompressionBombError`, become the note)."""
    problem = source_problem(result)
    if problem is None:
        timestamp = result.explanation.best_frame_timestamp if result.explanation is not None else 0.0
        try:
            encoded = thumbnail_png_base64(result.path, result.kind, timestamp)
            return f'<img alt="best frame" src="data:image/png;base64,{encoded}">'
        except Exception as error:  # noqa: BLE001 - one bad file only loses its thumbnail
            problem = f"{type(error).__name__}: {error}"
    return f'<div class="missing">thumbnail unavailable: {html.escape(problem)}</div>'


def render_html(query: str, results: list[SearchResult], thumbnails: bool = True) -> str:
    """A self-contained HTML page (inline CSS, thumbnails as base64 PNG data URIs)."""
    escape = html.escape
    triplets = results[0].explanation.triplets if results and results[0].explanation is not None else []
    cards = []
    for result in results:
        image = _thumbnail(result) if thumbnails else ""
        alignments = "".join(
            f"<tr><td>{escape(name)}</td><td>{value:.4f}</td></tr>" for name, value in result.alignment_scores.items()
        )
        words = ", ".join(
            f"{escape(word.word)} ({word.score:.3f})" for word in (result.explanation.top_words if result.explanation else [])
        )
        triplet_score = (
            f" ({result.explanation.best_triplet_score:.3f})"
            if result.explanation is not None and result.explanation.best_triplet_score is not None else ""
        )
        cards.append(
            f'<div class="result"><div class="thumb">{image}</div><div class="info">'
            f"<h2>{result.rank}. {escape(result.display_path.rsplit('/', 1)[-1])}</h2>"
            f'<p class="path">{escape(result.display_path)} ({escape(result.kind)})</p>'
            f"<p>score <b>{result.score:.4f}</b>, coarse {result.coarse_score:.4f}</p>"
            f'<p class="relevance">relevance: {escape(relevance_text(result))}</p>'
            f"<p>best frame: {escape(_frame(result))}</p>"
            f"<p>matching words: {words}</p>"
            f"<p>matching triplet: {escape(_triplet(result))}{triplet_score}</p>"
            f'<table class="alignments">{alignments}</table></div></div>'
        )
    triplet_text = "; ".join(escape(" ".join(part for part in triplet if part)) for triplet in triplets) or "none"
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
        f"<title>unitrim search: {escape(display_text(query))}</title><style>"
        "body{font-family:sans-serif;margin:2em}.result{display:flex;gap:1em;border-bottom:1px solid #ccc;"
        "padding:1em 0}.thumb img{max-width:160px}.path{color:#666;font-size:small}.missing{color:#a00}"
        "table.alignments td{padding:0 .6em;font-size:small}</style></head><body>"
        f"<h1>{escape(display_text(query))}</h1><p>parsed triplets: {triplet_text}</p>"
        f'<p class="path">{escape(LEGEND)}</p>'
        + ("".join(cards) or "<p>no results</p>")
        + "</body></html>"
    )


def write_html(path: str | os.PathLike, query: str, results: list[SearchResult], thumbnails: bool = True) -> Path:
    """Write `render_html` atomically (an earlier file at `path` is untouched on any failure)."""
    return write_text_atomically(path, render_html(query, results, thumbnails))


__all__ = ["format_table", "relevance_text", "render_html", "results_to_dict", "write_html", "write_json"]
