"""The BM25 stages as file-to-file functions (``lexdr index sparse`` calls :func:`build_index`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from lexdr.analysis import Analyzer
from lexdr.defaults import DEFAULT_DEPTH
from lexdr.formats import iter_corpus, read_queries, write_run
from lexdr.formats.corpus import EmptyTextPolicy
from lexdr.formats.files import SPARSE_INDEX, claim_output_folder
from lexdr.sparse.config import BM25Config
from lexdr.sparse.index import BM25Index

if TYPE_CHECKING:
    from lexdr.executors import Executor, ExecutorSpec

__all__ = ["build_index", "search_index", "bm25_stage"]

logger = logging.getLogger(__name__)


def build_index(corpus_path: str | Path, lang: str, out_dir: str | Path, analyzer: str | Analyzer | None = None,
                k1: float | None = None, b: float | None = None, method: str = "lucene", n_jobs: int = 2,
                empty_text: EmptyTextPolicy | str = EmptyTextPolicy.error,
                max_docs_in_memory: int | None = None, overwrite: bool = False) -> Path:
    """Index the corpus at ``corpus_path`` (BEIR / Mr. TyDi / Pyserini JSONL) into folder ``out_dir``.

    ``analyzer``: a name from ``lexdr.analysis.list_analyzers(lang)`` (default: the language's choice) or an
    :class:`Analyzer`; ``k1``/``b`` default to the language's chosen values. ``max_docs_in_memory``: stream
    the corpus and build out of core, holding at most that many documents at a time
    (:func:`lexdr.sparse.outofcore.build_out_of_core`; the same scores); ``None`` builds in memory.
    ``overwrite``: replace a dense index in ``out_dir`` (refused otherwise, before any work). Returns ``out_dir``.
    """
    t0 = time.perf_counter()
    claim_output_folder(out_dir, SPARSE_INDEX, overwrite=overwrite)
    if max_docs_in_memory is not None:
        from lexdr.sparse.outofcore import build_out_of_core

        return build_out_of_core(iter_corpus(corpus_path, empty_text=empty_text), out_dir, lang=lang,
                                 analyzer=analyzer, k1=k1, b=b, method=method,
                                 max_docs_in_memory=max_docs_in_memory, n_jobs=n_jobs, overwrite=overwrite)
    docs = list(iter_corpus(corpus_path, empty_text=empty_text))
    index = BM25Index.build(docs, lang=lang, analyzer=analyzer, k1=k1, b=b, method=method, n_jobs=n_jobs)
    out = index.save(out_dir, overwrite=overwrite)
    logger.info("%s: %d docs indexed in %.1fs", out, index.num_docs, time.perf_counter() - t0)
    return out


def search_index(index_dir: str | Path, queries_path: str | Path, out_run_path: str | Path, k: int = DEFAULT_DEPTH,
                 n_threads: int = 2, mmap: bool = True) -> Path:
    """Search every query of ``queries_path`` (BEIR JSONL or ``qid<TAB>text`` TSV) and write a TREC run."""
    index = BM25Index.load(index_dir, mmap=mmap)
    queries = read_queries(queries_path)
    run = index.search(queries, k=k, n_threads=n_threads)
    write_run(run, out_run_path, tag=index.run_tag)
    empty = sum(1 for hits in run.values() if not hits)
    if empty:
        logger.warning("%d of %d queries matched no document", empty, len(run))
    return Path(out_run_path)


def bm25_stage(corpus: str | Path, lang: str, queries: Mapping[str, str | Path], out_dir: str | Path,
               config: BM25Config, executor: "Executor | ExecutorSpec | None" = None) -> dict:
    """The pipeline's BM25 stage: index ``corpus`` into ``out_dir/index`` and write ``out_dir/run.<part>.trec``
    for each query file in ``queries`` (part name -> path), ``config.depth`` hits deep. On a distributed
    ``executor`` (``[run] executor = "ray"``) the index is built out of core, its analysis shards as the
    executor's tasks (``max_docs_in_memory`` or its default; the same scores as the in-memory index), and the
    queries are searched in shards of ``SEARCH_SHARD_QUERIES`` as its tasks (the same run files)."""
    from lexdr.executors import resolve_executor

    out = Path(out_dir)
    executor = resolve_executor(executor)
    if config.max_docs_in_memory is None and executor is None:
        index = BM25Index.build(iter_corpus(corpus), lang=lang, **config.index_options())
        index.save(out / "index")
    else:
        from lexdr.sparse.outofcore import DEFAULT_MAX_DOCS_IN_MEMORY, build_out_of_core

        extra = {} if executor is None else {"executor": executor, "n_jobs": executor.cluster.analysis_tasks}
        build_out_of_core(iter_corpus(corpus), out / "index", lang=lang,
                          max_docs_in_memory=config.max_docs_in_memory or DEFAULT_MAX_DOCS_IN_MEMORY,
                          **config.index_options(), **extra)
        index = BM25Index.load(out / "index", mmap=True)  # search reads only the postings it needs
    for part, path in queries.items():
        qs = read_queries(path)
        run = (index.search(qs, k=config.depth) if executor is None
               else _search_on(executor, out / "index", qs, config.depth))
        write_run(run, out / f"run.{part}.trec", tag="bm25")
    return {"vocab": index.vocab_size, "docs": index.num_docs}


# Queries per search task on a distributed executor.
SEARCH_SHARD_QUERIES = 10_000
_worker_index: BM25Index | None = None


def _open_in_worker(index_dir: str) -> None:
    global _worker_index
    _worker_index = BM25Index.load(index_dir, mmap=True)  # memory-mapped: workers share the page cache


def _search_shard(queries: list, k: int) -> dict:
    assert _worker_index is not None
    return _worker_index.search(queries, k=k, n_threads=1)


def _search_on(executor: "Executor", index_dir: Path, queries: list, k: int) -> dict:
    """Search shards of ``SEARCH_SHARD_QUERIES`` queries as the executor's tasks, each worker holding the index
    memory-mapped once; the runs are concatenated in query order (the same run as one search)."""
    shards = ((queries[i:i + SEARCH_SHARD_QUERIES], k) for i in range(0, len(queries), SEARCH_SHARD_QUERIES))
    run: dict = {}
    for part in executor.map_ordered(_search_shard, shards, in_flight=executor.cluster.analysis_tasks,
                                     num_cpus=executor.cluster.analysis_num_cpus, initializer=_open_in_worker,
                                     initargs=(str(index_dir),)):
        run.update(part)
    return run
