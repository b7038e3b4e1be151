"""Mining rules on hand-made runs: each property asserted, not just the schema."""

from __future__ import annotations

import json

import pytest

from lexdr.errors import ConfigError
from lexdr.formats import write_queries_tsv, write_run
from lexdr.mining import MineConfig, candidate_table, mine, mine_from_runs, read_mined, rule_quality
from lexdr.mining.rules import teacher_probs
from lexdr.records import Hit, Query


def _hits(*pairs):
    return [Hit(d, s) for d, s in pairs]


# BM25 likes a, b, c, x; dense likes b, a, d, y. Agreement at 2: {a, b}.
BM25 = _hits(("a", 12.0), ("b", 11.0), ("c", 9.0), ("x", 8.0), ("p", 1.0), ("q", 0.5))
DENSE = _hits(("b", 0.90), ("a", 0.85), ("d", 0.80), ("y", 0.70), ("r", 0.2), ("s", 0.1))


def test_candidate_table_ranks_and_floor_z():
    t = candidate_table(BM25, DENSE, depth=100)
    assert t["a"].bm25_rank == 1 and t["a"].dense_rank == 2
    assert t["c"].dense_rank is None
    # A passage missing from the dense list gets the dense list's lowest z.
    assert t["c"].dense_z == pytest.approx(min(x.dense_z for x in t.values() if x.dense_rank is not None))


@pytest.mark.parametrize("rule, expected", [("dense-top1", "b"), ("bm25-top1", "a"), ("agree@1", None),
                                            ("agree@2", None), ("fused-top1", None)])
def test_rules_pick_the_right_positive(rule, expected):
    ex = mine_from_runs([Query("q1", "t")], {"q1": BM25}, {"q1": DENSE}, MineConfig(rule=rule))[0]
    if rule == "agree@1":
        assert ex.positive_ids == []  # top-1s differ: no agreement at depth 1
    elif rule in ("agree@2", "fused-top1"):
        # Both retrievers rank a and b in their top 2; the teacher (sum of z-scores) breaks the tie.
        t = candidate_table(BM25, DENSE)
        best = max(["a", "b"], key=lambda d: t[d].bm25_z + t[d].dense_z)
        assert ex.positive_ids == [best]
    else:
        assert ex.positive_ids == [expected]


def test_hard_negatives_come_from_disagreement_and_never_positives():
    cfg = MineConfig(rule="agree@2", neg_depth=4, neg_other_min_rank=4, n_negatives=4, neg_teacher_margin=0.0)
    ex = mine_from_runs([Query("q1", "t")], {"q1": BM25}, {"q1": DENSE}, cfg)[0]
    t = candidate_table(BM25, DENSE)
    assert ex.negative_ids, "expected some disagreement negatives"
    for doc_id, src in zip(ex.negative_ids, ex.negative_sources):
        assert doc_id not in ex.positive_ids
        c = t[doc_id]
        if src == "bm25-only":
            assert c.bm25_rank <= 4 and (c.dense_rank is None or c.dense_rank > 4)
        else:
            assert c.dense_rank <= 4 and (c.bm25_rank is None or c.bm25_rank > 4)
    assert set(ex.negative_ids) == {"c", "x", "d", "y"}


def test_teacher_margin_protects_likely_positives():
    cfg = MineConfig(rule="agree@2", neg_depth=4, neg_other_min_rank=4, neg_teacher_margin=100.0)
    ex = mine_from_runs([Query("q1", "t")], {"q1": BM25}, {"q1": DENSE}, cfg)[0]
    assert ex.negative_ids == []


def test_soft_candidates_union_of_tops_in_teacher_order():
    cfg = MineConfig(n_candidates_each=2)
    ex = mine_from_runs([Query("q1", "t")], {"q1": BM25}, {"q1": DENSE}, cfg)[0]
    assert set(ex.candidate_ids) == {"a", "b"}
    assert ex.teacher_scores == sorted(ex.teacher_scores, reverse=True)
    probs = teacher_probs(ex.teacher_scores, 0.5)
    assert sum(probs) == pytest.approx(1.0) and probs[0] >= probs[-1]


def test_rule_quality_counts():
    qrels = {"q1": {"b": 1}, "q2": {"z": 1}}
    exs = mine_from_runs([Query("q1", "t"), Query("q2", "u")], {"q1": BM25, "q2": BM25}, {"q1": DENSE, "q2": DENSE},
                         MineConfig(rule="dense-top1"))
    q = rule_quality(exs, qrels)
    assert q["coverage"] == 1.0 and q["precision"] == 0.5 and q["correct_pairs"] == 1


