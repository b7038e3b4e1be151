"""Logging for the command line, set up in one place.

* Log lines go through ``tqdm.write``: a progress bar on the terminal is cleared before the line is written and
  redrawn after it, so a log line never lands at the end of a half-drawn bar.
* FAISS's loader logs, at INFO, each CPU-specific build it fails to import, with a ``ModuleNotFoundError``
  (``faiss.swigfaiss_avx512``...) that reads like a failure to a user; it is set to WARNING when lexdr is
  imported, before anything imports faiss.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["LOG_FORMAT", "TqdmLoggingHandler", "quiet_noisy_loggers", "setup_logging"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_NOISY = ("faiss.loader",)


class TqdmLoggingHandler(logging.Handler):
    """Writes records to the current ``sys.stderr`` through ``tqdm.write`` (bars cleared, then redrawn)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            from tqdm import tqdm

            # nolock: tqdm's write lock is two locks taken in turn; a Ctrl-C landing between them leaves one
            # held (every later log line then hangs) and tqdm's own `finally` turns the KeyboardInterrupt into
            # an AttributeError/RuntimeError, which logging would swallow: both seen in tests/test_hardening.py.
            tqdm.write(msg, file=sys.stderr, nolock=True)
        except Exception as e:  # noqa: BLE001 - logging must never raise, but a Ctrl-C must get through
            if isinstance(e.__context__, KeyboardInterrupt):
                raise e.__context__ from None
            self.handleError(record)


def quiet_noisy_loggers() -> None:
    """Third-party loggers whose INFO lines look like errors to a user: WARNING and above only."""
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


def setup_logging(verbose: bool = False) -> None:
    """Log INFO (DEBUG with ``verbose``) to stderr through :class:`TqdmLoggingHandler`; safe to call again."""
    quiet_noisy_loggers()
    root = logging.getLogger()
    if not any(isinstance(h, TqdmLoggingHandler) for h in root.handlers):
        handler = TqdmLoggingHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
