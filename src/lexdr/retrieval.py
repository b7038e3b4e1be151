"""One way to ask for a ranking: the :class:`Retriever` protocol, and the hybrid of several retrievers.

Every retriever in lexdr — BM25 (:class:`lexdr.sparse.BM25Index`), dense (:class:`lexdr.dense.DenseRetriever`:
an encoder with its prompts plus a FAISS index), and :class:`HybridRetriever` (retrievers plus a fusion) —
answers ``search(queries, k) -> Run``. Mining, the generation round trip, evaluation, the CLI and the pipeline
only ever call that, the way every Pyserini searcher has one ``search``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

from lexdr.defaults import DEFAULT_DEPTH
from lexdr.errors import LexdrError
from lexdr.formats.files import DENSE_INDEX, SPARSE_INDEX
from lexdr.fusion import FusionConfig, fuse_runs
from lexdr.records import Query, Run

__all__ = ["Retriever", "HybridRetriever", "load_retriever", "index_kind", "search_to_run", "INDEX_KINDS"]


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


def search_to_run(folder: str | Path, queries_path: str | Path, out_run: str | Path, k: int = DEFAULT_DEPTH,
                  **options) -> Path:
    """``lexdr search``: open any index folder (:func:`load_retriever`), search every query of ``queries_path``
    (BEIR JSONL or ``qid<TAB>text`` TSV) ``k`` deep and write a TREC run (tagged with the retriever's
    ``run_tag``). A query that matches nothing is left out of the run, and counted in a warning."""
    import logging

    from lexdr.formats import read_queries, write_run

    retriever = load_retriever(folder, **options)
    queries = read_queries(queries_path)
    run = retriever.search(queries, k=k)
    write_run(run, out_run, tag=getattr(retriever, "run_tag", "lexdr"))
    empty = sum(1 for hits in run.values() if not hits)
    if empty:
        logging.getLogger(__name__).warning("%d of %d queries matched no document", empty, len(run))
    return Path(out_run)
