"""What training added: per trained model, its dense score minus the base encoder's, and — the number a user
deploying a hybrid cares about — its adaptive hybrid with BM25 minus the base encoder's adaptive hybrid.

Read from one language's ``metrics.json`` (system -> metric -> mean) and the adaptive hybrids' parts (name ->
(sparse system, dense system), as the evaluation stage fuses them). Pure: no files, no labels beyond the
metrics already computed.
"""

from __future__ import annotations

from typing import Mapping, Sequence

__all__ = ["PAID_OFF", "training_gain", "gain_verdict"]

# A trained model "paid off" on a language when its adaptive hybrid beats the base encoder's by at least this
# much MRR@10 (seed noise on a 600-question dev task is about +-0.007; see benchmarks/results/method.md).
PAID_OFF = 0.005


def training_gain(metrics: Mapping[str, Mapping[str, float]], adaptive_hybrids: Mapping[str, Sequence[str]],
                  metric: str, base: str = "dense-base") -> dict[str, dict[str, float]]:
    """trained system -> {"dense": Δ over ``base``, "hybrid": Δ of its adaptive hybrid over ``base``'s,
    "dense_value", "hybrid_value"}, for every adaptive hybrid whose dense side is not ``base``. Empty when the
    base encoder's adaptive hybrid was not scored."""
    base_hybrid = next((h for h, (_, d) in adaptive_hybrids.items() if d == base), None)
    if base_hybrid is None or base_hybrid not in metrics or base not in metrics:
        return {}
    out = {}
    for name, (_, dense) in adaptive_hybrids.items():
        if dense == base or dense not in metrics or name not in metrics:
            continue
        out[dense] = {"dense": metrics[dense][metric] - metrics[base][metric],
                      "hybrid": metrics[name][metric] - metrics[base_hybrid][metric],
                      "dense_value": metrics[dense][metric], "hybrid_value": metrics[name][metric]}
    return out


def gain_verdict(gains: Mapping[str, Mapping[str, Mapping[str, float]]], metric: str) -> str:
    """One sentence: did training pay off on this corpus? ``gains``: language -> :func:`training_gain`."""
    best: dict[str, tuple[str, float]] = {}
    for lang, per_system in gains.items():
        if per_system:
            system, g = max(per_system.items(), key=lambda kv: kv[1]["hybrid"])
            best[lang] = (system, g["hybrid"])
    if not best:
        return "No trained model was scored beside the base encoder's adaptive hybrid, so the run cannot say " \
               "whether training paid off."
    mean = sum(v for _, v in best.values()) / len(best)
    paid = sorted(l for l, (_, v) in best.items() if v >= PAID_OFF)
    lost = sorted(l for l, (_, v) in best.items() if v <= -PAID_OFF)
    where = f"it paid off on {', '.join(paid)}" if paid else "it paid off on no language"
    if lost:
        where += f" and cost {', '.join(lost)}"
    verdict = "Training paid off" if mean >= PAID_OFF and not lost else "Training did not pay off"
    return (f"{verdict} on this corpus: the best trained model's adaptive hybrid is {mean:+.4f} {metric} over the "
            f"base encoder's adaptive hybrid on average ({where}; a gain counts at {PAID_OFF:+.3f} or more).")
