"""`unitrim serve`: a long-running search app (FastAPI and one static page) over an index, with a JSON API.

Needs the `serve` extra (`pip install "unitrim_hf[serve]"`: fastapi, uvicorn). See docs/search.md.
"""

from __future__ import annotations

from ...lazy_exports import lazy_exports

_EXPORTS = {
    "create_app": "app", "SearchRequest": "app",
    "LiveIndex": "live_index", "media_token": "live_index",
    "build_app": "server", "serve": "server",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = sorted(_EXPORTS)
