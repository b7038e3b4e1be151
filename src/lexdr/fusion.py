"""Fusion of runs: reciprocal rank fusion, normalized score interpolation, and adaptive (label-free) weights.
Pure functions over runs.

Equal-weight RRF is only safe when both sides are about as good: fused with a clearly weaker BM25, a strong
dense model loses points (German, issue 13). ``FusionMethod.adaptive`` chooses the sparse/dense weight without
labels; the ways below are measured side by side in ``benchmarks/results/fusion.md``:

``separation`` (default) z-score interpolation, each side weighted by how far the *consensus* top passage (the
               top-1 of the equal-weight z-score fusion) stands out of that side's own list: the mean z-score
               of that passage in the side's run (:func:`separation_estimates`). If each side scores relevant
               passages ``d'`` standard deviations above the rest (Gaussian, equal variances), the best linear
               fusion of the z-scores weighs each side by its ``d'`` (Fisher's discriminant); this is that,
               with the consensus top-1 standing in for the relevant passage. Fitted once on unlabeled queries
               (:func:`fit_fusion`), applied to later ones. A side that is noise gives the consensus passage a
               z-score near 0 and so gets a weight near 0.
``cross``      each side judges the other. A side's *confident* top-1s (largest top-1 margins,
               :func:`top1_margin`; pooled over both sides) are pseudo labels; a side's MRR@10 is estimated as
               the mean reciprocal rank of the *other* side's pseudo labels in its run (:func:`cross_estimates`),
               and the two are interpolated with each side weighted by the other's estimated error. Judged on
               the queries the other side finds easy, both sides look alike; with few queries BM25's larger
               margins tilt it toward BM25 (issue 13: German, 200 queries).
``agreement``  one RRF weight: the grid point whose fusion ranks the pseudo labels highest (:func:`agreement_curve`).
``margin``     per query: each side weighted by its own top-1 margin on that query, nothing fitted.

References: Cormack, Clarke & Büttcher (2009), "Reciprocal rank fusion outperforms Condorcet and individual
rank learning methods" (RRF, k=60).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from lexdr.errors import ConfigError, LexdrError
from lexdr.records import Hit, Run
from lexdr.settings import as_enums, at_least, at_most, setting

logger = logging.getLogger(__name__)

__all__ = ["FusionMethod", "Normalization", "Adaptive", "PseudoLabels", "FusionConfig", "rrf", "interpolate", "fuse", "fuse_runs",
           "normalize_scores", "fit_fusion", "separation_estimates", "cross_estimates", "agreement_curve",
           "top1_margin", "weighted_fusion"]


class FusionMethod(str, enum.Enum):
    rrf = "rrf"
    interpolate = "interpolate"
    adaptive = "adaptive"  # weights chosen without labels (see Adaptive)


class Adaptive(str, enum.Enum):
    """How ``FusionMethod.adaptive`` chooses the sparse/dense weight (no labels either way)."""

    separation = "separation"  # z-score interpolation, each side weighted by the consensus top-1's z-score in it
    cross = "cross"  # one interpolation weight, from each side's estimated MRR judged by the other's confident top-1s
    agreement = "agreement"  # one RRF weight, the grid point whose fusion ranks the confident top-1s highest
    margin = "margin"  # per query, from each side's own top-1 margin on that query


class PseudoLabels(str, enum.Enum):
    """Which top-1s the ``agreement`` fit treats as pseudo labels (margin: :func:`top1_margin`)."""

    pooled = "pooled"  # the confident_fraction of all (query, side) top-1s with the largest margins
    per_side = "per-side"  # the confident_fraction of each side's queries with the largest margins
    weighted = "weighted"  # every top-1, weighted by its margin


class Normalization(str, enum.Enum):
    minmax = "minmax"
    zscore = "zscore"


@dataclass(frozen=True)
class FusionConfig:
    """How a hybrid fuses its retrievers' runs (``lexdr fuse`` options and the pipeline's ``[fusion]``)."""

    method: FusionMethod = setting(FusionMethod.rrf, "rrf | interpolate | adaptive (weights chosen without labels).")
    rrf_k: int = setting(60, "RRF constant (Cormack et al. 2009).")
    alpha: float = setting(0.5, "interpolate: weight of the second (dense) run in [0, 1].")
    normalization: Normalization = setting(Normalization.minmax, "interpolate (and adaptive cross): per-query score "
                                                                 "normalization, minmax | zscore.")
    weights: tuple[float, ...] | None = setting(None, "rrf: one weight per run (None: equal); adaptive: the fitted "
                                                      "(sparse, dense) weights (None: fit on the runs being fused).")
    adaptive: Adaptive = setting(Adaptive.separation, "adaptive: how the weights are chosen, separation (z-score "
                                                      "fusion weighted by each side's separation) | cross | "
                                                      "agreement | margin (lexdr.fusion's docstring).")
    pseudo_labels: PseudoLabels = setting(PseudoLabels.pooled, "adaptive cross/agreement: which top-1s are pseudo "
                                                               "labels, pooled | per-side | weighted.")
    confident_fraction: float = setting(0.3, "adaptive cross/agreement: share of the top-1s taken as pseudo labels.")
    grid_steps: int = setting(20, "adaptive agreement: dense weights tried, 0, 1/steps, ..., 1.")
    margin_depth: int = setting(10, "adaptive cross/agreement/margin: a top-1 margin is measured against this rank.")

    def __post_init__(self) -> None:
        as_enums(self, ("method", "normalization", "adaptive", "pseudo_labels"))
        at_least(self, ("rrf_k",), 1)
        at_least(self, ("alpha",), 0)
        at_most(self, ("alpha", "confident_fraction"), 1)
        at_least(self, ("confident_fraction",), 0, strict=True)
        at_least(self, ("grid_steps", "margin_depth"), 2)
        if self.weights is not None:
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
            if any(w < 0 for w in self.weights) or not any(w > 0 for w in self.weights):
                raise ConfigError(f"fusion weights must be >= 0 and not all 0, got {self.weights}")


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
    if FusionMethod(method) is FusionMethod.adaptive:
        return fuse_runs([sparse, dense], FusionConfig(method=FusionMethod.adaptive, rrf_k=k), depth=depth, top_k=top_k)
    return interpolate(sparse, dense, alpha=alpha, normalization=normalization, depth=depth, top_k=top_k)


# ------------------------------------------------------------------------------------------ adaptive fusion
def top1_margin(hits: list[Hit], depth: int = 10) -> float:
    """How sure a run is of its top passage on one query, scale-free: (s1 - s2) / (s1 - s_depth) in [0, 1].

    Comparable across BM25 and cosine scores (both differences are in the run's own units); 0 where the run
    has fewer than two hits or a flat top list.
    """
    ordered = _top(hits, depth)
    if len(ordered) < 2:
        return 0.0
    span = ordered[0].score - ordered[-1].score
    return (ordered[0].score - ordered[1].score) / span if span > 0 else 0.0


def weighted_fusion(sparse: Run, dense: Run, dense_weight: float | dict[str, float], k: int = 60,
                    depth: int | None = 1000, top_k: int | None = None) -> Run:
    """Two-run RRF with weights (1 - w, w): ``w`` one number, or one per query id (missing: 0.5)."""
    fused: Run = {}
    for qid in sorted(set(sparse) | set(dense)):
        w = dense_weight.get(qid, 0.5) if isinstance(dense_weight, dict) else float(dense_weight)
        fused.update(rrf([{qid: sparse.get(qid, [])}, {qid: dense.get(qid, [])}], k=k, depth=depth,
                         weights=(1.0 - w, w), top_k=top_k))
    return fused


def _rrf_features(sparse: list[Hit], dense: list[Hit], k: int, depth: int | None) -> tuple[list[str], np.ndarray]:
    """The query's candidate doc ids and their (n, 2) RRF contributions 1/(k+rank) from each side (0 if absent)."""
    feats: dict[str, list[float]] = {}
    for side, hits in enumerate((sparse, dense)):
        for rank, h in enumerate(_top(hits, depth), start=1):
            feats.setdefault(h.doc_id, [0.0, 0.0])[side] = 1.0 / (k + rank)
    ids = sorted(feats)
    return ids, np.array([feats[d] for d in ids], dtype=np.float64).reshape(len(ids), 2)


def _pseudo_labels(sparse: Run, dense: Run, cfg: FusionConfig,
                   sides: tuple[int, ...] = (0, 1)) -> list[tuple[str, str, float]]:
    """(query id, doc id, weight): the top-1s of ``sides`` (0 sparse, 1 dense) that count as pseudo labels (see
    :class:`PseudoLabels`; ``pooled`` ranks both sides' margins together, whichever sides are returned)."""
    picks = []  # (margin, side, query id, top-1 doc id)
    for side, run in enumerate((sparse, dense)):
        for qid, hits in run.items():
            if hits:
                picks.append((top1_margin(hits, cfg.margin_depth), side, qid, _top(hits, 1)[0].doc_id))
    picks.sort(key=lambda t: (-t[0], t[1], t[2]))
    if cfg.pseudo_labels is PseudoLabels.weighted:
        return [(q, d, m) for m, s, q, d in picks if m > 0 and s in sides]
    if cfg.pseudo_labels is PseudoLabels.pooled:
        return [(q, d, 1.0) for _, s, q, d in picks[: math.ceil(cfg.confident_fraction * len(picks))] if s in sides]
    out = []
    for side in sides:
        mine = [(q, d, 1.0) for _, s, q, d in picks if s == side]
        out += mine[: math.ceil(cfg.confident_fraction * len(mine))]
    return out


def agreement_curve(sparse: Run, dense: Run, config: FusionConfig | None = None,
                    depth: int | None = 1000) -> list[tuple[float, float]]:
    """(dense weight, agreement) for every weight on the grid: agreement = mean reciprocal rank (cut at 10) of
    the pseudo labels (the sides' confident top-1s) in the weighted RRF fusion. No labels are read."""
    cfg = config or FusionConfig(method=FusionMethod.adaptive)
    pseudo = _pseudo_labels(sparse, dense, cfg)
    grid = np.linspace(0.0, 1.0, cfg.grid_steps + 1)
    mix = np.stack([1.0 - grid, grid])  # (2, n_weights)
    rr = np.zeros(len(grid))
    total = 0.0
    cache: dict[str, tuple[list[str], np.ndarray]] = {}
    for qid, doc, weight in pseudo:
        if qid not in cache:
            cache[qid] = _rrf_features(sparse.get(qid, []), dense.get(qid, []), cfg.rrf_k, depth)
        ids, feats = cache[qid]
        scores = feats @ mix  # (n_docs, n_weights)
        target = scores[ids.index(doc)]
        # rank of the pseudo label: 1 + passages scoring higher (ties: the smaller doc id goes first, as in rrf)
        before = np.array([d < doc for d in ids])
        rank = 1 + (scores > target).sum(axis=0) + ((scores == target) & before[:, None]).sum(axis=0)
        rr += weight * np.where(rank <= 10, 1.0 / rank, 0.0)
        total += weight
    rr /= max(total, 1e-12)
    return [(float(w), float(a)) for w, a in zip(grid, rr)]


def separation_estimates(sparse: Run, dense: Run, depth: int | None = 1000) -> tuple[float, float]:
    """Each side's separation ``d'`` estimated without labels: the mean z-score, in that side's own top-``depth``
    list, of the consensus top passage (top-1 of the equal-weight z-score interpolation of both sides). A passage
    missing from a side's list takes that list's lowest z-score. Queries that one side left empty are skipped.
    Returns (sparse, dense); (0, 0) when no query has hits on both sides."""
    sums, n = np.zeros(2), 0
    for qid in sorted(set(sparse) & set(dense)):
        zs = normalize_scores(_top(sparse[qid], depth), Normalization.zscore)
        zd = normalize_scores(_top(dense[qid], depth), Normalization.zscore)
        if not zs or not zd:
            continue
        floor_s, floor_d = min(zs.values()), min(zd.values())
        # ties: the smaller doc id first, as in interpolate
        top = min(set(zs) | set(zd), key=lambda d: (-(zs.get(d, floor_s) + zd.get(d, floor_d)), d))
        sums += (zs.get(top, floor_s), zd.get(top, floor_d))
        n += 1
    return (float(sums[0] / n), float(sums[1] / n)) if n else (0.0, 0.0)


def cross_estimates(sparse: Run, dense: Run, config: FusionConfig | None = None) -> tuple[float, float]:
    """Each side's MRR@10 estimated without labels: the mean reciprocal rank, in that side's run, of the *other*
    side's pseudo labels (its confident top-1s), smoothed by one pseudo label of reciprocal rank 0.5 (a side
    nobody vouches for is given an even chance). Returns (sparse estimate, dense estimate)."""
    cfg = config or FusionConfig(method=FusionMethod.adaptive)
    sums, counts = [0.5, 0.5], [1.0, 1.0]
    for side, run in enumerate((sparse, dense)):
        for qid, doc, weight in _pseudo_labels(sparse, dense, cfg, sides=(1 - side,)):
            top = [h.doc_id for h in _top(run.get(qid, []), 10)]
            sums[side] += weight * (1.0 / (top.index(doc) + 1) if doc in top else 0.0)
            counts[side] += weight
    return sums[0] / counts[0], sums[1] / counts[1]


def check_same_queries(a: Run | set, b: Run | set, a_name: str, b_name: str, fix: str, warn: bool = True) -> set:
    """The query ids two runs (or a query set and a run) share. None shared: a :class:`LexdrError` (they are
    runs of different queries, and anything made of them would be one side's alone, or nothing); only some
    shared: a warning with the counts (``warn``). A run file lists no query the retriever found nothing for,
    so a few missing ids can be innocent; all of them cannot."""
    ids_a, ids_b = set(a), set(b)
    common = ids_a & ids_b
    if ids_a and ids_b and not common:
        raise LexdrError(f"{a_name} and {b_name} share no query id ({len(ids_a)} and {len(ids_b)} queries, e.g. "
                         f"{sorted(ids_a)[0]!r} and {sorted(ids_b)[0]!r}): they are not about the same queries "
                         f"(fix: {fix})")
    if warn and common and (len(common) < len(ids_a) or len(common) < len(ids_b)):
        logger.warning("WARNING: only %d query ids are in both %s (%d) and %s (%d); %d are in one of them only "
                       "(no hits on the other side, or runs of other queries)", len(common), a_name, len(ids_a),
                       b_name, len(ids_b), len(ids_a ^ ids_b))
    return common


def fit_fusion(sparse_unlabeled: Run, dense_unlabeled: Run, config: FusionConfig | None = None,
               depth: int | None = 1000) -> FusionConfig:
    """Choose the sparse/dense weights from unlabeled queries' runs alone (no qrels) and return them in a
    config (``method=adaptive``, ``weights=(1 - w, w)``) that :func:`fuse_runs` applies to any later queries.

    ``separation`` (default): the weights are the sides' :func:`separation_estimates` (a negative one counts as
    0; equal when both are 0), applied as z-score interpolation weights. ``cross``: ``w`` = the sparse side's
    estimated error share (:func:`cross_estimates`), used as the interpolation weight of the dense side.
    ``agreement``: ``w`` maximizes :func:`agreement_curve` (RRF weights); among equally good weights the one
    nearest 0.5 (equal RRF) wins. ``margin``: nothing to fit, the config is returned as given (weights are chosen
    per query when fusing). The pipeline fits it on the unlabeled queries' runs
    (:func:`lexdr.evaluation.stage.fit_adaptive`).
    """
    cfg = config or FusionConfig(method=FusionMethod.adaptive)
    cfg = dataclasses.replace(cfg, method=FusionMethod.adaptive)
    check_same_queries(sparse_unlabeled, dense_unlabeled, "the sparse run", "the dense run the weights are fitted on",
                       "fit on a sparse and a dense run of the same queries", warn=False)
    if cfg.adaptive is Adaptive.margin:
        return cfg
    if cfg.adaptive is Adaptive.separation:
        d_s, d_d = (max(0.0, v) for v in separation_estimates(sparse_unlabeled, dense_unlabeled, depth))
        w = d_d / (d_s + d_d) if d_s + d_d > 0 else 0.5
        return dataclasses.replace(cfg, weights=(1.0 - w, w))
    if cfg.adaptive is Adaptive.cross:
        q_sparse, q_dense = cross_estimates(sparse_unlabeled, dense_unlabeled, cfg)
        err_s, err_d = 1.0 - q_sparse, 1.0 - q_dense
        w = err_s / (err_s + err_d) if err_s + err_d > 0 else 0.5  # each side weighted by the other's error
        return dataclasses.replace(cfg, weights=(1.0 - w, w))
    curve = agreement_curve(sparse_unlabeled, dense_unlabeled, cfg, depth)
    best = max(a for _, a in curve)
    w = min((w for w, a in curve if a >= best - 1e-12), key=lambda w: (abs(w - 0.5), w))
    return dataclasses.replace(cfg, weights=(1.0 - w, w))


def _margin_weights(sparse: Run, dense: Run, depth: int) -> dict[str, float]:
    """Per query: dense weight = dense margin / (sparse margin + dense margin); 0.5 where both are 0."""
    out = {}
    for qid in set(sparse) | set(dense):
        ms, md = top1_margin(sparse.get(qid, []), depth), top1_margin(dense.get(qid, []), depth)
        out[qid] = md / (ms + md) if ms + md > 0 else 0.5
    return out


def fuse_runs(runs: Sequence[Run], config: FusionConfig | None = None, depth: int | None = 1000,
              top_k: int | None = None) -> Run:
    """Fuse any number of runs as ``config`` says (interpolation takes exactly two: sparse, then dense)."""
    cfg = config or FusionConfig()
    if top_k is not None and top_k < 1 or depth is not None and depth < 1:
        raise ConfigError(f"fusion needs top_k >= 1 and depth >= 1 (got top_k={top_k}, depth={depth})")
    if cfg.method is FusionMethod.rrf:
        return rrf(runs, k=cfg.rrf_k, depth=depth, weights=cfg.weights, top_k=top_k)
    if len(runs) != 2:
        raise ConfigError(f"{cfg.method.value} fusion takes two runs (sparse, dense), got {len(runs)}; use rrf for more")
    if cfg.method is FusionMethod.adaptive:
        if cfg.adaptive is Adaptive.margin:
            return weighted_fusion(runs[0], runs[1], _margin_weights(runs[0], runs[1], cfg.margin_depth),
                                   k=cfg.rrf_k, depth=depth, top_k=top_k)
        if cfg.weights is None:  # not fitted beforehand: fit on these runs (transductive, still label-free)
            cfg = fit_fusion(runs[0], runs[1], cfg, depth)
        if len(cfg.weights) != 2:
            raise ConfigError(f"adaptive fusion has {len(cfg.weights)} weights for 2 runs")
        if cfg.adaptive in (Adaptive.separation, Adaptive.cross):
            alpha = cfg.weights[1] / sum(cfg.weights)
            norm = Normalization.zscore if cfg.adaptive is Adaptive.separation else cfg.normalization
            return interpolate(runs[0], runs[1], alpha=alpha, normalization=norm, depth=depth, top_k=top_k)
        return rrf(runs, k=cfg.rrf_k, depth=depth, weights=cfg.weights, top_k=top_k)
    return interpolate(runs[0], runs[1], alpha=cfg.alpha, normalization=cfg.normalization, depth=depth, top_k=top_k)
