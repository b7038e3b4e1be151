"""BM25 out of core: build an index from a stream of documents in shards, with memory bounded by a setting.

The in-memory build (:meth:`lexdr.sparse.BM25Index.build`) holds every document's terms as Python lists and hands
them to bm25s at once; on a Mr. TyDi corpus (millions of passages) that is tens of GiB. This builder streams the
corpus and never holds more than ``max_docs_in_memory`` documents' text and terms at a time:

1. **Analyze** (pass 1, per shard of documents): terms -> shard-local term ids, the shard's (doc, term, tf)
   postings written to ``.npy`` files in a work folder inside the index's temporary folder; the main process
   keeps only the global vocabulary (term -> id, in order of first appearance, as :func:`build_vocab` numbers
   it), the document frequencies and the document lengths. With ``n_jobs > 1`` and more than one shard, shards
   are analyzed in a ``concurrent.futures.ProcessPoolExecutor`` (each worker rebuilds the analyzer from its
   JSON config once); at most ``n_jobs`` shards are in flight.
2. **Score** (pass 2, per shard): each posting gets its BM25 score from the *corpus-wide* document frequencies
   and average length, computed with bm25s' own idf and term-frequency functions on the same dtypes, so every
   score is bit-identical to the in-memory index's (tested on a dev task: identical run files). The shard's
   postings are written back sorted by term (stable: documents stay in corpus order).
3. **Merge**: the shards' term-sorted postings are merged block by block of terms (a block holds at most about
   as many postings as one shard) into bm25s' column-major score matrix, appended to the final ``.npy`` files.
   Shards are read sequentially with plain reads, not memory-mapped (mapped pages would count as resident
   memory: about 12 bytes per posting, 0.7 GiB at 1M passages).

The result is an ordinary lexdr BM25 index folder (bm25s' ``data/indices/indptr.csc.index.npy``,
``vocab.index.json``, ``params.index.json`` plus lexdr's ``doc_ids.json``, ``doc_rank.npy``, their compact
copies (:func:`lexdr.sparse.index.write_compact_metadata`) and ``config.json``, whose ``"build"`` entry records
the shard layout): :meth:`BM25Index.load` memory-maps it and
``search`` reads only the postings of the query terms.

What stays in memory, whatever the shard size: the vocabulary (a dict of every distinct term), the document
ids (each shard's as one UTF-8 blob + offsets, :class:`lexdr.doc_ids.DocIds`; sorted at the end for the
tie-break, which also finds duplicates) and one int32 length per document.
"""

from __future__ import annotations

import json
import logging
import math
import resource
import time
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from lexdr.analysis import Analyzer, get_analyzer
from lexdr.doc_ids import DocIds
from lexdr.errors import ConfigError, LexdrError
from lexdr.executors import Executor, LocalExecutor
from lexdr.formats.files import SPARSE_INDEX, atomic_folder, claim_output_folder
from lexdr.records import Doc
from lexdr.sparse.config import DEFAULT_MAX_DOCS_IN_MEMORY
from lexdr.sparse.index import (_CONFIG, _DOC_IDS, _DOC_RANK, BM25Index, _bm25s, release_freed_memory,
                                write_compact_metadata)

__all__ = ["DEFAULT_MAX_DOCS_IN_MEMORY", "ShardStats", "build_out_of_core", "shard_docs_for"]

logger = logging.getLogger(__name__)

_WORK = "_shards"
# Up to this many (length, tf) pairs, term-frequency components are looked up in a table, not found by sorting.
_DENSE_KEYS = 1 << 24


def _block_postings(shard_docs: int) -> int:
    """Postings per merge block: about one shard's (~100 distinct terms a passage), at least a million."""
    return max(1_000_000, 100 * shard_docs)


@dataclass(frozen=True)
class ShardStats:
    """What one analyzed shard hands back to the main process (its postings are on disk)."""

    terms: list[str]  # shard-local term id -> term, in order of first appearance
    doc_lens: np.ndarray  # int32, one per document
    doc_freqs: np.ndarray  # int64, per shard-local term: documents of this shard containing it
    peak_rss_mib: float = 0.0  # of the process that analyzed it (a pool worker, or the main process)


