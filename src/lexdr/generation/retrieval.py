"""Retriever callables for the round-trip filter: ``retrieve(queries: list[Query]) -> Run``.

The pipeline passes :func:`hybrid_retriever` (BM25 + dense fused by RRF): the same two views of relevance
that mining trusts, so a generated query is kept only when it finds its passage the way a mined query would.
:func:`dense_retriever` and :func:`bm25_retriever` are the one-sided versions (benchmarks, ablations).
"""

from __future__ import annotations

from typing import Any

from lexdr.fusion import rrf
from lexdr.generation.filters import Retriever
from lexdr.records import Query, Run

__all__ = ["dense_retriever", "bm25_retriever", "hybrid_retriever"]


def dense_retriever(encoder: Any, dense_index: Any, k: int = 10) -> Retriever:
    """Top-``k`` by the encoder's query embedding in ``dense_index`` (a :class:`lexdr.dense.DenseIndex`)."""

    def retrieve(queries: list[Query]) -> Run:
        if not queries:
            return {}
        emb = encoder.encode_queries([q.text for q in queries])
        return dense_index.search([q.query_id for q in queries], emb, k)

    return retrieve


def bm25_retriever(bm25_index: Any, k: int = 10) -> Retriever:
    """Top-``k`` by BM25 (a :class:`lexdr.sparse.BM25Index`; its analyzer handles the query language)."""

    def retrieve(queries: list[Query]) -> Run:
        return bm25_index.search(queries, k=k) if queries else {}

    return retrieve


def hybrid_retriever(bm25_index: Any, encoder: Any, dense_index: Any, k: int = 10, depth: int = 100,
                     rrf_k: int = 60) -> Retriever:
    """BM25 and dense runs, each ``depth`` deep, fused by reciprocal rank fusion and cut to the top ``k``.

    ``depth`` > ``k`` matters: a passage ranked 15th by both sides can fuse into the top 10.
    """
    depth = max(depth, k)
    sparse = bm25_retriever(bm25_index, depth)
    dense = dense_retriever(encoder, dense_index, depth)

    def retrieve(queries: list[Query]) -> Run:
        if not queries:
            return {}
        return rrf([sparse(queries), dense(queries)], k=rrf_k, depth=depth, top_k=k)

    return retrieve
