"""The dense retriever: an encoder (with the prompts and length its index was built with) plus a FAISS index.

This is the one place where queries are encoded and searched; everything else asks a
:class:`lexdr.retrieval.Retriever` for a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from lexdr.dense.encoder import Encoder, EncoderConfig
from lexdr.dense.index import DenseIndex, open_dense_index
from lexdr.defaults import DEFAULT_DEPTH
from lexdr.errors import LexdrError
from lexdr.records import Hit, Query, Run

__all__ = ["DenseRetriever", "encoder_for_index", "score_passages", "search_shared"]


def score_passages(encoder: Encoder, queries: Sequence[str], passages: Sequence[str]):
    """(n_queries, n_passages) float32 scores of ``encoder`` without an index (a few passages per query, e.g.
    the windows of long passages in :func:`lexdr.training.windows.teacher_windows`); each passage is cut at
    ``max_seq_length`` tokens."""
    return encoder.encode_queries(list(queries)) @ encoder.encode_passages(list(passages)).T


def encoder_for_index(index: DenseIndex, **overrides) -> Encoder:
    """The encoder an index was built with (same model, prompts and length), for encoding its queries."""
    described = dict(index.meta.get("encoder") or {})
    if not described:
        raise LexdrError("this dense index does not record its encoder; pass the model explicitly")
    fields = set(EncoderConfig.__dataclass_fields__)
    cfg = EncoderConfig(**{k: v for k, v in {**described, **overrides}.items() if k in fields})
    return Encoder(cfg)


class DenseRetriever:
    """``search(queries, k)`` over a :class:`DenseIndex` with the query encoder that matches it."""

    run_tag = "lexdr-dense"  # the tag of the TREC runs it writes

    def __init__(self, encoder: Encoder, index: DenseIndex):
        self.encoder = encoder
        self.index = index

    @classmethod
    def load(cls, folder: str | Path, encoder: Encoder | None = None, mmap: bool = False,
             **encoder_overrides) -> "DenseRetriever":
        """Open an index folder; the encoder is rebuilt from the index's own record unless one is given."""
        index = open_dense_index(folder, mmap=mmap)  # one index folder, or several shards' (merged by score)
        return cls(encoder or encoder_for_index(index, **encoder_overrides), index)

    def search(self, queries: Sequence[Query], k: int = DEFAULT_DEPTH) -> Run:
        if not queries:
            return {}
        emb = self.encoder.encode_queries([q.text for q in queries])
        return self.index.search_vectors([q.query_id for q in queries], emb, k)


def search_shared(encoder: Encoder, requests: Sequence[tuple[DenseIndex, str, int]]) -> list[list[Hit]]:
    """(index, query text, k) requests that share one encoder, e.g. one model's indexes of several languages:
    every text encoded in one call, each index searched once for its rows at their largest k, each request cut
    to its own k. Returns each request's hits, in order (``lexdr serve``'s micro-batches)."""
    if not requests:
        return []
    emb = encoder.encode_queries([text for _, text, _ in requests])
    out: list[list[Hit]] = [[] for _ in requests]
    groups: dict[int, list[int]] = {}
    for i, (index, _, _) in enumerate(requests):
        groups.setdefault(id(index), []).append(i)
    for rows in groups.values():
        index = requests[rows[0]][0]
        run = index.search_vectors([f"q{i}" for i in rows], emb[rows], max(requests[i][2] for i in rows))
        for i in rows:
            out[i] = run.get(f"q{i}", [])[: requests[i][2]]
    return out
