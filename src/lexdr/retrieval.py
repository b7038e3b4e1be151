"""One way to ask for a ranking: the :class:`Retriever` protocol, and the hybrid of several retrievers.

Every retriever in lexdr — BM25 (:class:`lexdr.sparse.BM25Index`), dense (:class:`lexdr.dense.DenseRetriever`:
an encoder with its prompts plus a FAISS index), and :class:`HybridRetriever` (retrievers plus a fusion) —
answers ``search(queries, k) -> Run``. Mining, the generation round trip, evaluation, the CLI and the pipeline
only ever call that, the way every Pyserini searcher has one ``search``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

from lexdr.errors import LexdrError
from lexdr.fusion import FusionConfig, fuse_runs
from lexdr.records import Query, Run

__all__ = ["Retriever", "HybridRetriever", "load_retriever"]


@runtime_checkable
class Retriever(Protocol):
    """Anything that ranks passages for queries: ``search(queries, k)`` returns each query's top ``k`` hits,
    best first, ties broken by doc id. A query that matches nothing maps to an empty list."""

    def search(self, queries: Sequence[Query], k: int = 100) -> Run: ...


class HybridRetriever:
    """Several retrievers, each searched ``depth`` deep, fused (RRF by default) and cut to the top ``k``.

    ``depth`` > ``k`` matters: a passage ranked 15th by both sides can fuse into the top 10. With
    ``fusion.method = "adaptive"`` the weights are chosen per query batch from the runs themselves (no labels).
    """

    def __init__(self, retrievers: Sequence[Retriever], fusion: FusionConfig | None = None, depth: int = 100):
        if len(retrievers) < 2:
            raise LexdrError(f"a hybrid needs at least two retrievers, got {len(retrievers)}")
        self.retrievers = list(retrievers)
        self.fusion = fusion or FusionConfig()
        self.depth = depth

    def search(self, queries: Sequence[Query], k: int = 100) -> Run:
        if not queries:
            return {}
        depth = max(self.depth, k)
        runs = [r.search(queries, k=depth) for r in self.retrievers]
        return fuse_runs(runs, self.fusion, depth=depth, top_k=k)


def load_retriever(folder: str | Path, **options) -> Retriever:
    """Open an index folder written by ``lexdr index sparse`` or ``lexdr index dense`` as a retriever."""
    import json

    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise LexdrError(f"{folder} is not a lexdr index (no config.json); build one with `lexdr index sparse` "
                         "or `lexdr index dense`")
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise LexdrError(f"{cfg_path}: unreadable ({e}); rebuild the index") from None
    from lexdr.formats.files import DENSE_INDEX, SPARSE_INDEX, folder_kind

    kind = folder_kind(folder)  # config.json's "kind"; for folders older than that field, told by their files
    if kind == SPARSE_INDEX:
        from lexdr.sparse import BM25Index

        return BM25Index.load(folder, **options)
    if kind == DENSE_INDEX:
        from lexdr.dense import DenseRetriever

        return DenseRetriever.load(folder, **options)
    raise LexdrError(f"{folder}: config.json describes neither a BM25 nor a dense index; rebuild the index")
