"""BM25 over bm25s: our analyzer makes the terms, bm25s builds and stores the precomputed score matrix.

What this layer adds to bm25s, and why:

* the analyzer is recorded with the index (``config.json``) and rebuilt at query time, so queries and documents
  always get the same analysis;
* string doc ids (``doc_ids.json``; held compactly once loaded, as is the vocabulary), and runs (``qid -> [Hit]``) sorted by score then doc id, so equal scores
  come out in the same order on every machine (bm25s' ``argpartition`` leaves ties in arbitrary order);
* only documents that match at least one query term are returned (score > 0), as Lucene does; ``k`` larger
  than the corpus is clipped instead of raising;
* a faster exact query path over bm25s' own arrays (the same scores as ``get_scores_from_ids``; top-k over
  the matching documents only), batched over threads;
* saving is atomic: the folder is built beside the target and renamed into place.

Files in an index folder: bm25s' ``data.csc.index.npy``, ``indices.csc.index.npy``, ``indptr.csc.index.npy``
(``allow_pickle=False``), ``vocab.index.json``, ``params.index.json``; ours: ``doc_ids.json``, ``doc_rank.npy``
(each id's rank in sorted order, the tie-break key), the ids and the vocabulary again as blobs and arrays
(``doc_ids.utf8``/``.offsets.npy``, ``vocab.terms.utf8``/``.offsets.npy``, ``vocab.ids.npy``: what ``load``
reads, without a Python object per id or term; folders without them are read from the JSON) and
``config.json`` (``"kind": "sparse"``, analyzer
config, k1, b, method, counts, lexdr and bm25s versions). The out-of-core builder (:mod:`lexdr.sparse.outofcore`) writes the same
folder from a stream.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from lexdr.analysis import Analyzer, analyzer_from_config, default_bm25_params, get_analyzer
from lexdr.defaults import DEFAULT_DEPTH
from lexdr.doc_ids import DocIds
from lexdr.errors import ConfigError, LexdrError
from lexdr.formats.files import DENSE_INDEX, SPARSE_INDEX, atomic_folder, claim_output_folder, folder_kind
from lexdr.records import Doc, Hit, Query, Run
from lexdr.sparse.vocab import CompactVocab, build_vocab, terms_to_ids

__all__ = ["BM25Index", "BM25_METHODS", "INDEX_FORMAT"]

logger = logging.getLogger(__name__)

# bm25s variants whose non-matching documents score exactly 0 (BM25L/BM25+ give every document a floor score,
# which would break "only matching documents are hits").
BM25_METHODS = ("lucene", "robertson", "atire")
INDEX_FORMAT = "lexdr-bm25/1"
_CONFIG = "config.json"
# Below this corpus size a query's numpy work is too short for a second thread to pay for GIL hand-offs.
_MIN_DOCS_PER_THREAD = 50_000
_DOC_IDS = "doc_ids.json"
# rank of each document's id in sorted order (int64): saves sorting millions of ids on every load
_DOC_RANK = "doc_rank.npy"
_VOCAB = "vocab.index.json"  # bm25s' file name
# Queries ranked at a time by iter_search: their hits are what a streamed search holds (1,000 x depth 100: about
# 9 MiB of hits)
SEARCH_BATCH = 1000
# A query whose postings number under num_docs / SPARSE_QUERY_RATIO is summed over the documents it names, not into
# an array of all N. Measured on the rehearsal's 1M-passage index, one thread: 3,000 of its questions (median 31k
# postings) 3.7 CPU-s that way against 6.1 s through the N array; queries of four of its commonest terms (0.57 N
# postings) 0.80 s against 0.31 s, np.unique's sort costing more per posting than a pass over N. Above N/4 postings
# the N array is at most about 4.5x the postings' own concatenated arrays.
SPARSE_QUERY_RATIO = 4


def _bm25s():
    import bm25s

    # bm25s sets its own logger to DEBUG at import (bm25s/__init__.py), which floods any application log
    # configured at INFO; hand the level back to the application (NOTSET = inherit), once.
    bm25s_logger = logging.getLogger("bm25s")
    if bm25s_logger.level == logging.DEBUG:
        bm25s_logger.setLevel(logging.NOTSET)
    return bm25s


def write_compact_metadata(folder: Path, doc_ids: Sequence[str], vocab: Mapping[str, int]) -> None:
    """Beside ``doc_ids.json`` and bm25s' ``vocab.index.json`` (kept: any JSON reader, bm25s' own ``load``), the
    same ids and vocabulary as blobs and arrays (:meth:`DocIds.save`, :meth:`CompactVocab.save`), which
    :meth:`BM25Index.load` reads without a Python object per id or term: parsing the two JSON files of the 1M-passage
    rehearsal index took 194 MiB at once, for 21 MB on disk."""
    DocIds(doc_ids).save(folder, "doc_ids")
    CompactVocab(vocab).save(folder)


def release_freed_memory() -> None:
    """Hand the heap memory just freed back to the OS (``malloc_trim``): after the out-of-core build (its
    vocabulary dict, doc id list, merge blocks) and after :meth:`BM25Index.load` (the JSON of every id and term).

    glibc keeps freed heap pages resident (its trim and mmap thresholds rise with the large blocks freed), and
    the search that follows allocates little from that heap: without this, the BM25 stage searched on top of
    the build's and the load's dead memory (10 MiB at 100k passages, 27 MiB at 1M; issue 21,
    ``benchmarks/results/stage_memory.md``). A no-op where there is no glibc."""
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own symbols: glibc's, on Linux
    except (OSError, AttributeError, TypeError):
        return
    trim(0)


class BM25Index:
    """A BM25 index over a corpus, searchable with :meth:`search`, saved with :meth:`save`.

    Parameters
    ----------
    analyzer
        The analyzer for documents and queries (an :class:`~lexdr.analysis.Analyzer`).
    k1, b
        BM25 parameters; ``None`` takes the analyzer language's chosen defaults
        (:func:`lexdr.analysis.default_bm25_params`).
    method
        bm25s scoring variant, one of :data:`BM25_METHODS` (``lucene``: Lucene's BM25, the default).

    Example
    -------
    >>> idx = BM25Index.build(docs, lang="en")                      # doctest: +SKIP
    >>> run = idx.search([Query("q1", "capital of france")], k=10)  # doctest: +SKIP
    """

    def __init__(self, analyzer: Analyzer, k1: float | None = None, b: float | None = None,
                 method: str = "lucene") -> None:
        if method not in BM25_METHODS:
            raise ConfigError(f"unknown BM25 method {method!r}; use one of {', '.join(BM25_METHODS)}")
        dk1, db = default_bm25_params(analyzer.lang)
        self.analyzer = analyzer
        self.k1 = float(dk1 if k1 is None else k1)
        self.b = float(db if b is None else b)
        if self.k1 < 0 or not 0.0 <= self.b <= 1.0:
            raise ConfigError(f"BM25 needs k1 >= 0 and 0 <= b <= 1 (got k1={self.k1}, b={self.b})")
        self.method = method
        # compact: the ids' UTF-8 bytes + 8 bytes a document, not one str object each (lexdr.doc_ids)
        self.doc_ids: Sequence[str] = DocIds([])
        self._retriever: Any = None
        self._vocab: Mapping[str, int] = {}  # a loaded index: a CompactVocab
        self._id_rank: np.ndarray = np.zeros(0, dtype=np.int64)

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def build(cls, docs: Iterable[Doc], lang: str | None = None, analyzer: Analyzer | str | None = None,
              k1: float | None = None, b: float | None = None, method: str = "lucene",
              n_jobs: int = 2) -> "BM25Index":
        """Analyze and index ``docs`` (title + text, see :meth:`Doc.full_text`).

        ``analyzer`` is an :class:`Analyzer`, or an analyzer name for ``lang``, or ``None`` for ``lang``'s
        default. ``n_jobs`` processes analyze text for the model-based segmenters.
        """
        if not isinstance(analyzer, Analyzer):
            if lang is None:
                raise ConfigError("BM25Index.build needs lang (or an Analyzer instance)")
            analyzer = get_analyzer(lang, analyzer)
        index = cls(analyzer, k1=k1, b=b, method=method)
        docs = list(docs)
        terms = analyzer.analyze_batch([d.full_text() for d in docs], n_jobs=n_jobs)
        return index.index_terms([d.doc_id for d in docs], terms)

    def index_terms(self, doc_ids: Sequence[str], docs_terms: Sequence[list[str]]) -> "BM25Index":
        """Index already-analyzed documents (``docs_terms[i]`` are the terms of ``doc_ids[i]``)."""
        if len(doc_ids) != len(docs_terms):
            raise LexdrError(f"{len(doc_ids)} doc ids but {len(docs_terms)} analyzed documents")
        if not doc_ids:
            raise LexdrError("cannot index an empty corpus (no documents)")
        if len(set(doc_ids)) != len(doc_ids):
            raise LexdrError("document ids must be unique within an index")
        ids, vocab = build_vocab(docs_terms)
        if not vocab:
            raise LexdrError(f"analyzer {self.analyzer.name!r} ({self.analyzer.lang}) produced no terms for any "
                             "document: wrong language or analyzer?")
        return self._index_ids(list(doc_ids), ids, vocab)

    def _index_ids(self, doc_ids: list[str], ids: list[list[int]], vocab: dict[str, int]) -> "BM25Index":
        bm25s = _bm25s()
        retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        retriever.index((ids, vocab), create_empty_token=False, show_progress=False)
        self._attach(retriever, doc_ids)
        logger.info("indexed %d documents, %d terms (%s/%s, k1=%g, b=%g)", len(doc_ids), len(vocab),
                    self.analyzer.lang, self.analyzer.name, self.k1, self.b)
        return self

    def _attach(self, retriever: Any, doc_ids: Sequence[str], rank: np.ndarray | None = None) -> None:
        self._retriever = retriever
        self._vocab = retriever.vocab_dict
        if rank is None:  # rank of each document's id in sorted order: the tie-break key for equal scores
            order = np.argsort(np.asarray(list(doc_ids), dtype=object), kind="stable")
            rank = np.empty(len(doc_ids), dtype=np.int64)
            rank[order] = np.arange(len(doc_ids), dtype=np.int64)
        self._id_rank = rank
        self.doc_ids = DocIds(doc_ids)

    kind = SPARSE_INDEX  # what config.json records (lexdr.retrieval.index_kind)

    @property
    def num_docs(self) -> int:
        return len(self.doc_ids)

    @property
    def run_tag(self) -> str:
        """The tag of the TREC runs this index writes."""
        return f"lexdr-bm25-{self.analyzer.lang}-{self.analyzer.name}"

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    @property
    def retriever(self) -> Any:
        """The underlying ``bm25s.BM25`` (for inspection; search through :meth:`search`)."""
        self._require_built()
        return self._retriever

    def _require_built(self) -> None:
        if self._retriever is None:
            raise LexdrError("the index is empty: call BM25Index.build(...) or BM25Index.load(folder) first")

    # ------------------------------------------------------------------------------------------ search
    def search(self, queries: Sequence[Query], k: int = DEFAULT_DEPTH, n_threads: int = 2, n_jobs: int = 2) -> Run:
        """Top-``k`` documents for each query: ``{query_id: [Hit, ...]}``, best first, ties by doc id.

        A query with no term in the index gets an empty hit list. ``n_threads`` threads score batches of queries;
        ``n_jobs`` processes analyze them when the analyzer is a slow segmenter.
        """
        queries = list(queries)
        terms = self.analyzer.analyze_batch([q.text for q in queries], n_jobs=n_jobs)
        return self.search_terms([q.query_id for q in queries], terms, k=k, n_threads=n_threads)

    def iter_search(self, queries: Sequence[Query], k: int = DEFAULT_DEPTH, n_threads: int = 2, n_jobs: int = 2,
                    batch: int | None = None) -> Iterator[tuple[str, list[Hit]]]:
        """:meth:`search`, yielded query by query (``(query id, hits)``, in query order) and ranked ``batch``
        queries at a time, so that only one batch's hits are held: a query file's run written as it comes
        (:func:`lexdr.formats.runs.write_run_items`) costs one batch's memory, not every hit of every query
        (each query is ranked alone: the same hits as :meth:`search`). ``batch``: :data:`SEARCH_BATCH` by default."""
        batch = batch or SEARCH_BATCH
        queries = list(queries)
        terms = self.analyzer.analyze_batch([q.text for q in queries], n_jobs=n_jobs)
        for i in range(0, len(queries), batch):
            run = self.search_terms([q.query_id for q in queries[i:i + batch]], terms[i:i + batch], k=k,
                                    n_threads=n_threads)
            yield from run.items()

    def search_terms(self, query_ids: Sequence[str], queries_terms: Sequence[list[str]], k: int = DEFAULT_DEPTH,
                     n_threads: int = 2) -> Run:
        """Like :meth:`search` for already-analyzed queries."""
        self._require_built()
        token_ids = [terms_to_ids(t, self._vocab) for t in queries_terms]
        return self.search_ids(query_ids, token_ids, k=k, n_threads=n_threads)

    def search_ids(self, query_ids: Sequence[str], token_ids: Sequence[list[int]], k: int = DEFAULT_DEPTH,
                   n_threads: int = 2) -> Run:
        """Search with term ids of this index's vocabulary (see :meth:`rank_ids`), as a :data:`Run`."""
        ranked = self.rank_ids(token_ids, k=k, n_threads=n_threads)
        # one str per document hit, shared by every hit on it: the ids of the documents hit, not all N (a dict of
        # the hit documents: a list of num_docs slots would cost 8 bytes a passage on every call, one query too)
        doc_ids, names, run = self.doc_ids, {}, {}
        for qid, (docs, scores) in zip(query_ids, ranked):
            ids = []
            for p in docs.tolist():
                name = names.get(p)
                if name is None:
                    name = names[p] = doc_ids[p]
                ids.append(name)
            run[qid] = list(map(Hit, ids, scores.tolist()))
        return run

    def rank_ids(self, token_ids: Sequence[list[int]], k: int = DEFAULT_DEPTH,
                 n_threads: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
        """The ranking core, in numpy: per query, (document positions, scores) of its top ``k``.

        Exact: only matching documents (score > 0), by score descending, equal scores by doc id. Scores come
        from bm25s' precomputed score matrix (see :meth:`_scores`); the top-k selection partitions only the
        matching documents (bm25s' own ``retrieve`` partitions all N scores, mostly zeros, which is slow).
        Queries are split into one contiguous batch per thread; threads pay off only when
        the per-query numpy work (which releases the GIL) outweighs the Python around it, i.e. on large
        corpora, so small indexes use one thread whatever ``n_threads`` says.
        """
        self._require_built()
        if k < 1:
            raise ConfigError(f"k must be >= 1 (got {k})")
        k = min(k, self.num_docs)
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
        out: list[tuple[np.ndarray, np.ndarray]] = [empty] * len(token_ids)
        live = [i for i, ids in enumerate(token_ids) if ids]

        def work(batch: list[int]) -> None:
            for i in batch:
                out[i] = self._top(*self._matches(token_ids[i]), k)

        n_threads = n_threads if self.num_docs >= _MIN_DOCS_PER_THREAD else 1
        n_threads = max(1, min(n_threads, len(live) // 64 or 1))
        if n_threads == 1:
            work(live)
        else:
            step = -(-len(live) // n_threads)
            with ThreadPoolExecutor(max_workers=n_threads) as pool:
                list(pool.map(work, [live[j : j + step] for j in range(0, len(live), step)]))
        return out

    def _matches(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The documents one query matches (ascending positions) and their BM25 scores (float64), from bm25s'
        term-major (CSC) score matrix.

        The query terms' postings are concatenated and summed per document by one ``np.bincount`` (float64):
        the same sums as ``bm25s.BM25.get_scores_from_ids`` (float32 ``np.add.at`` per term) to float32
        precision, at a half to a third of its cost. Documents with equal postings still get equal sums.
        Where the postings are few against the corpus (under ``num_docs / SPARSE_QUERY_RATIO``), they are summed
        over the distinct documents they name (``np.unique``), not into an array of every document: the same
        additions in the same order, so the same float64 sums, and memory that follows the postings, not N.
        """
        mat = self._retriever.scores
        data, indices, indptr = mat["data"], mat["indices"], mat["indptr"]
        bounds = [(int(indptr[t]), int(indptr[t + 1])) for t in ids]
        if len(bounds) == 1:  # one term: its postings name each document once, in ascending order
            (a, b), = bounds
            docs, weights = indices[a:b], data[a:b]
            if (b - a) * SPARSE_QUERY_RATIO < self.num_docs:
                scores = weights.astype(np.float64)
                keep = scores > 0
                return docs[keep].astype(np.int64), scores[keep]
        else:
            docs = np.concatenate([indices[a:b] for a, b in bounds])
            weights = np.concatenate([data[a:b] for a, b in bounds])
            if len(docs) * SPARSE_QUERY_RATIO < self.num_docs:
                distinct, where = np.unique(docs, return_inverse=True)
                scores = np.bincount(where, weights=weights, minlength=len(distinct))
                keep = scores > 0
                return distinct[keep].astype(np.int64), scores[keep]
        scores = np.bincount(docs, weights=weights, minlength=self.num_docs)
        matched = np.flatnonzero(scores > 0)
        return matched, scores[matched]

    def _top(self, docs: np.ndarray, s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The top ``k`` of the matched ``docs`` (ascending positions) by score ``s``, equal scores by doc id."""
        if len(docs) > k:
            kth = s[np.argpartition(-s, k - 1)[k - 1]]  # the k-th best score
            keep = s >= kth  # everything better, plus every document tied with the k-th
            docs, s = docs[keep], s[keep]
        order = np.lexsort((self._id_rank[docs], -s))[:k]
        return docs[order], s[order]

    # ------------------------------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """What ``config.json`` records: enough to rebuild the analyzer and to explain every score."""
        from lexdr import __version__

        bm25s = _bm25s()
        return {
            "kind": SPARSE_INDEX,
            "format": INDEX_FORMAT,
            "lexdr_version": __version__,
            "bm25s_version": getattr(bm25s, "__version__", "unknown"),
            "bm25": {"k1": self.k1, "b": self.b, "method": self.method},
            "analyzer": self.analyzer.to_config(),
            "num_docs": self.num_docs,
            "vocab_size": self.vocab_size,
        }

    def _array_bytes(self) -> int:
        """About what the saved index takes: its score arrays (the bm25s matrix and the ids' rank order)."""
        scores = getattr(self._retriever, "scores", None) or {}
        arrays = [v for v in scores.values() if hasattr(v, "nbytes")] if isinstance(scores, dict) else []
        return int(sum(a.nbytes for a in arrays) + self._id_rank.nbytes)

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the index to ``folder`` atomically (a half-written index is never visible); returns it.

        A folder holding another kind of index is refused unless ``overwrite``; one holding files no index
        holds, always (:func:`lexdr.formats.files.claim_output_folder`)."""
        self._require_built()
        folder = claim_output_folder(folder, SPARSE_INDEX, overwrite=overwrite)
        with atomic_folder(folder, needs=self._array_bytes()) as tmp:
            self._retriever.save(tmp, allow_pickle=False, show_progress=False)
            (tmp / _DOC_IDS).write_text(json.dumps(list(self.doc_ids), ensure_ascii=False), encoding="utf-8")
            write_compact_metadata(tmp, self.doc_ids, self._vocab)
            np.save(tmp / _DOC_RANK, self._id_rank, allow_pickle=False)
            (tmp / _CONFIG).write_text(json.dumps(self.config(), indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
        logger.info("saved BM25 index (%d docs) to %s", self.num_docs, folder)
        return folder

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = True) -> "BM25Index":
        """Open an index written by :meth:`save`; ``mmap=True`` maps the score arrays instead of reading them."""
        folder = Path(folder)
        cfg_path = folder / _CONFIG
        if not cfg_path.is_file():
            raise LexdrError(f"{folder} is not a lexdr BM25 index (no {_CONFIG}); build one with "
                             "`lexdr index sparse` or lexdr.sparse.build_index")
        if folder_kind(folder) == DENSE_INDEX:
            raise LexdrError(f"{folder} is a dense index, not a sparse (BM25) one (fix: search it with "
                             "`lexdr search dense`, or build a BM25 index with `lexdr index sparse`)")
        try:
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            # the compact copy when the folder has one (no Python str per id while reading); else the JSON list
            doc_ids = DocIds.load(folder, "doc_ids")
            if doc_ids is None:
                doc_ids = json.loads((folder / _DOC_IDS).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
            raise LexdrError(f"{folder}: unreadable index metadata ({e}): the folder is damaged (fix: rebuild it "
                             "with `lexdr index sparse`, or delete the folder and re-run the stage)") from None
        if cfg.get("format") != INDEX_FORMAT:
            raise LexdrError(f"{folder}: index format {cfg.get('format')!r}, this lexdr reads {INDEX_FORMAT!r}; "
                             "rebuild the index")
        bm = cfg["bm25"]
        index = cls(analyzer_from_config(cfg["analyzer"]), k1=bm["k1"], b=bm["b"], method=bm["method"])
        try:
            retriever = _bm25s().BM25.load(folder, mmap=mmap, load_vocab=False, allow_pickle=False)
            # the vocabulary held compactly, not as bm25s' dict and id set (CompactVocab); the dict read here
            # is dropped
            vocab = CompactVocab.load(folder)
            if vocab is None:  # a folder written before the compact copy
                vocab = CompactVocab(json.loads((folder / _VOCAB).read_text(encoding="utf-8")))
        except (OSError, ValueError, EOFError, KeyError, TypeError) as e:  # a truncated .npy, a cut vocabulary
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise LexdrError(f"{folder} is damaged ({type(e).__name__}: {first}) (fix: rebuild it with `lexdr index "
                             "sparse`, or delete the folder and re-run the stage)") from None
        if retriever.scores["num_docs"] != len(doc_ids):
            raise LexdrError(f"{folder}: {len(doc_ids)} doc ids but {retriever.scores['num_docs']} indexed "
                             "documents; the folder is damaged, rebuild the index")
        if cfg.get("vocab_size") is not None and len(vocab) != cfg["vocab_size"]:
            raise LexdrError(f"{folder}: {len(vocab)} terms in its vocabulary but {cfg['vocab_size']} in config.json: "
                             "the folder is damaged (fix: rebuild it with `lexdr index sparse`, or delete the folder "
                             "and re-run the stage)")
        retriever.vocab_dict = vocab  # bm25s' own retrieve() keeps working on index.retriever
        ids = np.sort(vocab.ids())
        contiguous = bool(len(ids) == 0 or (ids[0] == 0 and ids[-1] == len(ids) - 1 and np.all(np.diff(ids) == 1)))
        retriever.unique_token_ids_set = range(len(ids)) if contiguous else set(ids.tolist())
        rank = None
        if (folder / _DOC_RANK).is_file():  # older folders lack it: the ids are sorted here
            rank = np.load(folder / _DOC_RANK, allow_pickle=False)
            if rank.shape != (len(doc_ids),):
                raise LexdrError(f"{folder}: {_DOC_RANK} has {rank.shape} entries for {len(doc_ids)} doc ids; the "
                                 "folder is damaged, rebuild the index")
        index._attach(retriever, doc_ids, rank)  # keeps the ids compactly; the list read here is dropped
        del doc_ids, vocab
        release_freed_memory()  # the JSON read here: a list of every id and a dict of every term, now dead
        return index

    def __repr__(self) -> str:
        return (f"BM25Index(lang={self.analyzer.lang!r}, analyzer={self.analyzer.name!r}, k1={self.k1}, b={self.b}, "
                f"docs={self.num_docs}, terms={self.vocab_size})")
