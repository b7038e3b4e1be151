"""The pipeline's evaluation stage: fuse the hybrids, score every system on the test queries, write
``metrics.json`` (system -> metric -> mean) and the fused runs beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

from lexdr.evaluation.metrics import evaluate
from lexdr.formats import read_qrels, read_run, write_run
from lexdr.formats.files import atomic_write
from lexdr.fusion import FusionConfig, fuse_runs

__all__ = ["evaluate_stage"]


def evaluate_stage(qrels: str | Path, runs: Mapping[str, str | Path], out_dir: str | Path, metrics: Sequence[str],
                   hybrids: Mapping[str, Sequence[str]] | None = None, fusion: FusionConfig | None = None,
                   depth: int = 100) -> dict[str, dict[str, float]]:
    """Score each run file in ``runs`` (system name -> TREC run) against ``qrels``.

    ``hybrids``: hybrid name -> the systems it fuses (e.g. ``{"hybrid": ["bm25", "dense-base"]}``), fused with
    ``fusion`` to ``depth`` hits; each fused run is written to ``out_dir/run.<name>.trec`` and scored too.
    """
    out = Path(out_dir)
    gold = read_qrels(qrels)
    loaded = {name: read_run(path) for name, path in runs.items()}
    for name, parts in (hybrids or {}).items():
        loaded[name] = fuse_runs([loaded[p] for p in parts], fusion, depth=depth, top_k=depth)
        write_run(loaded[name], out / f"run.{name}.trec", tag=name)
    results = {name: evaluate(run, gold, list(metrics)) for name, run in loaded.items()}
    with atomic_write(out / "metrics.json") as fh:
        json.dump(results, fh, indent=2)
    return results
