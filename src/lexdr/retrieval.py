"""One way to ask for a ranking: the :class:`Retriever` protocol, and the hybrid of several retrievers.

Every retriever in lexdr — BM25 (:class:`lexdr.sparse.BM25Index`), dense (:class:`lexdr.dense.DenseRetriever`:
an encoder with its prompts plus a FAISS index), and :class:`HybridRetriever` (retrievers plus a fusion) —
answers ``search(queries, k) -> Run``. Mining, the generation round trip, evaluation, the CLI and the pipeline
only ever call that, the way every Pyserini searcher has one ``search``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

from lexdr.defaults import DEFAULT_DEPTH
from lexdr.errors import LexdrError
from lexdr.formats.files import DENSE_INDEX, SPARSE_INDEX
from lexdr.fusion import FusionConfig, fuse_runs
from lexdr.records import Query, Run
from lexdr.settings import at_least, setting

if TYPE_CHECKING:
    from lexdr.executors import Executor

__all__ = ["Retriever", "HybridRetriever", "load_retriever", "index_kind", "INDEX_KINDS",
           "SearchInputs", "SearchConfig", "search_stage", "write_runs", "search_queries"]


@runtime_checkable
class Retriever(Protocol):
    """Anything that ranks passages for queries: ``search(queries, k)`` returns each query's top ``k`` hits,
    best first, ties broken by doc id. A query that matches nothing maps to an empty list."""

    def search(self, queries: Sequence[Query], k: int = DEFAULT_DEPTH) -> Run: ...


class HybridRetriever:
    """Several retrievers, each searched ``depth`` deep, fused (RRF by default) and cut to the top ``k``.

    ``depth`` > ``k`` matters: a passage ranked 15th by both sides can fuse into the top 10. With
    ``fusion.method = "adaptive"`` the weights are chosen per query batch from the runs themselves (no labels).
    """

    def __init__(self, retrievers: Sequence[Retriever], fusion: FusionConfig | None = None, depth: int = DEFAULT_DEPTH):
        if len(retrievers) < 2:
            raise LexdrError(f"a hybrid needs at least two retrievers, got {len(retrievers)}")
        self.retrievers = list(retrievers)
        self.fusion = fusion or FusionConfig()
        self.depth = depth

    def search(self, queries: Sequence[Query], k: int = DEFAULT_DEPTH) -> Run:
        if not queries:
            return {}
        depth = max(self.depth, k)
        runs = [r.search(queries, k=depth) for r in self.retrievers]
        return fuse_runs(runs, self.fusion, depth=depth, top_k=k)


# Index kinds (the ``kind`` an index folder's config.json records) -> (module, class with ``load(folder)``).
INDEX_KINDS = {SPARSE_INDEX: ("lexdr.sparse", "BM25Index"), DENSE_INDEX: ("lexdr.dense", "DenseRetriever")}
_REBUILD = "rebuild it with `lexdr index sparse` or `lexdr index dense`"


def index_kind(folder: str | Path) -> str:
    """The kind of index in ``folder``: the ``kind`` its ``config.json`` records (a sharded dense index: its
    ``index_shards.json``). Folders written before indexes recorded their kind are told apart by their
    config's sections (``bm25``: sparse, ``encoder``: dense)."""
    import json

    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        cfg_path = folder / "index_shards.json"  # several dense shards searched as one
        if not cfg_path.is_file():
            raise LexdrError(f"{folder} is not a lexdr index (no config.json); build one with `lexdr index sparse` "
                             "or `lexdr index dense`")
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise LexdrError(f"{cfg_path}: unreadable ({e}); {_REBUILD}") from None
    if not isinstance(meta, dict):
        raise LexdrError(f"{cfg_path}: not an index description; {_REBUILD}")
    kind = meta.get("kind")
    if kind is None:  # written before indexes recorded their kind
        kind = SPARSE_INDEX if "bm25" in meta else DENSE_INDEX if "encoder" in meta or "shards" in meta else None
        if kind is None:
            raise LexdrError(f"{cfg_path} records no index kind and describes neither a BM25 nor a dense index; "
                             f"{_REBUILD}")
    if kind not in INDEX_KINDS:
        raise LexdrError(f"{cfg_path}: unknown index kind {kind!r} (known: {', '.join(INDEX_KINDS)}); {_REBUILD}")
    return kind


def load_retriever(folder: str | Path, **options) -> Retriever:
    """Open an index folder written by ``lexdr index sparse`` or ``lexdr index dense`` as a retriever: the
    class is picked by the folder's :func:`index_kind`; ``options`` go to its ``load``."""
    from importlib import import_module

    module, name = INDEX_KINDS[index_kind(folder)]
    return getattr(import_module(module), name).load(folder, **options)


@dataclass(frozen=True)
class SearchInputs:
    """What :func:`search_stage` reads: an index folder of any kind and the query files to search, each under
    the name of the run file it becomes in the stage's folder (``{"run.test.trec": queries.test.tsv}``).
    ``options`` go to the retriever's ``load`` (:func:`load_retriever`). ``optional``: a query file that does
    not exist is skipped, no run written (the pipeline's generated queries, when generation kept none)."""

    index: Path
    queries: Mapping[str, Path]
    options: Mapping[str, Any] = field(default_factory=dict)
    optional: bool = False


@dataclass(frozen=True)
class SearchConfig:
    """How :func:`search_stage` searches: ``depth`` hits per query; ``tag``, the TREC run tag (None: the
    retriever's ``run_tag``)."""

    depth: int = setting(DEFAULT_DEPTH, "Hits per query.")
    tag: str | None = setting(None, "The runs' TREC tag (their last column; None: the retriever's own, e.g. "
                                    "lexdr-dense).", fingerprint=False)

    def __post_init__(self) -> None:
        at_least(self, ("depth",), 1)


