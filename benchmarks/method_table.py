"""The method's results tables from finished `lexdr run` directories (their metrics.json and manifest.json).

    python benchmarks/method_table.py RUN_DIR [RUN_DIR ...] [--stages-of TASK]

Prints, per run directory: MRR@10 / MRR@100 / R@100 of every system on every task's test half, the average
over tasks, the best self-supervised lexdr model's distance to the base encoder, BM25, the RRF hybrid and the
gold-supervised upper bound (where the run has one), and the time and peak memory of each stage for one task
(default: the task with the most test queries) plus the shared training stages.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import read_manifest, read_metrics  # noqa: E402

ORDER = ["bm25", "dense-base", "hybrid", "adaptive-hybrid", "lexdr-r1", "lexdr-gen", "lexdr-r2", "gold-supervised",
         "hybrid-lexdr-r1", "hybrid-lexdr-gen", "hybrid-lexdr-r2", "hybrid-gold-supervised",
         "adaptive-hybrid-lexdr-r1", "adaptive-hybrid-lexdr-gen", "adaptive-hybrid-lexdr-r2",
         "adaptive-hybrid-gold-supervised"]
NAMES = {"bm25": "BM25", "dense-base": "base e5-small", "hybrid": "RRF hybrid (BM25 + base)",
         "lexdr-r1": "lexdr mined-only (round 1)", "lexdr-gen": "lexdr mined + generated",
         "lexdr-r2": "lexdr round 2", "gold-supervised": "gold-supervised",
         "hybrid-lexdr-r1": "RRF BM25 + lexdr-r1", "hybrid-lexdr-gen": "RRF BM25 + lexdr-gen",
         "hybrid-lexdr-r2": "RRF BM25 + lexdr-r2", "hybrid-gold-supervised": "RRF BM25 + gold",
         "adaptive-hybrid": "adaptive hybrid (BM25 + base)"}
HYBRID_OF = {"dense-base": ("hybrid", "adaptive-hybrid")}  # system -> (its RRF hybrid, its adaptive hybrid)
SELF_SUPERVISED = ["lexdr-r1", "lexdr-gen", "lexdr-r2"]


def _systems(metrics: dict) -> list[str]:
    present = set().union(*(set(v) for v in metrics.values()))
    return [s for s in ORDER if s in present] + sorted(present - set(ORDER))


def results_table(metrics: dict, measures=("MRR@10", "MRR@100", "Recall@100")) -> str:
    systems = [s for s in _systems(metrics) if not s.startswith(("hybrid-", "adaptive-hybrid-"))]
    tasks = list(metrics)
    lines = ["| task | " + " | ".join(NAMES.get(s, s) for s in systems) + " |",
             "|---|" + "---:|" * len(systems)]
    avg = {s: [0.0] * len(measures) for s in systems}
    for t in tasks:
        cells = []
        for s in systems:
            vals = [metrics[t][s][m] for m in measures]
            for i, v in enumerate(vals):
                avg[s][i] += v / len(tasks)
            cells.append(" / ".join(f"{v:.4f}" for v in vals))
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines.append("| **average** | " + " | ".join(" / ".join(f"{v:.4f}" for v in avg[s]) for s in systems) + " |")
    return "\n".join(lines)


def distance_table(metrics: dict, measure: str = "MRR@10") -> str:
    have = [s for s in SELF_SUPERVISED if all(s in metrics[t] for t in metrics)]
    gold = all("gold-supervised" in metrics[t] for t in metrics)
    head = ["task", "best self-supervised", measure, "Δ base", "Δ BM25", "Δ RRF hybrid"] + (["Δ gold"] if gold else [])
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    sums = [0.0] * (len(head) - 2)
    for t, m in metrics.items():
        best = max(have, key=lambda s: m[s][measure])
        v = m[best][measure]
        row = [v, v - m["dense-base"][measure], v - m["bm25"][measure], v - m["hybrid"][measure]]
        if gold:
            row.append(v - m["gold-supervised"][measure])
        sums = [a + b / len(metrics) for a, b in zip(sums, row)]
        lines.append(f"| {t} | {best} | " + " | ".join(f"{x:+.4f}" if i else f"{x:.4f}" for i, x in enumerate(row)) + " |")
    lines.append("| **average** | | " + " | ".join(f"{x:+.4f}" if i else f"{x:.4f}" for i, x in enumerate(sums)) + " |")
    return "\n".join(lines)


def hybrid_table(metrics: dict, run: Path, measure: str = "MRR@10") -> str:
    """Before (base) and after (each trained model): the dense system, its RRF and its adaptive hybrid with BM25,
    the adaptive hybrid's fitted dense weight (``<task>/evaluate/fusion.json``) and its distance to the better
    of BM25 and the dense system."""
    lines = ["| task | dense system | BM25 | dense | RRF hybrid | adaptive hybrid | adaptive dense weight | "
             "adaptive − max(BM25, dense) |", "|---|---|" + "---:|" * 6]
    for t, m in metrics.items():
        fusion_path = run / t / "evaluate" / "fusion.json"
        fusion = json.loads(fusion_path.read_text(encoding="utf-8")) if fusion_path.exists() else {}
        for s in [s for s in _systems(metrics) if s == "dense-base" or s in SELF_SUPERVISED + ["gold-supervised"]]:
            rrf, adaptive = HYBRID_OF.get(s, (f"hybrid-{s}", f"adaptive-hybrid-{s}"))
            if s not in m or adaptive not in m:
                continue
            w = (fusion.get(adaptive) or {}).get("weights")
            best = max(m["bm25"][measure], m[s][measure])
            lines.append(f"| {t} | {NAMES.get(s, s)} | {m['bm25'][measure]:.4f} | {m[s][measure]:.4f} | "
                         f"{m[rrf][measure]:.4f} | {m[adaptive][measure]:.4f} | "
                         f"{'' if not w else f'{w[1] / sum(w):.2f}'} | {m[adaptive][measure] - best:+.4f} |")
    return "\n".join(lines)


def stage_table(manifest: dict, task: str) -> str:
    lines = ["| stage | seconds | peak RSS (MB) | peak GPU memory (MB) |", "|---|---:|---:|---:|"]
    for name, rec in manifest["stages"].items():
        if name.startswith(task + "/") or "/" not in name:
            gpu = rec.get("peak_gpu_mb")
            lines.append(f"| {name} | {rec['seconds']:.1f} | {rec['peak_rss_mb']:.0f} | "
                         f"{'' if gpu is None else f'{gpu:.0f}'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--stages-of", default=None, help="task whose stages to time (default: most test queries)")
    args = ap.parse_args()
    for run in args.runs:
        metrics = read_metrics(run)
        manifest = read_manifest(run)
        env = manifest.get("environment", {})
        print(f"## {run}\n")
        print(f"Machine: {env.get('gpu') or 'CPU only'}, {env.get('cpus')} CPUs, Python {env.get('python')}, "
              f"versions {env.get('versions')}\n")
        print("MRR@10 / MRR@100 / R@100 on each task's test half:\n")
        print(results_table(metrics) + "\n")
        if any("adaptive-hybrid" in m for m in metrics.values()):
            print("Hybrids with BM25, before (base) and after training, MRR@10:\n")
            print(hybrid_table(metrics, run) + "\n")
        print("Best self-supervised lexdr model per task (MRR@10) and its distances:\n")
        print(distance_table(metrics) + "\n")
        task = args.stages_of or max(metrics, key=lambda t: metrics[t]["bm25"].get("num_queries", 0))
        print(f"Stages of {task} and the shared training stages (time, peak memory):\n")
        print(stage_table(manifest, task) + "\n")


if __name__ == "__main__":
    main()
