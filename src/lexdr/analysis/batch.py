"""Batch analysis over several cores, for the segmenters whose per-text cost dominates indexing.

The rule-based analyzers (regex + Snowball) run in-process: shipping texts to workers costs more than it saves.
Model-based segmenters (fugashi, Kiwi, PyThaiNLP) run in a process pool: each worker rebuilds the analyzer
from its JSON config (the models are not picklable and load once per worker), texts travel in chunks, and
results come back in input order.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

__all__ = ["analyze_batch", "MIN_PARALLEL_CHARS"]

logger = logging.getLogger(__name__)

# Below this much text a pool's start-up (a fresh interpreter + model load per worker, 1-2 s) is not repaid:
# the slowest segmenter here (fugashi) analyzes about 80k characters a second per core.
MIN_PARALLEL_CHARS = 300_000

_worker_analyzer: Any = None


def _init_worker(from_config: Callable[[dict], Any], config: dict) -> None:
    # ``from_config`` is the analyzer class's own constructor (a classmethod pickles by reference): this module
    # needs no import of the analyzer module, which imports it.
    global _worker_analyzer
    _worker_analyzer = from_config(config)


def _analyze_chunk(texts: list[str]) -> list[list[str]]:
    assert _worker_analyzer is not None
    return _worker_analyzer._analyze_many(texts)


def _context() -> mp.context.BaseContext:
    # forkserver: workers fork from a clean server process, never from a parent that may hold threads
    # (torch, tokenizers) and their locks; spawn where forkserver does not exist.
    methods = mp.get_all_start_methods()
    return mp.get_context("forkserver" if "forkserver" in methods else "spawn")


def analyze_batch(analyzer: Any, texts: list[str], n_jobs: int = 2,
                  chunk_size: int | None = None) -> list[list[str]]:
    """Analyze ``texts`` with ``analyzer``; the i-th result belongs to the i-th text.

    ``n_jobs`` worker processes are used only for slow (model-based) analyzers and at least
    :data:`MIN_PARALLEL_CHARS` characters of text; ``chunk_size`` defaults to about 8 chunks per worker
    (at most 2,000 texts a chunk).
    """
    texts = list(texts)
    if n_jobs <= 1 or not analyzer.slow or len(texts) < 2 * n_jobs or sum(map(len, texts)) < MIN_PARALLEL_CHARS:
        return analyzer._analyze_many(texts)
    if chunk_size is None:
        chunk_size = max(64, min(2000, math.ceil(len(texts) / (n_jobs * 8))))
    chunks = [texts[i : i + chunk_size] for i in range(0, len(texts), chunk_size)]
    logger.debug("analyzing %d texts with %s in %d processes (%d chunks)", len(texts), analyzer.name, n_jobs,
                 len(chunks))
    out: list[list[str]] = []
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=_context(), initializer=_init_worker,
                             initargs=(type(analyzer).from_config, analyzer.to_config())) as pool:
        for part in pool.map(_analyze_chunk, chunks):
            out.extend(part)
    return out