def search_stage(inputs: SearchInputs, config: SearchConfig, out_dir: str | Path, executor: "Executor") -> dict:
    """Search an index with query files; the stage of ``lexdr search``, of the pipeline's generated queries,
    and the search half of the BM25 and dense stages.

    =====================  ======  ================================================================
    file                   r / w   format
    =====================  ======  ================================================================
    ``inputs.index``       read    an index folder (``config.json`` records its ``kind``)
    each query file        read    topics TSV (``qid<TAB>text``) or BEIR ``queries.jsonl``
    ``out_dir/<name>``     write   one TREC run per query file (``qid Q0 doc rank score tag``), best
                                   first, ties by doc id; a query that matched nothing is left out
    =====================  ======  ================================================================

    Returns ``{name: queries searched}``. On a distributed ``executor`` a query file of more than
    :data:`lexdr.executors.QUERIES_PER_SHARD` queries is searched in shards on its workers
    (:func:`search_queries`)."""
    queries = {name: Path(p) for name, p in inputs.queries.items() if not inputs.optional or Path(p).is_file()}
    if not queries:
        return {}
    retriever = load_retriever(inputs.index, **inputs.options)
    return write_runs(retriever, inputs.index, queries, config, out_dir, executor, dict(inputs.options))


def write_runs(retriever: Retriever, index: Path, queries: Mapping[str, Path], config: SearchConfig,
               out_dir: str | Path, executor: "Executor", options: Mapping[str, Any] | None = None) -> dict:
    """Search ``retriever`` (opened from the folder ``index`` with ``options``) with each query file and write
    ``out_dir/<name>``: the body of :func:`search_stage`, for a stage that already holds its retriever (the
    BM25 and dense stages search the index they just built)."""
    import logging

    from lexdr.formats import read_queries
    from lexdr.formats.runs import write_run_items

    out, counts = Path(out_dir), {}
    tag = config.tag or getattr(retriever, "run_tag", "lexdr")
    for name, path in queries.items():
        qs = read_queries(path)
        if hasattr(retriever, "iter_search") and not executor.distributed:  # BM25: streamed, batch by batch
            items = retriever.iter_search(qs, config.depth)
        else:
            items = search_queries(retriever, index, qs, config.depth, executor, options or {}).items()
        empty = write_run_items(items, out / name, tag, [q.query_id for q in qs])
        if empty:
            logging.getLogger(__name__).warning("%d of %d queries matched no document", empty, len(qs))
        counts[name] = len(qs)
    return counts


class ShardSearcher:
    """The stateful per-shard search worker an executor runs (a Ray Data actor): opens the index folder once
    (:func:`load_retriever`: any kind) and returns each query shard's run as JSON text (hits best first,
    scores as Python floats, which JSON keeps exactly)."""

    def __init__(self, index: str, options: Mapping[str, Any], k: int):
        self.retriever, self.k = load_retriever(index, **options), k

    def __call__(self, batch: Mapping[str, Any]) -> dict:
        import json

        import numpy as np

        runs = []
        for qids, texts in zip(batch["query_ids"], batch["texts"]):
            run = self.retriever.search([Query(str(q), str(t)) for q, t in zip(qids, texts)], self.k)
            runs.append(json.dumps([[q, [[h.doc_id, h.score] for h in hits]] for q, hits in run.items()]))
        return {"shard": np.asarray([int(n) for n in batch["shard"]], dtype=np.int64), "run": np.asarray(runs)}


# Index kind -> the [cluster] settings a search worker of that kind gets: (workers, CPUs, GPUs each).
_SEARCH_RESOURCES = {SPARSE_INDEX: ("analysis_tasks", "analysis_num_cpus", None),
                     DENSE_INDEX: ("encode_actors", "encode_num_cpus", "encode_num_gpus")}


def search_queries(retriever: Retriever, index: Path, queries: Sequence[Query], k: int, executor: "Executor",
                   options: Mapping[str, Any] | None = None) -> Run:
    """``retriever.search(queries, k)``; on a distributed executor with more than
    :data:`lexdr.executors.QUERIES_PER_SHARD` queries, shards of that many on its workers
    (:class:`ShardSearcher`, each opening ``index`` once, with the ``[cluster]`` resources of the index's
    kind), concatenated in query order: the same run for every retriever kind, the one sharded search of
    lexdr."""
    import json

    from lexdr import executors
    from lexdr.records import Hit

    per = executors.QUERIES_PER_SHARD
    if not executor.distributed or len(queries) <= per:
        return retriever.search(queries, k)
    workers, cpus, gpus = _SEARCH_RESOURCES[index_kind(index)]
    c = executor.cluster
    rows = ({"shard": no, "query_ids": [q.query_id for q in queries[i:i + per]],
             "texts": [q.text for q in queries[i:i + per]]} for no, i in enumerate(range(0, len(queries), per)))
    parts = {int(r["shard"]): str(r["run"]) for r in executor.map_actors(
        ShardSearcher, rows, ctor_args=(str(index), dict(options or {}), k), actors=getattr(c, workers),
        num_cpus=getattr(c, cpus), num_gpus=getattr(c, gpus) if gpus else 0.0)}
    run: Run = {}
    for no in sorted(parts):  # workers may finish out of order
        run.update((q, [Hit(d, float(sc)) for d, sc in hits]) for q, hits in json.loads(parts[no]))
    return run
