"""Teacher variants toward "dense lexdr >= BM25" on FacQA (issue 13), measured on the teacher, not on a student.

The student imitates the soft teacher (w_bm25 z(BM25) + w_dense z(dense), softmax at teacher_temperature over
the union of both retrievers' top-n), and a student does not beat its teacher. This script measures, on each
task's *unlabeled* half (labels read only to score the teacher), how the teacher changes with:

* a lower teacher temperature (sharper targets; the top-1 is unchanged, the mass on it grows),
* a higher BM25 weight everywhere,
* a higher BM25 weight only on queries where BM25's and the dense run's top-1s disagree.

    PYTHONPATH=src python benchmarks/teacher_variants.py --cache /tmp/h13 --tasks facqa-id xquad-r-de

Runs are those of ``benchmarks/fusion.py prepare`` (BM25 and base e5-small at 192 tokens, k 100, whole
unlabeled half). Training a student on each variant is the real test; this is the cheap part.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from lexdr.formats import read_run
from lexdr.mining import MineConfig, mine_from_runs
from lexdr.mining.stats import soft_target_quality
from lexdr.tasks import load_dev_task

# (name, teacher temperature, BM25 weight everywhere, BM25 weight where the top-1s disagree or None)
VARIANTS = [("default (T 0.5, w 1)", 0.5, 1.0, None), ("T 0.25", 0.25, 1.0, None), ("T 0.1", 0.1, 1.0, None),
            ("w_bm25 1.5", 0.5, 1.5, None), ("w_bm25 2", 0.5, 2.0, None),
            ("w_bm25 1.5 where top-1s disagree", 0.5, 1.0, 1.5), ("w_bm25 2 where top-1s disagree", 0.5, 1.0, 2.0),
            ("w_bm25 2 where they disagree, T 0.25", 0.25, 1.0, 2.0)]


def _top1(hits) -> str | None:
    return min(hits, key=lambda h: (-h.score, h.doc_id)).doc_id if hits else None


def measure(task: str, cache: Path, n_each: int) -> list[dict]:
    t = load_dev_task(task)
    queries = t.queries_of("unlabeled")
    qrels = t.qrels_of("unlabeled")
    bm25 = read_run(cache / "runs" / task / "bm25.unlabeled.trec")
    dense = read_run(cache / "runs" / task / "dense-base.unlabeled.trec")
    disagree = {q.query_id for q in queries if _top1(bm25.get(q.query_id, [])) != _top1(dense.get(q.query_id, []))}
    base = MineConfig(rule="agree@3", n_candidates_each=n_each)
    rows = []
    for name, temp, w, w_dis in VARIANTS:
        cfg = dataclasses.replace(base, teacher_temperature=temp, w_bm25=w)
        if w_dis is None:
            examples = mine_from_runs(queries, bm25, dense, cfg)
        else:
            hard = dataclasses.replace(cfg, w_bm25=w_dis)
            examples = [mine_from_runs([q], bm25, dense, hard if q.query_id in disagree else cfg)[0] for q in queries]
        q = soft_target_quality(examples, qrels, temp)
        rows.append({"task": task, "variant": name, "queries": len(queries), "disagree": len(disagree) / len(queries),
                     **q})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--tasks", nargs="+", default=["facqa-id", "xquad-r-de"])
    ap.add_argument("--n-candidates-each", type=int, default=4, help="soft candidates: union of both top-n (GPU runs: 4)")
    args = ap.parse_args(argv)
    print("| task | variant | unlabeled queries | top-1s disagree | teacher top-1 precision | teacher mass on gold | "
          "gold among candidates |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for task in args.tasks:
        for r in measure(task, args.cache, args.n_candidates_each):
            print(f"| {r['task']} | {r['variant']} | {r['queries']} | {r['disagree']:.3f} | "
                  f"{r['teacher_top1_precision']:.3f} | {r['teacher_mass_on_gold']:.3f} | {r['candidate_recall']:.3f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
