"""``lexdr serve``: the retrievers of a finished run behind a JSON search API, with pages to look inside the
run (side-by-side search, the test set's wins and losses, the mined pseudo labels, the generated queries).

FastAPI and uvicorn are the ``serve`` extra (``pip install 'lexdr[serve]'``); :func:`serve` says so when they
are missing. See docs/serve.md.
"""

from __future__ import annotations

from lexdr.serve.config import ServeConfig

__all__ = ["ServeConfig", "serve", "write_html"]


def write_html(run_dir, out_dir=None, max_queries: int = 100):
    """Static HTML of a run's inspection pages (see :func:`lexdr.serve.pages.write_html`)."""
    from lexdr.serve.pages import write_html as _write

    return _write(run_dir, out_dir, max_queries)


def serve(paths, config: ServeConfig | None = None, on_ready=None) -> None:
    """Serve a run folder (or index folders) until Ctrl-C (see :func:`lexdr.serve.server.serve`)."""
    from lexdr.serve.server import serve as _serve

    _serve(paths, config or ServeConfig(), on_ready=on_ready)
