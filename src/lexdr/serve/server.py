"""Running the app: bind the socket (a port in use is a one-line error), open the run, print the URL, and
serve with uvicorn until Ctrl-C (or SIGTERM), which stops accepting, finishes the requests in flight and
exits 0."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path
from typing import Callable, Sequence

from lexdr.errors import LexdrError
from lexdr.serve.config import ServeConfig

__all__ = ["serve", "open_any", "bind"]

logger = logging.getLogger(__name__)


def _require_stack() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise LexdrError(f"`lexdr serve` needs FastAPI and uvicorn ({e.name} is missing): "
                         "pip install 'lexdr[serve]'") from None


def open_any(paths: Sequence[str | Path], config: ServeConfig):
    """(systems, views): a run folder with its inspection views, or index folders without any."""
    from lexdr.serve.systems import open_indexes, open_run
    from lexdr.serve.views import RunViews

    paths = [Path(p) for p in paths]
    if not paths:
        raise LexdrError("give a run folder (written by `lexdr run`) or index folders (written by `lexdr index`)")
    for p in paths:
        if not p.is_dir():
            raise LexdrError(f"{p}: no such folder; give a run folder or index folders")
    if (paths[0] / "manifest.json").is_file():
        if len(paths) > 1:
            raise LexdrError(f"{paths[0]} is a run folder: serve one run at a time (got {len(paths)} folders)")
        systems = open_run(paths[0], config)
        views = RunViews(paths[0], {l.label: l.passages for l in systems.languages.values()})
        return systems, views
    return open_indexes(paths, config), None


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise LexdrError(f"cannot listen on {host}:{port} ({e.strerror or e}); pick another with --port "
                         "(0: any free port)") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it (Linux)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(paths: Sequence[str | Path], config: ServeConfig, on_ready: Callable[[str], None] | None = None) -> None:
    _require_stack()
    import uvicorn

    from lexdr.serve.app import create_app

    if config.torch_threads is not None:
        import torch

        torch.set_num_threads(config.torch_threads)
    sock = bind(config.host, config.port)  # first: a port in use fails before minutes of loading
    systems = None
    try:
        systems, views = open_any(paths, config)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}/"
        app = create_app(systems, views)
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                                               timeout_graceful_shutdown=10, server_header=False))
        n_sys = sum(len(l.systems) for l in systems.languages.values())
        n_lang = len(systems.languages)
        langs = f"{n_lang} language{'s' if n_lang != 1 else ''}"
        line = f"lexdr serve: {systems.name} ({langs}, {n_sys} systems) at {url}  API docs: {url}docs  (Ctrl-C stops)"
        print(line, flush=True)
        if on_ready is not None:
            on_ready(url)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled, once it has shut down cleanly
            pass
        print("lexdr serve: stopped", file=sys.stderr, flush=True)
    finally:
        sock.close()
        if systems is not None:
            systems.close()
