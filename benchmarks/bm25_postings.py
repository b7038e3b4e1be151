"""BM25 ranking with the few-postings path (``SPARSE_QUERY_RATIO``) against every query through an array of all N.

One thread, the same queries and index, the three settings side by side in one process: every query through the
N array (the path before), every query over the documents it names, and the default (the latter below N/4
postings). Prints CPU seconds and whether the three give identical rankings; a second row with queries of four
of the index's commonest terms (postings about N/2), where the N array wins.

    PYTHONPATH=src .venv/bin/python benchmarks/bm25_postings.py INDEX_FOLDER QUERIES.tsv [--n 3000]

Results: ``benchmarks/results/bm25.md`` (section "Few-postings path").
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index", help="a lexdr BM25 index folder")
    ap.add_argument("queries", help="a topics TSV")
    ap.add_argument("--n", type=int, default=3000, help="queries used")
    args = ap.parse_args()

    import lexdr.sparse.index as I
    from lexdr.formats import read_queries

    idx = I.BM25Index.load(args.index)
    queries = list(read_queries(args.queries))[: args.n]
    terms = idx.analyzer.analyze_batch([q.text for q in queries], n_jobs=1)
    asked = [I.terms_to_ids(t, idx._vocab) for t in terms]
    df = np.diff(idx.retriever.scores["indptr"])
    common = np.argsort(-df)[:40]
    rng = np.random.default_rng(0)
    heavy = [sorted(rng.choice(common, 4, replace=False).tolist()) for _ in range(40)]
    default = I.SPARSE_QUERY_RATIO
    print(f"| queries | N | postings per query (median) | N array: CPU s | documents named: CPU s | default "
          f"(below N/{default}): CPU s | identical |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, token_ids in ((f"{len(asked):,} of the file", asked), ("40 of four commonest terms", heavy)):
        seconds, ranked = [], []
        for ratio in (10**12, 0, default):
            I.SPARSE_QUERY_RATIO = ratio
            t = time.process_time()
            ranked.append(idx.rank_ids(token_ids, k=100, n_threads=1))
            seconds.append(time.process_time() - t)
        I.SPARSE_QUERY_RATIO = default
        same = all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
                   for other in ranked[1:] for a, b in zip(ranked[0], other))
        postings = int(np.median([df[ids].sum() for ids in token_ids]))
        print(f"| {name} | {idx.num_docs:,} | {postings:,} | {seconds[0]:.2f} | {seconds[1]:.2f} | {seconds[2]:.2f} | "
              f"{'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
