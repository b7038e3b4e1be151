"""Our metrics must equal trec_eval's (via pytrec_eval) on random runs, tied scores included."""

from __future__ import annotations

import random

import pytest

from lexdr.evaluation import evaluate, evaluate_per_query, trec_order
from lexdr.records import Hit

pytrec_eval = pytest.importorskip("pytrec_eval")


def _random_case(seed: int, n_queries: int = 40, n_docs: int = 300, depth: int = 150):
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(n_docs)]
    qrels, run = {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 8))
        qrels[qid] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        # Coarse scores force many ties, which is where trec_eval's doc-id tie-break shows.
        run[qid] = [Hit(d, float(rng.randint(0, 30))) for d in rng.sample(docs, depth)]
    # A query with no run at all, and a run query without qrels.
    qrels["q_missing"] = {"d1": 1}
    run["q_extra"] = [Hit("d1", 1.0)]
    return qrels, run


def _pytrec(qrels, run, measures):
    ev = pytrec_eval.RelevanceEvaluator(qrels, measures)
    return ev.evaluate({q: {h.doc_id: h.score for h in hits} for q, hits in run.items()})


@pytest.mark.parametrize("seed", range(5))
def test_recall_and_ndcg_equal_trec_eval(seed):
    qrels, run = _random_case(seed)
    ours = evaluate_per_query(run, qrels, ["Recall@10", "Recall@100", "nDCG@10"])
    ref = _pytrec(qrels, run, {"recall.10,100", "ndcg_cut.10"})
    compared = 0
    for qid, vals in ref.items():
        if not any(g >= 1 for g in qrels[qid].values()):
            # trec_eval scores a query without relevant documents as 0; we leave it out of the mean (documented).
            assert qid not in ours
            continue
        assert ours[qid]["Recall@10"] == pytest.approx(vals["recall_10"], abs=1e-9)
        assert ours[qid]["Recall@100"] == pytest.approx(vals["recall_100"], abs=1e-9)
        assert ours[qid]["nDCG@10"] == pytest.approx(vals["ndcg_cut_10"], abs=1e-9)
        compared += 1
    assert compared >= 30


@pytest.mark.parametrize("seed", range(5))
def test_mrr_equals_trec_eval_recip_rank(seed):
    qrels, run = _random_case(seed)
    ref_full = _pytrec(qrels, run, {"recip_rank"})
    # Untruncated MRR equals trec_eval's recip_rank, ties included.
    ours = evaluate_per_query(run, qrels, ["MRR@100000"])
    for qid, vals in ref_full.items():
        if qid not in ours:
            continue
        assert ours[qid]["MRR@100000"] == pytest.approx(vals["recip_rank"], abs=1e-12)
    # MRR@10 equals recip_rank on the run cut at 10 in trec_eval's own order.
    cut = {q: trec_order(h)[:10] for q, h in run.items()}
    ref_cut = _pytrec(qrels, cut, {"recip_rank"})
    ours10 = evaluate_per_query(run, qrels, ["MRR@10"])
    assert len(ours10) >= 30
    for qid, vals in ref_cut.items():
        if qid not in ours10:
            continue
        assert ours10[qid]["MRR@10"] == pytest.approx(vals["recip_rank"], abs=1e-12)


def test_tie_break_is_doc_id_descending():
    hits = [Hit("a", 1.0), Hit("c", 1.0), Hit("b", 2.0)]
    assert [h.doc_id for h in trec_order(hits)] == ["b", "c", "a"]


def test_hand_computed_means_and_missing_query_counts_as_zero():
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d9": 1}, "q4": {"d1": 0}}
    run = {"q1": [Hit("d1", 3.0), Hit("d2", 2.0)], "q2": [Hit("d1", 3.0), Hit("d2", 2.0)]}
    m = evaluate(run, qrels, ["MRR@10", "Recall@1"])
    # q1: RR 1, q2: RR 1/2, q3: missing -> 0; q4 has no relevant document and is not averaged.
    assert m["num_queries"] == 3
    assert m["MRR@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["Recall@1"] == pytest.approx(1 / 3)


# ------------------------------------------------------------------ qrels of another task (issue 12)
def test_qrels_of_another_task_is_an_error_not_a_silent_zero():
    from lexdr.errors import LexdrError

    run = {"q1": [Hit("d1", 1.0)], "q2": [Hit("d2", 1.0)]}
    other = {"x1": {"d1": 1}, "x2": {"d2": 1}}
    with pytest.raises(LexdrError, match="share no query id"):
        evaluate(run, other)


def test_partial_overlap_and_foreign_documents_warn_loudly(caplog):
    run = {"q1": [Hit("d1", 1.0)], "q2": [Hit("d2", 1.0)]}
    with caplog.at_level("WARNING", logger="lexdr.evaluation.metrics"):
        evaluate(run, {"q1": {"d1": 1}, "q3": {"d3": 1}}, ["MRR@10"])
    assert any("1 of 2 judged queries are not in the run" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="lexdr.evaluation.metrics"):
        m = evaluate(run, {"q1": {"other-1": 1}, "q2": {"other-2": 1}}, ["MRR@10"])
    assert m["MRR@10"] == 0.0
    assert any("none of the documents" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="lexdr.evaluation.metrics"):
        evaluate(run, {"q1": {"d1": 1}, "q2": {"d2": 1}}, ["MRR@10"])
    assert not caplog.records  # a matching pair stays quiet


def test_cli_evaluate_refuses_qrels_of_another_task(tmp_path, capsys):
    from lexdr.cli import main
    from lexdr.formats import write_qrels_trec, write_run

    write_run({"q1": [Hit("d1", 1.0)]}, tmp_path / "run.trec")
    write_qrels_trec({"x1": {"d1": 1}}, tmp_path / "qrels.txt")
    assert main(["evaluate", str(tmp_path / "run.trec"), str(tmp_path / "qrels.txt")]) == 2
    out = capsys.readouterr()
    assert "share no query id" in out.out + out.err


def test_training_gain_is_each_trained_models_hybrid_over_the_base_encoders_hybrid():
    from lexdr.evaluation import gain_verdict, training_gain

    m = {"bm25": {"MRR@10": 0.70}, "dense-base": {"MRR@10": 0.60}, "lexdr-r1": {"MRR@10": 0.66},
         "adaptive-hybrid": {"MRR@10": 0.75}, "adaptive-hybrid-lexdr-r1": {"MRR@10": 0.751},
         "hybrid": {"MRR@10": 0.9}}  # the RRF hybrid is not the baseline of the hybrid gain
    parts = {"adaptive-hybrid": ["bm25", "dense-base"], "adaptive-hybrid-lexdr-r1": ["bm25", "lexdr-r1"]}
    g = training_gain(m, parts, "MRR@10")
    assert list(g) == ["lexdr-r1"]
    assert g["lexdr-r1"]["dense"] == pytest.approx(0.06) and g["lexdr-r1"]["hybrid"] == pytest.approx(0.001)
    sentence = gain_verdict({"de": g}, "MRR@10")
    assert sentence.startswith("Training did not pay off") and "+0.0010" in sentence
    m["adaptive-hybrid-lexdr-r1"]["MRR@10"] = 0.77
    assert gain_verdict({"de": training_gain(m, parts, "MRR@10")}, "MRR@10").startswith("Training paid off")
    assert training_gain({k: v for k, v in m.items() if k != "adaptive-hybrid"}, parts, "MRR@10") == {}
