"""Mining quality where labels exist (reporting only: labels never feed back into mining)."""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from lexdr.mining.rules import MineConfig, MinedExample, mine_from_runs, teacher_probs
from lexdr.records import Query, Run

__all__ = ["rule_quality", "soft_target_quality", "compare_rules"]


def rule_quality(examples: list[MinedExample], qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """Coverage (share of labelled queries given a positive), precision of those positives, and the share of
    hard negatives that are in fact relevant (false negatives)."""
    judged = [e for e in examples if e.query_id in qrels]
    with_pos = [e for e in judged if e.positive_ids]
    correct = sum(1 for e in with_pos if qrels[e.query_id].get(e.positive_ids[0], 0) >= 1)
    negs = [(e.query_id, d) for e in judged for d in e.negative_ids]
    false_negs = sum(1 for q, d in negs if qrels[q].get(d, 0) >= 1)
    return {
        "queries": len(judged),
        "coverage": len(with_pos) / len(judged) if judged else 0.0,
        "precision": correct / len(with_pos) if with_pos else 0.0,
        "correct_pairs": correct,
        "negatives_per_query": len(negs) / len(judged) if judged else 0.0,
        "false_negative_rate": false_negs / len(negs) if negs else 0.0,
    }


def soft_target_quality(examples: list[MinedExample], qrels: Mapping[str, Mapping[str, int]],
                        temperature: float) -> dict[str, float]:
    """How good the soft teacher is: gold inside the candidate list, and the teacher's mass on gold."""
    judged = [e for e in examples if e.query_id in qrels]
    if not judged:
        return {}
    recall = mass = top1 = 0.0
    for e in judged:
        gold = qrels[e.query_id]
        probs = teacher_probs(e.teacher_scores, temperature)
        hit = [p for d, p in zip(e.candidate_ids, probs) if gold.get(d, 0) >= 1]
        recall += 1.0 if hit else 0.0
        mass += sum(hit)
        top1 += 1.0 if e.candidate_ids and gold.get(e.candidate_ids[0], 0) >= 1 else 0.0
    n = len(judged)
    return {"candidate_recall": recall / n, "teacher_mass_on_gold": mass / n, "teacher_top1_precision": top1 / n,
            "candidates_per_query": sum(len(e.candidate_ids) for e in judged) / n}


def compare_rules(queries: list[Query], bm25_run: Run, dense_run: Run, qrels, base: MineConfig,
                  rules: list[str]) -> dict[str, dict[str, float]]:
    """Quality of several rules on the same runs (one row per rule)."""
    return {r: rule_quality(mine_from_runs(queries, bm25_run, dense_run, replace(base, rule=r)), qrels) for r in rules}
