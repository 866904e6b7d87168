"""Run the search app: open the index once with a loaded model, bind the port, answer until stopped."""

from __future__ import annotations

import os
import socket
import sys

from ..display import display_text
from ..index_table import DEFAULT_NPROBES
from ..searcher import Searcher

SERVE_EXTRA = "unitrim serve needs FastAPI and uvicorn: pip install 'unitrim_hf[serve]'"


def require_index(index_dir: str | os.PathLike) -> None:
    """Fail before the model loads when there is no index at `index_dir` (one connection, no rows read).

    Raises:
        IndexFormatError: no index there.
    """
    from ...errors import IndexFormatError
    from ..index_table import IndexStore

    if not IndexStore.exists(index_dir):
        raise IndexFormatError(f"no index at {display_text(index_dir)!r}; build one with `unitrim index`")


def build_app(index_dir: str | os.PathLike, model, processor, nprobes: int = DEFAULT_NPROBES,
              storage_options: dict | None = None):
    """
    The FastAPI app over `index_dir`, searched with `model` and `processor` (already loaded).

    The index is opened and the relevance bank encoded here, so the first query costs what every query costs.

    Raises:
        ImportError: FastAPI is not installed (the `serve` extra).
        IndexFormatError, IndexModelMismatchError: no readable index there, or one built by another model.
    """
    try:
        from .app import create_app
        from .live_index import LiveIndex
    except ImportError as error:
        raise ImportError(f"{SERVE_EXTRA} ({error})") from error
    searcher = Searcher(index_dir, model, processor, nprobes=nprobes, storage_options=storage_options)
    searcher.bank_features()
    return create_app(LiveIndex(searcher, storage_options))


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port` (port 0: a free one).

    Raises:
        OSError: the address cannot be bound (in use, not an address of this machine).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    listener.listen(128)
    return listener


def serve(index_dir: str | os.PathLike, model, processor, host: str = "127.0.0.1", port: int = 7860,
          nprobes: int = DEFAULT_NPROBES) -> int:
    """
    Serve the search app until interrupted; prints `serving N items of INDEX at http://HOST:PORT/` once it
    listens. Returns the exit status (0).

    Raises:
        ImportError, IndexFormatError, IndexModelMismatchError: see `build_app` (before anything listens).
        OSError: the port cannot be bound.
    """
    try:
        import uvicorn
    except ImportError as error:
        raise ImportError(f"{SERVE_EXTRA} ({error})") from error
    app = build_app(index_dir, model, processor, nprobes)
    listener = bind(host, port)
    bound_port = listener.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    print(f"serving {len(app.state.live.searcher)} items of {display_text(index_dir)} at http://{shown_host}:{bound_port}/", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()
    sys.stdout.flush()
    return 0


__all__ = ["SERVE_EXTRA", "bind", "build_app", "require_index", "serve"]
