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

import logging
import math
import re
from typing import Iterable, Mapping

from lexdr.defaults import DEFAULT_METRICS
from lexdr.errors import LexdrError
from lexdr.records import Hit

__all__ = ["DEFAULT_METRICS", "evaluate", "evaluate_per_query", "trec_order", "parse_metric", "check_run_matches_qrels"]

logger = logging.getLogger(__name__)

_METRIC = re.compile(r"^(MRR|Recall|nDCG)@(\d+)$")


def parse_metric(name: str) -> tuple[str, int]:
    m = _METRIC.match(name)
    if not m:
        raise LexdrError(f"unknown metric {name!r}; use MRR@k, Recall@k or nDCG@k (e.g. {', '.join(DEFAULT_METRICS)})")
    if int(m.group(2)) < 1:
        raise LexdrError(f"metric {name!r}: the cut-off must be at least 1 (fix: e.g. {m.group(1)}@10)")
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
    """Mean of each metric over the qrels queries (see module doc). Adds ``num_queries``.

    A run that shares no query id with the qrels is a :class:`LexdrError` (see :func:`check_run_matches_qrels`).
    """
    metrics = list(metrics)
    check_run_matches_qrels(run, qrels)
    per_query = evaluate_per_query(run, qrels, metrics)
    if not per_query:
        raise LexdrError("no qrels query has a relevant document: nothing to evaluate")
    n = len(per_query)
    means = {m: sum(v[m] for v in per_query.values()) / n for m in metrics}
    means["num_queries"] = n
    return means


def _examples(ids) -> str:
    shown = sorted(ids)[:3]
    return ", ".join(repr(i) for i in shown) + (", ..." if len(ids) > 3 else "")


def check_run_matches_qrels(run: Mapping[str, list[Hit]], qrels: Mapping[str, Mapping[str, int]]) -> None:
    """Refuse to score a run against qrels of another task; warn loudly about a partial match.

    * no query of the run is judged in the qrels: :class:`LexdrError` (every metric would be a silent 0.0000,
      the classic symptom of pairing a run with the wrong qrels);
    * some judged queries are missing from the run: a warning with the count (they score 0, as trec_eval -c);
    * no retrieved document is judged at all, for any query: a warning (a corpus that does not match the qrels,
      e.g. other document ids).
    """
    judged = {q for q, rels in qrels.items() if any(g >= 1 for g in rels.values())}
    in_run = set(run)
    if judged and not judged & in_run:
        raise LexdrError(f"the run and the qrels share no query id (run: {_examples(in_run) or 'empty'}; qrels: "
                         f"{_examples(judged)}): every score would be 0. Are they from the same task and split? "
                         "(fix: pass the qrels of the queries the run was made from)")
    missing = judged - in_run
    if missing:
        logger.warning("%d of %d judged queries are not in the run (e.g. %s); they score 0, as with trec_eval -c",
                       len(missing), len(judged), _examples(missing))
    judged_docs = {d for rels in qrels.values() for d in rels}
    if judged & in_run and not any(h.doc_id in judged_docs for q in judged & in_run for h in run[q]):
        logger.warning("none of the documents the run retrieved for its %d judged queries is judged in the qrels "
                       "(run: %s; qrels: %s): are the run's corpus and the qrels' from the same collection?",
                       len(judged & in_run), _examples({h.doc_id for q in judged & in_run for h in run[q][:1]}),
                       _examples(judged_docs))
