"""Fusion of runs: reciprocal rank fusion and normalized score interpolation. Pure functions over runs.

References: Cormack, Clarke & Büttcher (2009), "Reciprocal rank fusion outperforms Condorcet and individual
rank learning methods" (RRF, k=60).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Sequence

from lexdr.errors import ConfigError
from lexdr.records import Hit, Run

__all__ = ["FusionMethod", "Normalization", "FusionConfig", "rrf", "interpolate", "fuse", "fuse_runs", "normalize_scores"]


class FusionMethod(str, enum.Enum):
    rrf = "rrf"
    interpolate = "interpolate"


class Normalization(str, enum.Enum):
    minmax = "minmax"
    zscore = "zscore"


@dataclass(frozen=True)
class FusionConfig:
    """How a hybrid fuses its retrievers' runs (``lexdr fuse`` options and the pipeline's ``[fusion]``)."""

    method: FusionMethod = FusionMethod.rrf  # rrf | interpolate
    rrf_k: int = 60  # RRF constant (Cormack et al. 2009)
    alpha: float = 0.5  # interpolate: weight of the second (dense) run in [0, 1]
    normalization: Normalization = Normalization.minmax  # interpolate: per-query score normalization
    weights: tuple[float, ...] | None = None  # rrf: one weight per run (None: equal)

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", FusionMethod(self.method))
        object.__setattr__(self, "normalization", Normalization(self.normalization))
        if self.rrf_k < 1:
            raise ConfigError(f"rrf_k must be >= 1, got {self.rrf_k}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.weights is not None:
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))


def _top(hits: list[Hit], depth: int | None) -> list[Hit]:
    ordered = sorted(hits, key=lambda h: (-h.score, h.doc_id))
    return ordered[:depth] if depth else ordered


def rrf(runs: Sequence[Run], k: int = 60, depth: int | None = 1000, weights: Sequence[float] | None = None,
        top_k: int | None = None) -> Run:
    """Reciprocal rank fusion: score(d) = sum_i w_i / (k + rank_i(d)), ranks 1-based, each run cut at ``depth``."""
    weights = list(weights) if weights is not None else [1.0] * len(runs)
    if len(weights) != len(runs):
        raise ConfigError(f"{len(weights)} weights for {len(runs)} runs")
    fused: Run = {}
    for qid in sorted(set().union(*runs)):
        scores: dict[str, float] = {}
        for run, w in zip(runs, weights):
            for rank, h in enumerate(_top(run.get(qid, []), depth), start=1):
                scores[h.doc_id] = scores.get(h.doc_id, 0.0) + w / (k + rank)
        hits = sorted((Hit(d, s) for d, s in scores.items()), key=lambda h: (-h.score, h.doc_id))
        fused[qid] = hits[:top_k] if top_k else hits
    return fused


def normalize_scores(hits: list[Hit], method: Normalization | str = Normalization.minmax) -> dict[str, float]:
    """Per-query score normalization; a constant list maps to 0 (it carries no preference)."""
    if not hits:
        return {}
    vals = [h.score for h in hits]
    if Normalization(method) is Normalization.minmax:
        lo, hi = min(vals), max(vals)
        span = hi - lo
        return {h.doc_id: (h.score - lo) / span if span > 0 else 0.0 for h in hits}
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
    return {h.doc_id: (h.score - mean) / std if std > 0 else 0.0 for h in hits}


def interpolate(sparse: Run, dense: Run, alpha: float = 0.5, normalization: Normalization | str = "minmax",
                depth: int | None = 1000, top_k: int | None = None) -> Run:
    """score(d) = alpha * norm(dense)(d) + (1 - alpha) * norm(sparse)(d).

    A document missing from one run takes that run's lowest normalized score for the query (it was not
    retrieved, so it can be no better than the last retrieved document).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], got {alpha}")
    fused: Run = {}
    for qid in sorted(set(sparse) | set(dense)):
        ns = normalize_scores(_top(sparse.get(qid, []), depth), normalization)
        nd = normalize_scores(_top(dense.get(qid, []), depth), normalization)
        floor_s = min(ns.values(), default=0.0)
        floor_d = min(nd.values(), default=0.0)
        scores = {d: alpha * nd.get(d, floor_d) + (1 - alpha) * ns.get(d, floor_s) for d in set(ns) | set(nd)}
        hits = sorted((Hit(d, s) for d, s in scores.items()), key=lambda h: (-h.score, h.doc_id))
        fused[qid] = hits[:top_k] if top_k else hits
    return fused


def fuse(sparse: Run, dense: Run, method: FusionMethod | str = FusionMethod.rrf, *, k: int = 60, alpha: float = 0.5,
         normalization: Normalization | str = "minmax", depth: int | None = 1000, top_k: int | None = None) -> Run:
    """Fuse a sparse and a dense run with ``method`` (the CLI's entry point)."""
    if FusionMethod(method) is FusionMethod.rrf:
        return rrf([sparse, dense], k=k, depth=depth, top_k=top_k)
    return interpolate(sparse, dense, alpha=alpha, normalization=normalization, depth=depth, top_k=top_k)


def fuse_runs(runs: Sequence[Run], config: FusionConfig | None = None, depth: int | None = 1000,
              top_k: int | None = None) -> Run:
    """Fuse any number of runs as ``config`` says (interpolation takes exactly two: sparse, then dense)."""
    cfg = config or FusionConfig()
    if cfg.method is FusionMethod.rrf:
        return rrf(runs, k=cfg.rrf_k, depth=depth, weights=cfg.weights, top_k=top_k)
    if len(runs) != 2:
        raise ConfigError(f"interpolation fuses two runs (sparse, dense), got {len(runs)}; use rrf for more")
    return interpolate(runs[0], runs[1], alpha=cfg.alpha, normalization=cfg.normalization, depth=depth, top_k=top_k)
