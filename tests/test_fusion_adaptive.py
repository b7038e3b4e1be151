"""Adaptive (label-free) fusion: on synthetic runs with known answers, the fused hybrid never falls below its
better half, and the weights are fitted from runs alone."""

from __future__ import annotations

import inspect
import random

import pytest

from lexdr.errors import ConfigError
from lexdr.evaluation import evaluate
from lexdr.fusion import (Adaptive, FusionConfig, FusionMethod, agreement_curve, cross_estimates, fit_fusion, fuse,
                          fuse_runs, interpolate, rrf, separation_estimates, top1_margin)
from lexdr.records import Hit, Run
from fixtures.synthetic_runs import mostly_right

N_DOCS = 60


def _perfect(qids: list[str], rng: random.Random) -> Run:
    """Gold doc (g<qid>) first with a clear margin, then the other docs in random order."""
    run = {}
    for q in qids:
        others = [f"d{i}" for i in range(N_DOCS)]
        rng.shuffle(others)
        run[q] = [Hit(f"g{q}", 10.0)] + [Hit(d, 5.0 - i * 0.05) for i, d in enumerate(others)]
    return run


def _noise(qids: list[str], rng: random.Random) -> Run:
    """Random scores over the docs; the gold doc somewhere in the list at a random rank."""
    run = {}
    for q in qids:
        docs = [f"d{i}" for i in range(N_DOCS)] + [f"g{q}"]
        run[q] = sorted((Hit(d, rng.random()) for d in docs), key=lambda h: (-h.score, h.doc_id))
    return run


def _mostly_right(qids: list[str], rng: random.Random, p: float) -> Run:
    return mostly_right(qids, rng, p, N_DOCS, gold_within=9)


def _qrels(qids: list[str]) -> dict[str, dict[str, int]]:
    return {q: {f"g{q}": 1} for q in qids}


def _mrr(run: Run, qids: list[str]) -> float:
    return evaluate(run, _qrels(qids), ["MRR@10"])["MRR@10"]


@pytest.mark.parametrize("perfect_side", ["sparse", "dense"])
def test_adaptive_follows_the_perfect_side_against_noise(perfect_side):
    rng = random.Random(7)
    unl = [f"u{i}" for i in range(80)]
    test = [f"t{i}" for i in range(80)]
    good = {**_perfect(unl, rng), **_perfect(test, rng)}
    bad = {**_noise(unl, rng), **_noise(test, rng)}
    sparse, dense = (good, bad) if perfect_side == "sparse" else (bad, good)
    sub = lambda run, ids: {q: run[q] for q in ids}  # noqa: E731

    fitted = fit_fusion(sub(sparse, unl), sub(dense, unl))
    assert fitted.method is FusionMethod.adaptive and fitted.weights is not None
    w_dense = fitted.weights[1]
    assert (w_dense > 0.5) if perfect_side == "dense" else (w_dense < 0.5)

    best = max(_mrr(sub(sparse, test), test), _mrr(sub(dense, test), test))
    assert best == pytest.approx(1.0)
    adaptive = fuse_runs([sub(sparse, test), sub(dense, test)], fitted, top_k=10)
    assert _mrr(adaptive, test) >= best - 0.002
    # equal RRF does lose here: the test would mean nothing if it did not
    assert _mrr(rrf([sub(sparse, test), sub(dense, test)], top_k=10), test) < best - 0.002
    # the per-query margin variant leans to the confident side query by query: better than equal RRF here,
    # short of the fitted weight (a noise run is sometimes confident by chance)
    margin = fuse_runs([sub(sparse, test), sub(dense, test)],
                       FusionConfig(method="adaptive", adaptive=Adaptive.margin), top_k=10)
    assert _mrr(margin, test) > _mrr(rrf([sub(sparse, test), sub(dense, test)], top_k=10), test) + 0.1


def test_adaptive_stays_near_equal_when_both_sides_are_alike():
    rng = random.Random(3)
    qids = [f"q{i}" for i in range(200)]
    a, b = _mostly_right(qids, rng, 0.6), _mostly_right(qids, rng, 0.6)
    w = fit_fusion(a, b).weights[1]
    assert 0.25 <= w <= 0.75
    fused = fuse_runs([a, b], FusionConfig(method="adaptive"), top_k=10)  # fitted on the runs themselves
    assert _mrr(fused, qids) >= max(_mrr(a, qids), _mrr(b, qids)) - 0.002


