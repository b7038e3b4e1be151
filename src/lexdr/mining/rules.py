"""Mining rules: which candidates become pseudo positives, which become hard negatives, and with what weight.

Every query gets a *candidate list* (the union of both retrievers' top ``n_candidates_each``) with a soft
teacher score ``w_bm25 * z(BM25) + w_dense * z(dense)``; training can distil that distribution directly (the
team measured soft targets to beat hard labels). On top, a *rule* picks hard positives:

=================  =====================================================================================
rule               pseudo positive
=================  =====================================================================================
``dense-top1``     the dense model's top passage (no agreement needed)
``bm25-top1``      BM25's top passage
``fused-top1``     the top passage of the teacher score (both retrievers, always answers)
``agree@k``        the best passage (teacher score) that is in *both* top-k lists; no positive if none is
=================  =====================================================================================

Hard negatives are passages one retriever ranks in its top ``neg_depth`` while the other ranks them below
``neg_other_min_rank`` (or not at all), never a positive and never within ``neg_teacher_margin`` teacher
points of the positive: where both retrievers like a passage it is more likely an unlabeled positive than
a negative.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property

from lexdr.defaults import DEFAULT_DEPTH
from lexdr.errors import ConfigError
from lexdr.mining.candidates import Candidate, candidate_table
from lexdr.records import Query, Run
from lexdr.settings import at_least, setting, to_plain

__all__ = ["RULES", "RuleKind", "MineConfig", "MinedExample", "mine_from_runs", "teacher_probs", "parse_rule"]

RULES = ("dense-top1", "bm25-top1", "fused-top1", "agree@k")
_AGREE = re.compile(r"^agree@(\d+)$")


class RuleKind(str, enum.Enum):
    """How a pseudo positive is picked (``agree`` takes a depth: ``agree@3``)."""

    dense_top1 = "dense-top1"
    bm25_top1 = "bm25-top1"
    fused_top1 = "fused-top1"
    agree = "agree"


def parse_rule(rule: str) -> tuple[RuleKind, int]:
    """``"agree@3"`` -> (RuleKind.agree, 3); ``"fused-top1"`` -> (RuleKind.fused_top1, 1)."""
    m = _AGREE.match(rule)
    if m and int(m.group(1)) >= 1:
        return RuleKind.agree, int(m.group(1))
    if rule in ("dense-top1", "bm25-top1", "fused-top1"):
        return RuleKind(rule), 1
    raise ConfigError(f"unknown mining rule {rule!r}; use one of dense-top1, bm25-top1, fused-top1, agree@K "
                      "(e.g. agree@3)")


@dataclass(frozen=True)
class MineConfig:
    """How to mine. Defaults are the measured choice (see docs/mining.md)."""

    rule: str = setting("agree@3", "Pseudo positive rule: agree@K | fused-top1 | dense-top1 | bm25-top1.")
    depth: int = setting(DEFAULT_DEPTH, "Retrieval depth of each retriever; the z-scores are taken over this list.")
    n_candidates_each: int = setting(4, "Soft-target candidates: the union of each retriever's top-n (<= 2n passages).")
    w_bm25: float = setting(1.0, "Weight of BM25's z-score in the teacher score.")
    w_dense: float = setting(1.0, "Weight of the dense z-score in the teacher score.")
    teacher_temperature: float = setting(0.5, "Softmax temperature over teacher scores (z units); training "
                                              "distils this distribution.")
    n_negatives: int = setting(4, "Hard negatives per query (from disagreement).")
    neg_depth: int = setting(10, "A hard negative is in one retriever's top neg_depth ...")
    neg_other_min_rank: int = setting(30, "... and below this rank (or absent) in the other's.")
    neg_teacher_margin: float = setting(1.0, "Never a negative within this many teacher points of the positive.")

    def __post_init__(self) -> None:
        parse_rule(self.rule)
        at_least(self, ("n_candidates_each",), 1)
        at_least(self, ("depth",), self.n_candidates_each, note=" (n_candidates_each)")
        at_least(self, ("n_negatives", "neg_depth", "neg_other_min_rank"), 0)
        at_least(self, ("teacher_temperature",), 0, strict=True)

    @cached_property
    def parsed_rule(self) -> tuple[RuleKind, int]:
        """The rule, parsed once (not once per query)."""
        return parse_rule(self.rule)

    def to_dict(self) -> dict:
        return to_plain(self)


@dataclass
class MinedExample:
    """One mined training example. Serialised as one readable JSONL line."""

    query_id: str
    query: str
    rule: str
    positive_ids: list[str]
    positive_confidence: list[float]
    negative_ids: list[str]
    negative_sources: list[str]  # "bm25-only" | "dense-only"
    candidate_ids: list[str]  # soft-target candidates, in teacher order
    teacher_scores: list[float]  # w_bm25*z(BM25) + w_dense*z(dense), aligned with candidate_ids
    candidates: list[dict] = field(default_factory=list)  # ranks and scores from both retrievers

    def to_dict(self) -> dict:
        return asdict(self)


def teacher_probs(scores: list[float], temperature: float) -> list[float]:
    if not scores:
        return []
    m = max(scores)
    exps = [math.exp((s - m) / temperature) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _teacher(c: Candidate, cfg: MineConfig) -> float:
    return cfg.w_bm25 * c.bm25_z + cfg.w_dense * c.dense_z


def _rank_or_inf(r: int | None) -> float:
    return float(r) if r is not None else math.inf


def _pick_positive(table: dict[str, Candidate], cfg: MineConfig) -> str | None:
    kind, k = cfg.parsed_rule
    by_teacher = sorted(table.values(), key=lambda c: (-_teacher(c, cfg), c.doc_id))
    if kind is RuleKind.dense_top1:
        return next((c.doc_id for c in table.values() if c.dense_rank == 1), None)
    if kind is RuleKind.bm25_top1:
        return next((c.doc_id for c in table.values() if c.bm25_rank == 1), None)
    if kind is RuleKind.fused_top1:
        return by_teacher[0].doc_id if by_teacher else None
    agreeing = [c for c in by_teacher if _rank_or_inf(c.bm25_rank) <= k and _rank_or_inf(c.dense_rank) <= k]
    return agreeing[0].doc_id if agreeing else None


def _pick_negatives(table: dict[str, Candidate], positive: str | None, cfg: MineConfig) -> list[tuple[str, str]]:
    pos_score = _teacher(table[positive], cfg) if positive else math.inf
    found: list[tuple[float, str, str]] = []
    for c in table.values():
        if c.doc_id == positive or _teacher(c, cfg) > pos_score - cfg.neg_teacher_margin:
            continue
        b, d = _rank_or_inf(c.bm25_rank), _rank_or_inf(c.dense_rank)
        if b <= cfg.neg_depth and d > cfg.neg_other_min_rank:
            found.append((b, c.doc_id, "bm25-only"))
        elif d <= cfg.neg_depth and b > cfg.neg_other_min_rank:
            found.append((d, c.doc_id, "dense-only"))
    # Alternate sources so both retrievers' blind spots are represented, best-ranked first within each.
    by_src = {s: sorted(x for x in found if x[2] == s) for s in ("bm25-only", "dense-only")}
    out: list[tuple[str, str]] = []
    while len(out) < cfg.n_negatives and (by_src["bm25-only"] or by_src["dense-only"]):
        for s in ("dense-only", "bm25-only"):
            if by_src[s] and len(out) < cfg.n_negatives:
                _, doc_id, src = by_src[s].pop(0)
                out.append((doc_id, src))
    return out


def mine_query(query: Query, bm25_hits, dense_hits, cfg: MineConfig) -> MinedExample:
    table = candidate_table(bm25_hits, dense_hits, cfg.depth)
    n = cfg.n_candidates_each
    cand = [c for c in table.values()
            if _rank_or_inf(c.bm25_rank) <= n or _rank_or_inf(c.dense_rank) <= n]
    cand.sort(key=lambda c: (-_teacher(c, cfg), c.doc_id))
    scores = [_teacher(c, cfg) for c in cand]
    probs = dict(zip((c.doc_id for c in cand), teacher_probs(scores, cfg.teacher_temperature)))
    positive = _pick_positive(table, cfg)
    negatives = _pick_negatives(table, positive, cfg)
    return MinedExample(
        query_id=query.query_id, query=query.text, rule=cfg.rule,
        positive_ids=[positive] if positive else [],
        positive_confidence=[round(probs.get(positive, 0.0), 6)] if positive else [],
        negative_ids=[d for d, _ in negatives], negative_sources=[s for _, s in negatives],
        candidate_ids=[c.doc_id for c in cand], teacher_scores=[round(s, 6) for s in scores],
        candidates=[c.to_dict() for c in cand],
    )


def mine_from_runs(queries: list[Query], bm25_run: Run, dense_run: Run, cfg: MineConfig) -> list[MinedExample]:
    """Mine every query from its two runs (pure: no I/O, no model)."""
    return [mine_query(q, bm25_run.get(q.query_id, []), dense_run.get(q.query_id, []), cfg) for q in queries]
