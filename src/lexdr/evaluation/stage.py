"""The pipeline's evaluation stage: fuse the hybrids, score every system on the test queries, write
``metrics.json`` (system -> metric -> mean), the fused runs and ``fusion.json`` (how each hybrid was fused,
with the adaptive hybrids' fitted weights) beside it.

An adaptive hybrid's weights are fitted on the runs of the *unlabeled* queries (the same BM25 and dense runs
mining read; never a label) and then applied to the test queries' runs. :func:`fit_adaptive` is the only
place they are fitted, and it is given runs only: the test qrels are read after every fusion is done.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from lexdr.evaluation.gain import training_gain
from lexdr.evaluation.metrics import evaluate
from lexdr.defaults import DEFAULT_DEPTH, DEFAULT_METRICS
from lexdr.formats import read_qrels, read_run, write_run
from lexdr.formats.files import atomic_write
from lexdr.fusion import FusionConfig, FusionMethod, fit_fusion, fuse_runs
from lexdr.records import Run

if TYPE_CHECKING:
    from lexdr.executors import Executor

__all__ = ["EvaluateInputs", "EvaluateConfig", "evaluate_stage", "fit_adaptive"]


def fit_adaptive(sparse: Run, dense: Run, fusion: FusionConfig | None = None, depth: int = DEFAULT_DEPTH) -> FusionConfig:
    """The adaptive fusion of ``fusion``'s settings (``[fusion] adaptive``, ``confident_fraction`` ...) fitted
    on two runs of unlabeled queries: a config with the chosen (sparse, dense) weights, for later queries."""
    cfg = dataclasses.replace(fusion or FusionConfig(), method=FusionMethod.adaptive, weights=None)
    return fit_fusion(sparse, dense, cfg, depth=depth)


@dataclass(frozen=True)
class EvaluateInputs:
    """What :func:`evaluate_stage` reads: the test qrels, each system's TREC run of the test queries (system
    name -> path) and, to fit the adaptive hybrids on, the systems' runs of the unlabeled queries."""

    qrels: Path
    runs: Mapping[str, Path]
    unlabeled_runs: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluateConfig:
    """What :func:`evaluate_stage` computes: ``metrics``; ``hybrids``, hybrid name -> the systems it fuses with
    ``fusion`` (e.g. ``{"hybrid": ["bm25", "dense-base"]}``); ``adaptive_hybrids``, name -> (sparse system,
    dense system) fused adaptively; every fused run ``depth`` hits deep."""

    metrics: tuple[str, ...] = DEFAULT_METRICS
    hybrids: Mapping[str, Sequence[str]] = field(default_factory=dict)
    adaptive_hybrids: Mapping[str, Sequence[str]] = field(default_factory=dict)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    depth: int = DEFAULT_DEPTH


def evaluate_stage(inputs: EvaluateInputs, config: EvaluateConfig, out_dir: str | Path,
                   executor: "Executor") -> dict[str, dict[str, float]]:
    """Fuse the hybrids and score every system on the test queries: the pipeline's ``evaluate`` stage.

    ==========================  ======  ==========================================================
    file                        r / w   format
    ==========================  ======  ==========================================================
    ``inputs.runs``             read    TREC runs of the test queries, one per system
    ``inputs.unlabeled_runs``   read    TREC runs of the unlabeled queries (the adaptive fit; runs only)
    ``inputs.qrels``            read    TREC qrels, read after every fusion is done
    ``out_dir/run.<name>.trec`` write   each fused run
    ``out_dir/metrics.json``    write   system -> metric -> mean
    ``out_dir/fusion.json``     write   how each hybrid was fused (method, fitted weights, fitted on what)
    ``out_dir/gain.json``       write   what each trained model added over the base encoder, dense alone
                                        and as an adaptive hybrid, in the first metric
    ==========================  ======  ==========================================================

    An adaptive hybrid without unlabeled runs of both its systems is fitted on their test runs themselves
    (still no labels) and ``fusion.json`` says so. Returns ``metrics.json``'s content. Nothing here is sharded:
    ``executor`` is unused."""
    qrels, runs, unlabeled_runs = inputs.qrels, inputs.runs, inputs.unlabeled_runs
    metrics, hybrids, fusion, depth = config.metrics, config.hybrids, config.fusion, config.depth
    adaptive_hybrids = config.adaptive_hybrids
    out = Path(out_dir)
    loaded = {name: read_run(path) for name, path in runs.items()}
    record: dict[str, dict] = {}
    for name, parts in (hybrids or {}).items():
        cfg = fusion or FusionConfig()
        loaded[name] = fuse_runs([loaded[p] for p in parts], cfg, depth=depth, top_k=depth)
        record[name] = {"systems": list(parts), "method": cfg.method.value,
                        "weights": list(cfg.weights) if cfg.weights else None}
    unlabeled = {name: read_run(path) for name, path in (unlabeled_runs or {}).items()
                 if name in {s for parts in (adaptive_hybrids or {}).values() for s in parts}}
    for name, parts in (adaptive_hybrids or {}).items():
        sparse, dense = parts
        on_unlabeled = sparse in unlabeled and dense in unlabeled
        fit_on = (unlabeled[sparse], unlabeled[dense]) if on_unlabeled else (loaded[sparse], loaded[dense])
        fitted = fit_adaptive(*fit_on, fusion, depth=depth)
        loaded[name] = fuse_runs([loaded[sparse], loaded[dense]], fitted, depth=depth, top_k=depth)
        record[name] = {"systems": [sparse, dense], "method": FusionMethod.adaptive.value,
                        "adaptive": fitted.adaptive.value, "weights": list(fitted.weights) if fitted.weights else None,
                        "fitted_on": "unlabeled queries" if on_unlabeled else "test queries (runs only, no labels)",
                        "fit_queries": len(fit_on[0])}
    for name in record:
        write_run(loaded[name], out / f"run.{name}.trec", tag=name)
    gold = read_qrels(qrels)  # read only now: every fusion above is done without it
    results = {name: evaluate(run, gold, list(metrics)) for name, run in loaded.items()}
    with atomic_write(out / "fusion.json") as fh:
        json.dump(record, fh, indent=2)
    with atomic_write(out / "metrics.json") as fh:
        json.dump(results, fh, indent=2)
    gain = training_gain(results, adaptive_hybrids or {}, list(metrics)[0])
    if gain:
        with atomic_write(out / "gain.json") as fh:
            json.dump({"metric": list(metrics)[0], "base": "dense-base", "systems": gain}, fh, indent=2)
    return results
