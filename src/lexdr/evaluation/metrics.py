"""MRR@k, Recall@k and nDCG@k computed the way trec_eval computes them.

Two trec_eval conventions matter and are easy to get wrong:

* ordering: trec_eval ignores the rank column; it sorts a query's documents by score (descending) and breaks
  ties by document id in *descending* string order. :func:`trec_order` reproduces that, so a run with tied
  scores gets the same numbers here as in trec_eval.
* relevance: a document is relevant when its grade is >= 1 (``-l 1``); nDCG uses the grade as the gain and
  ``log2(rank + 1)`` as the discount, the ideal ranking built from all judged documents of the query.

Averages are taken over every query of the qrels that has at least one relevant document; a query absent from
the run scores 0 (trec_eval ``-c``). Leaving a query out must not flatter a run.
"""

from __future__ import annotations

import math
import re
from typing import Iterable, Mapping

from lexdr.errors import LexdrError
from lexdr.records import Hit

__all__ = ["DEFAULT_METRICS", "evaluate", "evaluate_per_query", "trec_order", "parse_metric"]

DEFAULT_METRICS = ("MRR@10", "MRR@100", "Recall@10", "Recall@100", "nDCG@10")
_METRIC = re.compile(r"^(MRR|Recall|nDCG)@(\d+)$")


def parse_metric(name: str) -> tuple[str, int]:
    m = _METRIC.match(name)
    if not m:
        raise LexdrError(f"unknown metric {name!r}; use MRR@k, Recall@k or nDCG@k (e.g. {', '.join(DEFAULT_METRICS)})")
    return m.group(1), int(m.group(2))


def trec_order(hits: Iterable[Hit]) -> list[Hit]:
    """trec_eval's order: score descending, ties by doc id descending."""
    # Two stable sorts: first the tie-break (doc id desc), then the primary key (score desc).
    by_id = sorted(hits, key=lambda h: h.doc_id, reverse=True)
    return sorted(by_id, key=lambda h: -h.score)


def _query_metrics(ranked_ids: list[str], rels: Mapping[str, int], parsed: list[tuple[str, str, int]]) -> dict[str, float]:
    relevant = {d for d, g in rels.items() if g >= 1}
    out: dict[str, float] = {}
    first_rel = next((i for i, d in enumerate(ranked_ids) if d in relevant), None)
    ideal_gains = sorted((g for g in rels.values() if g > 0), reverse=True)
    for name, kind, k in parsed:
        if kind == "MRR":
            out[name] = 1.0 / (first_rel + 1) if first_rel is not None and first_rel < k else 0.0
        elif kind == "Recall":
            out[name] = sum(1 for d in ranked_ids[:k] if d in relevant) / len(relevant)
        else:  # nDCG
            dcg = sum(max(rels.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranked_ids[:k]))
            idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal_gains[:k]))
            out[name] = dcg / idcg if idcg > 0 else 0.0
    return out


def evaluate_per_query(
    run: Mapping[str, list[Hit]],
    qrels: Mapping[str, Mapping[str, int]],
    metrics: Iterable[str] = DEFAULT_METRICS,
) -> dict[str, dict[str, float]]:
    """Per-query metric values for every qrels query with a relevant document (missing from the run → 0)."""
    parsed = [(m, *parse_metric(m)) for m in metrics]
    per_query: dict[str, dict[str, float]] = {}
    for qid, rels in qrels.items():
        if not any(g >= 1 for g in rels.values()):
            continue
        ranked = [h.doc_id for h in trec_order(run.get(qid, []))]
        per_query[qid] = _query_metrics(ranked, rels, parsed)
    return per_query


def evaluate(
    run: Mapping[str, list[Hit]],
    qrels: Mapping[str, Mapping[str, int]],
    metrics: Iterable[str] = DEFAULT_METRICS,
) -> dict[str, float]:
    """Mean of each metric over the qrels queries (see module doc). Adds ``num_queries``."""
    metrics = list(metrics)
    per_query = evaluate_per_query(run, qrels, metrics)
    if not per_query:
        raise LexdrError("no qrels query has a relevant document: nothing to evaluate")
    n = len(per_query)
    means = {m: sum(v[m] for v in per_query.values()) / n for m in metrics}
    means["num_queries"] = n
    return means
