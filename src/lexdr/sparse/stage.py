"""The BM25 stages as file-to-file functions: :func:`sparse_index_stage` (``lexdr index sparse``) and
:func:`bm25_stage` (the pipeline's: the index, then each query file's run). :func:`build_index` and
:func:`search_index` are the library calls for one index and one query file outside a stage."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
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
    from lexdr.executors import Executor

__all__ = ["build_index", "search_index", "SparseIndexInputs", "sparse_index_stage", "BM25Inputs", "bm25_stage"]

logger = logging.getLogger(__name__)


def build_index(corpus_path: str | Path, lang: str, out_dir: str | Path, analyzer: str | Analyzer | None = None,
                k1: float | None = None, b: float | None = None, method: str = "lucene", n_jobs: int = 2,
                empty_text: EmptyTextPolicy | str = EmptyTextPolicy.error,
                max_docs_in_memory: int | None = None, overwrite: bool = False,
                executor: "Executor | None" = None) -> Path:
    """Index the corpus at ``corpus_path`` (BEIR / Mr. TyDi / Pyserini JSONL) into folder ``out_dir``.

    ``analyzer``: a name from ``lexdr.analysis.list_analyzers(lang)`` (default: the language's choice) or an
    :class:`Analyzer`; ``k1``/``b`` default to the language's chosen values. ``max_docs_in_memory``: stream
    the corpus and build out of core, holding at most that many documents at a time
    (:func:`lexdr.sparse.outofcore.build_out_of_core`; the same scores); ``None`` builds in memory. A
    distributed ``executor`` (:mod:`lexdr.executors`) always builds out of core (``max_docs_in_memory`` or its
    default), the analysis shards as its tasks. ``overwrite``: replace a dense index in ``out_dir`` (refused
    otherwise, before any work). Returns ``out_dir``.
    """
    t0 = time.perf_counter()
    claim_output_folder(out_dir, SPARSE_INDEX, overwrite=overwrite)
    distributed = executor is not None and executor.distributed
    if max_docs_in_memory is not None or distributed:
        from lexdr.sparse.outofcore import DEFAULT_MAX_DOCS_IN_MEMORY, DuplicateDocIdError, build_out_of_core

        workers = {"executor": executor, "n_jobs": executor.cluster.analysis_tasks} if distributed \
            else {"n_jobs": n_jobs}
        # the build finds duplicate ids by sorting them (no set of every id as the corpus streams by); one found,
        # the corpus is read again for the file:line error iter_corpus gives
        docs = iter_corpus(corpus_path, empty_text=empty_text, check_duplicates=False)
        try:
            return build_out_of_core(docs, out_dir, lang=lang, analyzer=analyzer, k1=k1, b=b, method=method,
                                     max_docs_in_memory=max_docs_in_memory or DEFAULT_MAX_DOCS_IN_MEMORY,
                                     overwrite=overwrite, **workers)
        except DuplicateDocIdError:
            for _ in iter_corpus(corpus_path, empty_text=empty_text):
                pass
            raise
    docs = iter_corpus(corpus_path, empty_text=empty_text)
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


@dataclass(frozen=True)
class SparseIndexInputs:
    """What :func:`sparse_index_stage` reads: the corpus and its language (which picks the analyzer and, unless
    the config sets them, k1 and b)."""

    corpus: Path
    lang: str


def sparse_index_stage(inputs: SparseIndexInputs, config: BM25Config, out_dir: str | Path,
                       executor: "Executor") -> dict:
    """Index a corpus with BM25: the stage of ``lexdr index sparse`` and the index half of :func:`bm25_stage`.

    ==================  ======  =====================================================================
    file                r / w   format
    ==================  ======  =====================================================================
    ``inputs.corpus``   read    JSONL (BEIR ``corpus.jsonl``, Mr. TyDi / Pyserini; ``.gz`` too)
    ``out_dir/``        write   a BM25 index folder (``config.json`` with ``kind = "sparse"``, bm25s
                                arrays as ``.npy``, ``doc_ids.json``), swapped in atomically
    ==================  ======  =====================================================================

    Built by :func:`build_index`: in memory, unless ``config.max_docs_in_memory`` is set or the executor is
    distributed (then out of core, its analysis shards as the executor's tasks); the same scores either way.
    Returns the vocabulary and document counts."""
    build_index(inputs.corpus, inputs.lang, out_dir, max_docs_in_memory=config.max_docs_in_memory, executor=executor,
                **config.index_options())
    index = BM25Index.load(out_dir, mmap=True)
    return {"vocab": index.vocab_size, "docs": index.num_docs}


@dataclass(frozen=True)
class BM25Inputs:
    """What :func:`bm25_stage` reads: the corpus, its language, and the query files to search (part name ->
    path, e.g. ``{"test": queries.test.tsv}``)."""

    corpus: Path
    lang: str
    queries: Mapping[str, Path] = field(default_factory=dict)


def bm25_stage(inputs: BM25Inputs, config: BM25Config, out_dir: str | Path, executor: "Executor") -> dict:
    """The pipeline's BM25 stage: :func:`sparse_index_stage` into ``out_dir/index``, then
    :func:`lexdr.retrieval.search_stage`'s search of each query file, ``config.depth`` hits deep.

    ==========================  ======  ==========================================================
    file                        r / w   format
    ==========================  ======  ==========================================================
    ``inputs.corpus``           read    corpus JSONL
    each of ``inputs.queries``  read    topics TSV or BEIR ``queries.jsonl``
    ``out_dir/index/``          write   the BM25 index folder (:func:`sparse_index_stage`)
    ``out_dir/run.<part>.trec`` write   a TREC run per query file, tagged ``bm25``
    ==========================  ======  ==========================================================
    """
    from lexdr.retrieval import SearchConfig, write_runs

    out = Path(out_dir)
    result = sparse_index_stage(SparseIndexInputs(inputs.corpus, inputs.lang), config, out / "index", executor)
    index = BM25Index.load(out / "index", mmap=True)  # search reads only the postings it needs
    write_runs(index, out / "index", {f"run.{part}.trec": Path(p) for part, p in inputs.queries.items()},
               SearchConfig(depth=config.depth, tag="bm25"), out, executor)
    return result
