"""Join a BM25 run and a dense run into one candidate table per query, with per-query z-scores.

Scores of two retrievers live on different scales (BM25 is unbounded, cosine is in [-1, 1] and bunched), so
the teacher compares them after a per-query z-score over each retriever's own top-``depth`` list. A passage
that one retriever did not return gets that retriever's lowest z in the list: it was not retrieved, so it can
be no better than the last retrieved passage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lexdr.defaults import DEFAULT_DEPTH
from lexdr.records import Hit

__all__ = ["Candidate", "candidate_table", "zscores"]


@dataclass
class Candidate:
    doc_id: str
    bm25_rank: int | None  # 1-based; None when outside BM25's top-depth
    bm25_score: float | None
    dense_rank: int | None
    dense_score: float | None
    bm25_z: float
    dense_z: float

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def zscores(hits: list[Hit]) -> dict[str, float]:
    if not hits:
        return {}
    vals = [h.score for h in hits]
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
    return {h.doc_id: ((h.score - mean) / std if std > 0 else 0.0) for h in hits}


def candidate_table(bm25_hits: list[Hit], dense_hits: list[Hit], depth: int = DEFAULT_DEPTH) -> dict[str, Candidate]:
    """All passages in either top-``depth`` list, with ranks, raw scores and z-scores from both retrievers."""
    bm25 = sorted(bm25_hits, key=lambda h: (-h.score, h.doc_id))[:depth]
    dense = sorted(dense_hits, key=lambda h: (-h.score, h.doc_id))[:depth]
    zb, zd = zscores(bm25), zscores(dense)
    floor_b, floor_d = min(zb.values(), default=0.0), min(zd.values(), default=0.0)
    b_rank = {h.doc_id: (i + 1, h.score) for i, h in enumerate(bm25)}
    d_rank = {h.doc_id: (i + 1, h.score) for i, h in enumerate(dense)}
    table: dict[str, Candidate] = {}
    for doc_id in list(b_rank) + [d for d in d_rank if d not in b_rank]:
        br, bs = b_rank.get(doc_id, (None, None))
        dr, ds = d_rank.get(doc_id, (None, None))
        table[doc_id] = Candidate(doc_id, br, bs, dr, ds, zb.get(doc_id, floor_b), zd.get(doc_id, floor_d))
    return table
