"""Mining reads its two runs query by query (lexdr.formats.runs.iter_run) and gives exactly what reading whole
runs gives, whatever order the run files list their queries in."""

from __future__ import annotations

import random

import pytest

from lexdr.errors import InputError
from lexdr.formats import read_run, write_queries_tsv
from lexdr.formats.runs import iter_run
from lexdr.mining import MineConfig, mine_from_runs, read_mined
from lexdr.mining.stage import iter_mined_from_runs, mine
from lexdr.records import Hit, Query


def _write(path, run, order):
    with open(path, "w") as fh:
        for qid in order:
            for rank, h in enumerate(run[qid], 1):
                fh.write(f"{qid} Q0 {h.doc_id} {rank} {h.score:.6f} t\n")


def _runs(seed):
    rng = random.Random(seed)
    queries = [Query(f"q{i}", f"query {i}") for i in range(30)]
    bm25 = {q.query_id: [Hit(f"d{rng.randrange(60)}", 0.0) for _ in range(12)] for q in queries}
    dense = {q.query_id: [Hit(f"d{rng.randrange(60)}", 0.0) for _ in range(12)] for q in queries}
    for run in (bm25, dense):
        for qid, hits in run.items():
            ids = list(dict.fromkeys(h.doc_id for h in hits))
            run[qid] = [Hit(d, round(10 - i * 0.5, 3)) for i, d in enumerate(ids)]
    del bm25["q7"]  # a query BM25 found nothing for
    return queries, bm25, dense


@pytest.mark.parametrize("order", ["query", "reversed", "shuffled"])
def test_streamed_mining_equals_mining_whole_runs(tmp_path, order):
    queries, bm25, dense = _runs(0)
    qids = {"query": list, "reversed": lambda x: x[::-1], "shuffled": lambda x: random.Random(1).sample(x, len(x))}
    _write(tmp_path / "bm25.trec", bm25, qids[order](list(bm25)))
    _write(tmp_path / "dense.trec", dense, qids[order](list(dense)))
    cfg = MineConfig(rule="agree@3")
    whole = mine_from_runs(queries, read_run(tmp_path / "bm25.trec"), read_run(tmp_path / "dense.trec"), cfg)
    streamed = list(iter_mined_from_runs(queries, tmp_path / "bm25.trec", tmp_path / "dense.trec", cfg))
    assert [e.to_dict() for e in streamed] == [e.to_dict() for e in whole]
    write_queries_tsv(queries, tmp_path / "q.tsv")
    mine(tmp_path / "q.tsv", tmp_path / "bm25.trec", tmp_path / "dense.trec", tmp_path / "out", cfg)
    assert [e.to_dict() for e in read_mined(tmp_path / "out" / "mined.jsonl")] == [e.to_dict() for e in whole]


def test_iter_run_yields_one_query_at_a_time_and_refuses_split_queries(tmp_path):
    p = tmp_path / "run.trec"
    p.write_text("a Q0 d1 1 1.0 t\na Q0 d2 2 2.0 t\nb Q0 d1 1 1.0 t\n")
    blocks = iter_run(p)
    assert next(blocks) == ("a", [Hit("d2", 2.0), Hit("d1", 1.0)])  # best first, as read_run
    assert next(blocks) == ("b", [Hit("d1", 1.0)])
    p.write_text("a Q0 d1 1 1.0 t\nb Q0 d1 1 1.0 t\na Q0 d2 2 0.5 t\n")
    with pytest.raises(InputError, match=r"run.trec:3: .*query 'a' are not consecutive"):
        list(iter_run(p))
    p.write_text("a Q0 d1 1 1.0 t\na Q0 d1 2 0.5 t\n")
    with pytest.raises(InputError, match="appears twice"):
        list(iter_run(p))