def test_bad_rule_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown mining rule"):
        MineConfig(rule="agree")


def test_stage_writes_readable_jsonl_and_stats(tmp_path):
    write_queries_tsv([Query("q1", "t"), Query("q2", "u")], tmp_path / "q.tsv")
    write_run({"q1": BM25, "q2": BM25}, tmp_path / "bm25.trec")
    write_run({"q1": DENSE, "q2": DENSE[::-1]}, tmp_path / "dense.trec")
    (tmp_path / "qrels.txt").write_text("q1 Q0 b 1\nq2 Q0 a 1\n")
    out = mine(tmp_path / "q.tsv", tmp_path / "bm25.trec", tmp_path / "dense.trec", tmp_path / "mined",
               MineConfig(rule="agree@2"), report_qrels_path=tmp_path / "qrels.txt")
    exs = read_mined(out / "mined.jsonl")
    assert [e.query_id for e in exs] == ["q1", "q2"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["queries"] == 2 and "quality" in stats and 0.0 <= stats["quality"]["precision"] <= 1.0


def _mine_at(tmp_path, name: str, temperature: float):
    write_queries_tsv([Query("q1", "t")], tmp_path / "q.tsv")
    write_run({"q1": BM25}, tmp_path / "bm25.trec")
    write_run({"q1": DENSE}, tmp_path / "dense.trec")
    return mine(tmp_path / "q.tsv", tmp_path / "bm25.trec", tmp_path / "dense.trec", tmp_path / name,
                MineConfig(rule="agree@2", teacher_temperature=temperature)) / "mined.jsonl"


def test_training_reads_the_teacher_temperature_from_the_mined_files(tmp_path):
    """Mining owns the teacher temperature: training takes it from the mined files' stats, and a training value
    (config, --teacher-temperature) or a second file that disagrees is an error, not a silent choice."""
    from lexdr.mining import mined_teacher_temperature
    from lexdr.training import TrainConfig
    from lexdr.executors import LocalExecutor
    from lexdr.training.stage import TrainInputs, TrainSource, mined_temperature, train_stage

    cold, warm = _mine_at(tmp_path, "cold", 0.25), _mine_at(tmp_path, "warm", 0.5)
    assert mined_teacher_temperature(cold) == 0.25 and mined_teacher_temperature(tmp_path / "nowhere.jsonl") is None
    assert mined_temperature([cold]) == 0.25 and mined_temperature([cold], 0.25) == 0.25
    assert mined_temperature([tmp_path / "missing" / "mined.jsonl"]) == MineConfig().teacher_temperature
    with pytest.raises(ConfigError, match=r"mined at teacher_temperature 0.25 .* given 0.5"):
        mined_temperature([cold], 0.5)
    with pytest.raises(ConfigError, match="different teacher temperatures"):
        mined_temperature([cold, warm])
    # the pipeline's training stage checks before it trains (TrainConfig's default is mining's, 0.5)
    with pytest.raises(ConfigError, match="mined at teacher_temperature 0.25"):
        train_stage(TrainInputs((TrainSource("x", tmp_path / "corpus.jsonl", (cold,)),)), TrainConfig(),
                    tmp_path / "train", LocalExecutor())
    assert not (tmp_path / "train").exists()
    # a run folder made before the generated queries had their own mining stage (generate/mining/stats.json)
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "stats.json").write_text(json.dumps({"config": {"backend": "passage-cut"}}))
    cold.parent.rename(gen / "mining")
    (gen / "mining" / "mined.jsonl").rename(gen / "mined.jsonl")
    assert mined_teacher_temperature(gen / "mined.jsonl") == 0.25


def test_cli_train_refuses_a_teacher_temperature_the_mined_file_disagrees_with(tmp_path, capsys):
    from lexdr.cli import main

    cold = _mine_at(tmp_path, "cold", 0.25)
    (tmp_path / "corpus.jsonl").write_text('{"_id": "a", "text": "x"}\n')
    rc = main(["train", str(cold), "--corpus", str(tmp_path / "corpus.jsonl"), "--out", str(tmp_path / "out"),
               "--teacher-temperature", "0.5"])
    assert rc == 2 and "mined at teacher_temperature 0.25" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
