"""The search app: a FastAPI application over one `LiveIndex` (model loaded and index opened once).

Routes:
- `GET /`: the search page (`page.PAGE_HTML`).
- `GET /api/search?q=...&kind=all|video|image&top_k=12&num_candidates=100` and `POST /api/search` with the same
  fields as JSON (`query` for `q`): the results as JSON (schema in docs/search.md).
- `GET /api/info`: the index searched (location, version, item count) and the relevance legend.
- `GET /media/{token}`: an indexed file (HTTP range requests served, so a `<video>` can seek).
- `GET /thumbnail/{token}?t=SECONDS&size=PX`: a PNG of the frame on screen at `t` (a video) or the image.

Bad requests are answered 4xx with `{"detail": message}` (an empty or too long query, an unknown kind, a token
that names no file of the index); an index that cannot be read is 503. No route takes a file path from the
request: media are addressed by tokens of the indexed files only.
"""

from __future__ import annotations

import base64
import math
import time

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from ...errors import UniTriMError
from ..display import display_text
from ...modeling.relevance import LEGEND
from ..report import results_to_dict, source_problem
from ..searcher import KIND_FILTERS, SearchResult
from ..thumbnails import thumbnail_png_base64
from .live_index import LiveIndex, media_token
from .page import PAGE_HTML

DEFAULT_TOP_K = 12
MAX_TOP_K = 100
MAX_CANDIDATES = 1000
THUMBNAIL_SIZE = 320
MAX_THUMBNAIL_SIZE = 1024


class SearchRequest(BaseModel):
    """The body of `POST /api/search`."""

    query: str
    kind: str = "all"
    top_k: int = Field(DEFAULT_TOP_K, ge=1, le=MAX_TOP_K)
    num_candidates: int = Field(100, ge=1, le=MAX_CANDIDATES)


def _result_json(result: SearchResult, entry: dict) -> dict:
    """`SearchResult.to_dict` plus what the page needs: the file name, media and thumbnail URLs, and why the file
    cannot be shown (changed or missing since it was indexed), or None."""
    token = media_token(result.path)
    timestamp = result.explanation.best_frame_timestamp if result.explanation is not None else 0.0
    entry.update(
        name=result.display_path.rsplit("/", 1)[-1],
        media_url=f"/media/{token}",
        thumbnail_url=f"/thumbnail/{token}?t={timestamp:.6f}",
        source_problem=source_problem(result),
    )
    return entry


def create_app(live: LiveIndex, title: str = "unitrim search") -> FastAPI:
    """
    The app answering queries from `live`.

    Args:
        live: the index and model, opened once.
        title: the app's title (OpenAPI docs at `/docs`).
    """
    app = FastAPI(title=title)
    app.state.live = live

    @app.exception_handler(UniTriMError)
    async def library_error(request: Request, error: UniTriMError) -> JSONResponse:
        return JSONResponse({"detail": display_text(str(error))}, status_code=503)

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, error: ValueError) -> JSONResponse:
        return JSONResponse({"detail": display_text(str(error))}, status_code=400)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE_HTML

    @app.get("/api/info")
    def info() -> dict:
        return {"index": display_text(live.searcher.store.location), "version": live.version,
                "items": len(live.searcher), "legend": LEGEND}

    def answer(query: str, kind: str, top_k: int, num_candidates: int) -> dict:
        if kind not in KIND_FILTERS:
            raise ValueError(f"kind must be one of {', '.join(KIND_FILTERS)}, got {kind!r}")
        if not query.strip():
            raise ValueError("the query is empty")
        started = time.perf_counter()
        results, triplets, version, items = live.search(query, top_k, kind, num_candidates)
        payload = results_to_dict(query, results, triplets)
        payload["results"] = [_result_json(result, entry) for result, entry in zip(results, payload["results"])]
        payload.update(kind=kind, version=version, items=items, legend=LEGEND,
                       elapsed_ms=(time.perf_counter() - started) * 1000)
        return payload

    @app.get("/api/search")
    def search_get(
        q: str = Query(..., description="the text query"),
        kind: str = Query("all", description="all, video or image"),
        top_k: int = Query(DEFAULT_TOP_K, ge=1, le=MAX_TOP_K),
        num_candidates: int = Query(100, ge=1, le=MAX_CANDIDATES),
    ) -> dict:
        return answer(q, kind, top_k, num_candidates)

    @app.post("/api/search")
    def search_post(request: SearchRequest) -> dict:
        return answer(request.query, request.kind, request.top_k, request.num_candidates)

    def indexed_file(token: str):
        found = live.file(token)
        if found is None:
            return None, JSONResponse({"detail": "no file of the index has this token"}, status_code=404)
        if not _readable(found.path):
            return None, JSONResponse({"detail": f"{found.display_path!r} is no longer readable"}, status_code=410)
        return found, None

    @app.get("/media/{token}")
    def media(token: str):
        found, refusal = indexed_file(token)
        return refusal or FileResponse(found.path, filename=found.display_path.rsplit("/", 1)[-1])

    @app.get("/thumbnail/{token}")
    def thumbnail(token: str, t: float = Query(0.0, ge=0.0), size: int = Query(THUMBNAIL_SIZE, ge=16, le=MAX_THUMBNAIL_SIZE)):
        found, refusal = indexed_file(token)
        if refusal is not None:
            return refusal
        if not math.isfinite(t):
            raise ValueError(f"t must be a finite number of seconds, got {t}")
        try:
            encoded = thumbnail_png_base64(found.path, found.kind, t, size)
        except Exception as error:  # noqa: BLE001 - any decoding failure of one file is that file's 422
            return JSONResponse({"detail": f"{found.display_path!r} cannot be decoded: {type(error).__name__}: "
                                 f"{display_text(str(error))}"}, status_code=422)
        return Response(base64.b64decode(encoded), media_type="image/png",
                        headers={"Cache-Control": "max-age=3600"})

    return app


def _readable(path: str) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


__all__ = ["SearchRequest", "create_app"]