def test_fit_reads_no_labels_and_is_deterministic():
    params = list(inspect.signature(fit_fusion).parameters)
    assert params[:2] == ["sparse_unlabeled", "dense_unlabeled"]
    assert not any("qrel" in p or "label" in p.replace("unlabeled", "") for p in params)
    rng = random.Random(1)
    qids = [f"q{i}" for i in range(50)]
    s, d = _mostly_right(qids, rng, 0.4), _mostly_right(qids, rng, 0.8)
    assert fit_fusion(s, d) == fit_fusion(s, d)
    agreement = FusionConfig(method="adaptive", adaptive=Adaptive.agreement)
    curve = agreement_curve(s, d, agreement)
    assert len(curve) == FusionConfig().grid_steps + 1 and curve[0][0] == 0.0 and curve[-1][0] == 1.0
    # the fitted weight is the curve's best (the tie nearest 0.5)
    best = max(a for _, a in curve)
    assert dict(curve)[fit_fusion(s, d, agreement).weights[1]] == pytest.approx(best)
    # the better side (right 80% vs 40%) is estimated better and weighted more, by the default and by cross
    q_s, q_d = cross_estimates(s, d)
    assert q_d > q_s and fit_fusion(s, d, FusionConfig(method="adaptive", adaptive="cross")).weights[1] > 0.5
    d_s, d_d = separation_estimates(s, d)
    assert d_d > d_s and fit_fusion(s, d).weights[1] > 0.5


def test_separation_is_the_consensus_top1s_mean_z_score():
    # q1: the sides agree on "a"; q2: the consensus top-1 (largest z-score sum) is "x", which the dense side
    # ranks first and the sparse side second
    s = {"q1": [Hit("a", 9.0), Hit("b", 3.0), Hit("c", 0.0)], "q2": [Hit("y", 3.0), Hit("x", 2.5), Hit("z", 0.0)]}
    d = {"q1": [Hit("a", 0.9), Hit("c", 0.5), Hit("b", 0.4)], "q2": [Hit("x", 0.9), Hit("y", 0.1), Hit("z", 0.0)]}
    z = lambda vals, v: (v - sum(vals) / 3) / (sum((u - sum(vals) / 3) ** 2 for u in vals) / 3) ** 0.5  # noqa: E731
    want_s = (z([9, 3, 0], 9) + z([3, 2.5, 0], 2.5)) / 2
    want_d = (z([0.9, 0.5, 0.4], 0.9) + z([0.9, 0.1, 0.0], 0.9)) / 2
    assert separation_estimates(s, d) == pytest.approx((want_s, want_d))
    w = fit_fusion(s, d).weights
    assert w == pytest.approx((want_s / (want_s + want_d), want_d / (want_s + want_d)))
    # a query one side left empty says nothing; no query with both sides: equal weights
    assert separation_estimates({**s, "q3": []}, {**d, "q3": [Hit("a", 1.0)]}) == pytest.approx((want_s, want_d))
    assert fit_fusion({"q": []}, {"q": [Hit("a", 1.0)]}).weights == (0.5, 0.5)


def test_fitted_weights_equal_weighted_rrf_and_cli_entry():
    s = {"q": [Hit("a", 3.0), Hit("b", 2.0), Hit("c", 1.0)]}
    d = {"q": [Hit("c", 0.9), Hit("b", 0.5), Hit("a", 0.1)]}
    cfg = FusionConfig(method="adaptive", adaptive="agreement", weights=(0.2, 0.8))
    assert fuse_runs([s, d], cfg) == rrf([s, d], weights=(0.2, 0.8))
    separation = FusionConfig(method="adaptive", weights=(0.2, 0.8))  # the default interpolates z-scores
    assert fuse_runs([s, d], separation) == interpolate(s, d, alpha=0.8, normalization="zscore")
    cross = FusionConfig(method="adaptive", adaptive="cross", weights=(0.2, 0.8))  # cross: [fusion] normalization
    assert fuse_runs([s, d], cross) == interpolate(s, d, alpha=0.8)
    assert {h.doc_id for h in fuse(s, d, "adaptive")["q"]} == {"a", "b", "c"}
    with pytest.raises(ConfigError):
        fuse_runs([s, d, d], cfg)


def test_top1_margin_and_bad_settings():
    assert top1_margin([Hit("a", 1.0), Hit("b", 0.5), Hit("c", 0.0)], depth=3) == pytest.approx(0.5)
    assert top1_margin([Hit("a", 1.0)]) == 0.0
    assert top1_margin([Hit("a", 1.0), Hit("b", 1.0)]) == 0.0
    for bad in ({"confident_fraction": 0.0}, {"grid_steps": 1}, {"weights": (0.0, 0.0)}, {"adaptive": "nope"}):
        with pytest.raises((ConfigError, ValueError)):
            FusionConfig(method="adaptive", **bad)