def shard_docs_for(max_docs_in_memory: int, n_jobs: int) -> int:
    """Documents per shard: ``max_docs_in_memory`` split over the shards that can be alive at once (the one
    being read plus ``n_jobs`` in the workers when ``n_jobs > 1``)."""
    if max_docs_in_memory < 1:
        raise ConfigError(f"max_docs_in_memory must be >= 1 (got {max_docs_in_memory})")
    alive = 1 if n_jobs <= 1 else n_jobs + 1
    return max(1, max_docs_in_memory // alive)


# ------------------------------------------------------------------------------------------------ pass 1
_worker_analyzer: Analyzer | None = None


def _init_worker(config: dict) -> None:
    global _worker_analyzer
    _worker_analyzer = Analyzer.from_config(config)


def _analyze_in_worker(texts: list[str], prefix: str) -> ShardStats:
    assert _worker_analyzer is not None
    return _analyze_shard(_worker_analyzer, texts, Path(prefix))


def _analyze_shard(analyzer: Analyzer, texts: list[str], prefix: Path) -> ShardStats:
    """Analyze one shard and write its postings: ``prefix.doc.npy`` (shard-local doc, int32), ``prefix.tid.npy``
    (shard-local term id, int32), ``prefix.tf.npy`` (term frequency, int32), sorted by term id then doc."""
    flat, lens, terms = _term_ids(analyzer, texts)
    doc_of = np.repeat(np.arange(len(texts), dtype=np.int64), lens)
    n_docs = max(1, len(texts))
    keys, tf = np.unique(flat * n_docs + doc_of, return_counts=True)
    tid, doc = np.divmod(keys, n_docs)
    np.save(f"{prefix}.doc.npy", doc.astype(np.int32))
    np.save(f"{prefix}.tid.npy", tid.astype(np.int32))
    np.save(f"{prefix}.tf.npy", tf.astype(np.int32))
    doc_freqs = np.bincount(tid, minlength=len(terms)).astype(np.int64)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return ShardStats(terms=terms, doc_lens=lens, doc_freqs=doc_freqs, peak_rss_mib=peak)


def _term_ids(analyzer: Analyzer, texts: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every text's terms as ids: the flat id array (text after text), the number of terms of each text (int32)
    and the terms, numbered in order of first appearance (as :func:`lexdr.sparse.vocab.build_vocab` numbers them).

    Each distinct token is analyzed once (:meth:`Analyzer.learn_terms`) and every occurrence is mapped by C-level
    dict lookups, not a Python loop per token: ``terms[ids]`` of text ``i`` is ``analyzer(texts[i])``."""
    memo: dict[str, str] = {}  # token -> term ("": dropped)
    token_id: dict[str, int] = {}  # token -> term id (-1: dropped)
    term_id: dict[str, int] = {}  # term -> id
    terms: list[str] = []  # id -> term
    parts, raw_lens = [], []
    for chunk in analyzer.token_chunks(texts):
        base = len(terms)
        new_terms: dict[str, None] = {}
        learned = analyzer.learn_terms(chunk, memo)
        for token in learned:
            term = memo[token]
            if term and term not in term_id:
                term_id[term] = base + len(new_terms)
                new_terms[term] = None
            token_id[token] = term_id[term] if term else -1
        ids = np.fromiter(map(token_id.__getitem__, chain.from_iterable(chunk)), dtype=np.int64)
        if new_terms:  # the chunk's new terms, numbered again in order of first appearance
            ids = _renumber_new(ids, base, list(new_terms), term_id, terms)
            for token in learned:
                if memo[token]:
                    token_id[token] = term_id[memo[token]]
        raw_lens.append(np.fromiter(map(len, chunk), dtype=np.int64, count=len(chunk)))
        parts.append(ids)
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    raw = np.concatenate(raw_lens) if raw_lens else np.zeros(0, dtype=np.int64)
    kept = flat >= 0
    lens = np.bincount(np.repeat(np.arange(len(raw)), raw)[kept], minlength=len(raw)).astype(np.int32)
    return flat[kept], lens, terms


def _renumber_new(ids: np.ndarray, base: int, new_terms: list[str], term_id: dict[str, int],
                  terms: list[str]) -> np.ndarray:
    """Give the terms first met in this chunk (ids ``base``, ``base + 1``, ... in ``new_terms`` order) ids in
    order of their first occurrence in ``ids``; updates ``term_id`` and appends them to ``terms``."""
    fresh = ids[ids >= base]
    seen, first = np.unique(fresh, return_index=True)
    order = seen[np.argsort(first)] - base  # old offsets, by first occurrence (every new term occurs)
    remap = np.empty(len(new_terms), dtype=np.int64)
    remap[order] = np.arange(base, base + len(new_terms), dtype=np.int64)
    for term in new_terms:
        term_id[term] = int(remap[term_id[term] - base])
    terms.extend(new_terms[j] for j in order)
    return np.where(ids >= base, remap[np.maximum(ids - base, 0)], ids)


def _batches(docs: Iterable[Doc], size: int) -> Iterator[list[Doc]]:
    batch: list[Doc] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ------------------------------------------------------------------------------------------------ pass 2
def _tfc_table(tfc_fn: Any, lens: np.ndarray, tf: np.ndarray, avg_len: np.float64, k1: float, b: float,
               delta: float) -> np.ndarray:
    """bm25s' term-frequency component for every posting, computed exactly as bm25s computes it.

    bm25s calls its tfc function once per document with a float32 tf array and the document length as a
    Python int (``_build_scores_and_indices_for_matrix``); the result's dtype and rounding follow numpy's
    promotion of those operands. The component depends only on (length, tf), so it is evaluated once per
    distinct pair with the very same operand types, then gathered.
    """
    max_tf = int(tf.max()) + 1
    key = lens.astype(np.int64) * max_tf + tf
    space = (int(lens.max()) + 1) * max_tf
    if space <= _DENSE_KEYS:  # the distinct pairs without sorting every posting: a table over all pairs
        present = np.zeros(space, dtype=bool)
        present[key] = True
        uniq = np.flatnonzero(present)
    else:
        uniq, inverse = np.unique(key, return_inverse=True)
    u_len, u_tf = np.divmod(uniq, max_tf)
    cuts = np.flatnonzero(np.diff(u_len)) + 1
    parts = []
    for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(uniq)]])):
        tf_arr = u_tf[lo:hi].astype(np.float32)
        parts.append(np.asarray(tfc_fn(tf_array=tf_arr, l_d=int(u_len[lo]), l_avg=avg_len, k1=k1, b=b,
                                       delta=delta)))
    values = np.concatenate(parts)
    if space > _DENSE_KEYS:
        return values[inverse]
    table = np.empty(space, dtype=values.dtype)
    table[uniq] = values
    return table[key]


def _score_shard(prefix: Path, gid_map: np.ndarray, doc_lens: np.ndarray, doc_offset: int, idf: np.ndarray,
                 tfc_fn: Any, avg_len: np.float64, k1: float, b: float, delta: float,
                 bounds: np.ndarray) -> np.ndarray:
    """Score one shard's postings with the corpus-wide statistics and write them sorted by global term id
    (``.sdoc.npy``, ``.sscore.npy``); returns where each merge block (``bounds``: term ids) starts in them."""
    doc = np.load(f"{prefix}.doc.npy")
    tid = np.load(f"{prefix}.tid.npy")
    tf = np.load(f"{prefix}.tf.npy")
    tfc = _tfc_table(tfc_fn, doc_lens[doc], tf, avg_len, k1, b, delta)
    scores = (idf[gid_map[tid]] * tfc).astype(np.float32)  # bm25s: scores_doc = idf * tfc, stored as float32
    # The postings come in runs of one local term (documents in corpus order within a run): move each run to
    # its place in global term order, without sorting the postings.
    counts = np.bincount(tid, minlength=len(gid_map))
    by_global = np.argsort(gid_map)
    start = np.zeros(len(gid_map), dtype=np.int64)
    start[by_global] = np.cumsum(counts[by_global]) - counts[by_global]
    local_start = np.cumsum(counts) - counts
    dest = start[tid] + (np.arange(len(tid), dtype=np.int64) - local_start[tid])
    sdoc = np.empty(len(tid), dtype=np.int32)
    sdoc[dest] = doc + doc_offset
    sscore = np.empty(len(tid), dtype=np.float32)
    sscore[dest] = scores
    term = np.repeat(gid_map[by_global], counts[by_global]).astype(np.int32)
    np.save(f"{prefix}.sterm.npy", term)
    np.save(f"{prefix}.sdoc.npy", sdoc)
    np.save(f"{prefix}.sscore.npy", sscore)
    for name in ("doc", "tid", "tf"):
        Path(f"{prefix}.{name}.npy").unlink()
    return np.searchsorted(term, bounds)


# ------------------------------------------------------------------------------------------------ merge
def _write_npy_header(fh, dtype: np.dtype, length: int) -> None:
    np.lib.format.write_array_header_1_0(
        fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (length,)})


def _open_npy(path: str) -> tuple[Any, np.dtype]:
    """Open a 1-d ``.npy`` for sequential reads: the file positioned after its header, and its dtype."""
    fh = open(path, "rb")
    version = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    _, _, dtype = read(fh)
    return fh, dtype


def _blocks(doc_freqs: np.ndarray, block_postings: int) -> np.ndarray:
    """Term-id boundaries [0, ..., V] of merge blocks holding at most ``block_postings`` postings each (or one
    term, when a single term has more)."""
    ends = np.cumsum(doc_freqs)
    bounds, lo, n_terms = [0], 0, len(doc_freqs)
    while lo < n_terms:
        hi = int(np.searchsorted(ends, (ends[lo - 1] if lo else 0) + block_postings, side="right"))
        lo = min(max(hi, lo + 1), n_terms)
        bounds.append(lo)
    return np.asarray(bounds, dtype=np.int64)


def _merge(prefixes: list[Path], cuts: list[np.ndarray], nnz: int, data_path: Path, indices_path: Path) -> None:
    """Merge the shards' term-sorted postings into one column-major matrix, one block of terms at a time.

    Each shard is read sequentially with plain reads (``cuts[s][i]``: where block ``i`` starts in shard
    ``s``), never memory-mapped, so the pages read are not counted as this process's memory."""
    handles = [(_open_npy(f"{p}.sterm.npy"), _open_npy(f"{p}.sdoc.npy"), _open_npy(f"{p}.sscore.npy"))
               for p in prefixes]
    written = 0
    try:
        with open(data_path, "wb") as fdata, open(indices_path, "wb") as findex:
            _write_npy_header(fdata, np.float32, nnz)
            _write_npy_header(findex, np.int32, nnz)
            for i in range(len(cuts[0]) - 1):
                terms, docs, scores = [], [], []
                for cut, files in zip(cuts, handles):
                    count = int(cut[i + 1] - cut[i])
                    if count:
                        (ft, tt), (fd, td), (fs, ts) = files
                        terms.append(np.fromfile(ft, dtype=tt, count=count))
                        docs.append(np.fromfile(fd, dtype=td, count=count))
                        scores.append(np.fromfile(fs, dtype=ts, count=count))
                if terms:
                    order = np.argsort(np.concatenate(terms), kind="stable")  # shard order = corpus order
                    fdata.write(np.concatenate(scores)[order].tobytes())
                    findex.write(np.concatenate(docs)[order].tobytes())
                    written += len(order)
    finally:
        for files in handles:
            for fh, _ in files:
                fh.close()
    if written != nnz:
        raise LexdrError(f"out-of-core merge wrote {written} postings, expected {nnz}; rebuild the index")


# ------------------------------------------------------------------------------------------------ driver
def build_out_of_core(docs: Iterable[Doc], out_dir: str | Path, lang: str | None = None,
                      analyzer: Analyzer | str | None = None, k1: float | None = None, b: float | None = None,
                      method: str = "lucene", max_docs_in_memory: int = DEFAULT_MAX_DOCS_IN_MEMORY,
                      n_jobs: int = 2, executor: Executor | None = None, overwrite: bool = False) -> Path:
    """Index a stream of documents into the BM25 index folder ``out_dir``, ``max_docs_in_memory`` at a time.

    The same analysis, parameters and scores as ``BM25Index.build(docs, ...).save(out_dir)`` (bit for bit),
    with memory for at most ``max_docs_in_memory`` documents' text and postings (plus the vocabulary, the
    doc ids and one length per document). ``n_jobs > 1`` analyzes shards in that many worker processes;
    ``executor`` (:mod:`lexdr.executors`, e.g. Ray) analyzes them as its tasks instead, ``n_jobs`` at a time
    (the shard folder must then be visible to its workers at the same path). ``overwrite``: replace a dense
    index in ``out_dir`` (:func:`lexdr.formats.files.claim_output_folder`).
    Open the result with :meth:`BM25Index.load` (or :func:`lexdr.retrieval.load_retriever`). Returns ``out_dir``.
    """
    t0 = time.perf_counter()
    if not isinstance(analyzer, Analyzer):
        if lang is None:
            raise ConfigError("build_out_of_core needs lang (or an Analyzer instance)")
        analyzer = get_analyzer(lang, analyzer)
    spec = BM25Index(analyzer, k1=k1, b=b, method=method)  # validates k1, b and method
    shard_docs = shard_docs_for(max_docs_in_memory, n_jobs)
    out_dir = Path(out_dir)
    claim_output_folder(out_dir, SPARSE_INDEX, overwrite=overwrite)
    with atomic_folder(out_dir) as tmp:
        work = tmp / _WORK
        work.mkdir()
        shards = _analyze_all(docs, analyzer, work, shard_docs, n_jobs, executor)
        t_analyzed = time.perf_counter()
        reference, cuts = _score_all(shards, spec, _block_postings(shard_docs))
        t_scored = time.perf_counter()
        nnz = int(shards.doc_freqs.sum())
        _merge(shards.prefixes, cuts, nnz, tmp / "data.csc.index.npy", tmp / "indices.csc.index.npy")
        indptr = np.zeros(len(shards.doc_freqs) + 1, dtype=np.int64)
        np.cumsum(shards.doc_freqs, out=indptr[1:])
        np.save(tmp / "indptr.csc.index.npy", indptr)
        for f in sorted(work.iterdir()):
            f.unlink()
        work.rmdir()
        build = {"mode": "out-of-core", "max_docs_in_memory": max_docs_in_memory, "shard_docs": shard_docs,
                 "shards": len(shards.prefixes), "n_jobs": n_jobs, "postings": nnz,
                 "analysis_peak_rss_mib": round(shards.worker_rss, 1),
                 "seconds": {"analyze": round(t_analyzed - t0, 3), "score": round(t_scored - t_analyzed, 3),
                             "merge": round(time.perf_counter() - t_scored, 3)}}
        _write_metadata(tmp, spec, reference, shards, build)
    logger.info("out-of-core BM25: %d docs, %d terms, %d postings in %d shards of %d, %.1fs -> %s",
                shards.n_docs, len(shards.vocab), nnz, len(shards.prefixes), shard_docs,
                time.perf_counter() - t0, out_dir)
    del shards, spec
    release_freed_memory()
    return out_dir


@dataclass
class _Analyzed:
    """What pass 1 leaves in the main process: the global vocabulary (term -> id in order of first appearance),
    document frequencies, ids and lengths, and each shard's file prefix (its postings are on disk)."""

    vocab: dict[str, int] = field(default_factory=dict)
    id_parts: list[DocIds] = field(default_factory=list)  # each shard's ids, compactly (not a str a document)
    n_docs: int = 0
    doc_freqs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lens_parts: list[np.ndarray] = field(default_factory=list)
    prefixes: list[Path] = field(default_factory=list)
    worker_rss: float = 0.0
    rank: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # of each id, sorted: the tie-break

    def collect(self, stats: ShardStats, prefix: Path) -> None:
        """Fold one analyzed shard in: its terms get global ids (written to ``prefix.map.npy``)."""
        vocab = self.vocab
        setdefault = vocab.setdefault
        gid = np.fromiter((setdefault(t, len(vocab)) for t in stats.terms), dtype=np.int64, count=len(stats.terms))
        if len(vocab) > len(self.doc_freqs):
            self.doc_freqs = np.concatenate([self.doc_freqs,
                                             np.zeros(len(vocab) - len(self.doc_freqs), dtype=np.int64)])
        np.add.at(self.doc_freqs, gid, stats.doc_freqs)
        np.save(f"{prefix}.map.npy", gid)
        self.lens_parts.append(stats.doc_lens)
        self.worker_rss = max(self.worker_rss, stats.peak_rss_mib)
        self.prefixes.append(prefix)

    def take(self, batch: list[Doc]) -> list[str]:
        """The texts of a batch of documents, recording their ids."""
        self.id_parts.append(DocIds([d.doc_id for d in batch]))
        self.n_docs += len(batch)
        return [d.full_text() for d in batch]

    def doc_ids(self) -> list[str]:
        """Every document's id, in corpus order (a list made on demand: the build holds them compactly)."""
        return [i for part in self.id_parts for i in part]


def _analyze_all(docs: Iterable[Doc], analyzer: Analyzer, work: Path, shard_docs: int, n_jobs: int,
                 executor: Executor | None) -> _Analyzed:
    """Pass 1: analyze the corpus shard by shard into ``work`` (here, in a process pool or as ``executor``'s
    tasks, at most ``n_jobs`` shards in flight); checks that ids are unique and that some term came out."""
    out = _Analyzed()
    batches = _batches(docs, shard_docs)
    first = next(batches, None)
    if first is None:
        raise LexdrError("cannot index an empty corpus (no documents)")
    second = next(batches, None)
    shards = _chain(first, second, batches)
    if executor is None and (second is None or n_jobs <= 1):  # one shard, or no workers: analyze here
        for i, batch in enumerate(shards):
            prefix = work / f"{i:05d}"
            out.collect(_analyze_shard(analyzer, out.take(batch), prefix), prefix)
    else:  # a process pool here, or Ray tasks ([run] executor = "ray"); at most n_jobs shards in flight
        from lexdr.analysis.batch import _context

        pool = executor or LocalExecutor(mp_context=_context())
        args = ((out.take(batch), str(work / f"{i:05d}")) for i, batch in enumerate(shards))
        results = pool.map_ordered(_analyze_in_worker, args, in_flight=n_jobs, initializer=_init_worker,
                                   initargs=(analyzer.to_config(),), num_cpus=pool.cluster.analysis_num_cpus)
        for i, stats in enumerate(results):
            out.collect(stats, work / f"{i:05d}")
    out.rank = _doc_rank(out.doc_ids())  # also finds duplicate ids (adjacent once sorted), without a set of them
    if not out.vocab:
        raise LexdrError(f"analyzer {analyzer.name!r} ({analyzer.lang}) produced no terms for any document: "
                         "wrong language or analyzer?")
    return out


def _score_all(shards: _Analyzed, spec: BM25Index, block_postings: int) -> tuple[Any, list[np.ndarray]]:
    """Pass 2: the corpus-wide statistics, then every shard scored with them (bm25s' own idf and tf functions).
    Returns the reference ``bm25s.BM25`` (its parameters are the index's) and where each merge block starts in
    each shard."""
    lens = np.concatenate(shards.lens_parts)
    n_docs = len(lens)
    avg_len = np.float64(int(lens.sum(dtype=np.int64))) / n_docs  # == np.array(lens).mean(), exactly
    from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer

    reference = _bm25s().BM25(k1=spec.k1, b=spec.b, method=spec.method)
    idf_fn, tfc_fn = _select_idf_scorer(reference.idf_method), _select_tfc_scorer(reference.method)
    uniq_df, df_inverse = np.unique(shards.doc_freqs, return_inverse=True)
    idf_values = np.array([idf_fn(int(df), N=n_docs) if df else 0.0 for df in uniq_df], dtype=np.float64)
    idf = idf_values.astype(reference.dtype)[df_inverse]  # bm25s: float32 array filled from Python floats
    bounds = _blocks(shards.doc_freqs, block_postings)
    offset, cuts = 0, []
    for prefix, shard_lens in zip(shards.prefixes, shards.lens_parts):
        gid_map = np.load(f"{prefix}.map.npy")
        cuts.append(_score_shard(prefix, gid_map, shard_lens, offset, idf, tfc_fn, avg_len, reference.k1,
                                 reference.b, reference.delta, bounds))
        offset += len(shard_lens)
    return reference, cuts


def _write_metadata(tmp: Path, spec: BM25Index, reference: Any, shards: _Analyzed, build: dict) -> None:
    """bm25s' vocabulary and parameter files and lexdr's doc ids, id ranks and config (with ``build``)."""
    (tmp / "vocab.index.json").write_text(json.dumps(shards.vocab, ensure_ascii=False), encoding="utf-8")
    params = {"k1": reference.k1, "b": reference.b, "delta": reference.delta, "method": reference.method,
              "idf_method": reference.idf_method, "dtype": reference.dtype, "int_dtype": reference.int_dtype,
              "num_docs": shards.n_docs, "version": getattr(_bm25s(), "__version__", "unknown"),
              "backend": reference.backend}
    (tmp / "params.index.json").write_text(json.dumps(params, indent=4), encoding="utf-8")
    doc_ids = shards.doc_ids()
    (tmp / _DOC_IDS).write_text(json.dumps(doc_ids, ensure_ascii=False), encoding="utf-8")
    np.save(tmp / _DOC_RANK, shards.rank)
    spec.doc_ids = DocIds(doc_ids)
    write_compact_metadata(tmp, spec.doc_ids, shards.vocab)
    spec._vocab = shards.vocab
    config = spec.config()
    config["build"] = build
    (tmp / _CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _chain(first: list[Doc], second: list[Doc] | None, rest: Iterator[list[Doc]]) -> Iterator[list[Doc]]:
    yield first
    if second is not None:
        yield second
        yield from rest


class DuplicateDocIdError(LexdrError):
    """Two documents of the corpus share an id (found when the build sorts the ids)."""


def _doc_rank(doc_ids: list[str]) -> np.ndarray:
    """Rank of each document's id in sorted order (the tie-break key), as :meth:`BM25Index._attach` computes;
    raises on a duplicate id."""
    ids = np.asarray(doc_ids, dtype=object)
    order = np.argsort(ids, kind="stable")
    same = np.flatnonzero(ids[order[1:]] == ids[order[:-1]])
    if len(same):
        raise DuplicateDocIdError(f"duplicate document id {ids[order[same[0]]]!r}: document ids must be unique within an "
                         "index")
    rank = np.empty(len(doc_ids), dtype=np.int64)
    rank[order] = np.arange(len(doc_ids), dtype=np.int64)
    return rank


def expected_shards(num_docs: int, max_docs_in_memory: int, n_jobs: int) -> int:
    """How many shards :func:`build_out_of_core` cuts ``num_docs`` documents into."""
    return math.ceil(num_docs / shard_docs_for(max_docs_in_memory, n_jobs))
