"""The adaptive hybrid in the evaluation stage and `lexdr fuse`: weights fitted on the unlabeled queries' runs,
never on the test labels, recorded beside the metrics."""

from __future__ import annotations

import json
import random

import pytest

from lexdr.cli import main
from lexdr.evaluation import EvaluateConfig, EvaluateInputs, evaluate_stage
from lexdr.executors import LocalExecutor
from lexdr.evaluation import stage as evaluation_stage
from lexdr.formats import read_run, write_qrels_trec, write_run
from lexdr.fusion import FusionConfig, fit_fusion, fuse_runs
from lexdr.records import Run
from fixtures.synthetic_runs import mostly_right

N_DOCS = 40


def _run(qids: list[str], rng: random.Random, p: float) -> Run:
    return mostly_right(qids, rng, p, N_DOCS, gold_within=8)


@pytest.fixture
def runs(tmp_path):
    """A weak sparse and a strong dense system, each with runs of 60 unlabeled and 40 test queries."""
    rng = random.Random(7)
    unl, test = [f"u{i}" for i in range(60)], [f"t{i}" for i in range(40)]
    files = {}
    for system, p in (("bm25", 0.35), ("dense-base", 0.85)):
        for part, qids in (("unlabeled", unl), ("test", test)):
            files[system, part] = tmp_path / f"{system}.{part}.trec"
            write_run(_run(qids, rng, p), files[system, part])
    write_qrels_trec({q: {f"g{q}": 1} for q in test}, tmp_path / "qrels.test.txt")
    return files


def _stage(tmp_path, files, qrels, out, unlabeled=True):
    out.mkdir(parents=True, exist_ok=True)
    inputs = EvaluateInputs(qrels, {s: files[s, "test"] for s in ("bm25", "dense-base")},
                            {s: files[s, "unlabeled"] for s in ("bm25", "dense-base")} if unlabeled else {})
    config = EvaluateConfig(("MRR@10",), hybrids={"hybrid": ["bm25", "dense-base"]},
                            adaptive_hybrids={"adaptive-hybrid": ["bm25", "dense-base"]})
    return evaluate_stage(inputs, config, out, LocalExecutor())


def test_adaptive_hybrid_is_reported_with_weights_fitted_on_the_unlabeled_runs(tmp_path, runs):
    out = tmp_path / "eval"
    results = _stage(tmp_path, runs, tmp_path / "qrels.test.txt", out)
    assert {"bm25", "dense-base", "hybrid", "adaptive-hybrid"} == set(results)
    record = json.loads((out / "fusion.json").read_text())
    fitted = record["adaptive-hybrid"]
    assert fitted["fitted_on"] == "unlabeled queries" and fitted["fit_queries"] == 60
    assert fitted["systems"] == ["bm25", "dense-base"] and record["hybrid"]["method"] == "rrf"
    # exactly the weights fit_fusion chooses from the unlabeled runs alone, applied to the test runs
    expected = fit_fusion(read_run(runs["bm25", "unlabeled"]), read_run(runs["dense-base", "unlabeled"]),
                          FusionConfig(method="adaptive"), depth=100)
    assert tuple(fitted["weights"]) == pytest.approx(expected.weights)
    assert fitted["weights"][1] > 0.5  # the stronger dense side weighs more
    fused = fuse_runs([read_run(runs["bm25", "test"]), read_run(runs["dense-base", "test"])], expected, depth=100,
                      top_k=100)
    assert [h.doc_id for h in read_run(out / "run.adaptive-hybrid.trec")["t0"]] == [h.doc_id for h in fused["t0"]]
    # the goal of issue 13 on these runs: not below the better half by more than 0.002
    assert results["adaptive-hybrid"]["MRR@10"] >= max(results["bm25"]["MRR@10"], results["dense-base"]["MRR@10"]) - 0.002
    assert json.loads((out / "metrics.json").read_text()) == results


def test_the_fit_never_reads_the_test_labels(tmp_path, runs, monkeypatch):
    """Corrupted test qrels change the scores, not the fitted weights or the fused run; and the fit is handed
    the unlabeled runs, nothing else."""
    seen = []
    real = evaluation_stage.fit_fusion

    def spy(sparse, dense, *args, **kwargs):
        seen.append((set(sparse), set(dense)))
        return real(sparse, dense, *args, **kwargs)

    monkeypatch.setattr(evaluation_stage, "fit_fusion", spy)
    good, bad = tmp_path / "good", tmp_path / "bad"
    _stage(tmp_path, runs, tmp_path / "qrels.test.txt", good)
    corrupted = tmp_path / "qrels.corrupt.txt"
    write_qrels_trec({f"t{i}": {f"d{i % N_DOCS}": 1} for i in range(40)}, corrupted)  # every label wrong
    corrupt_results = _stage(tmp_path, runs, corrupted, bad)
    assert seen == [({f"u{i}" for i in range(60)},) * 2] * 2  # unlabeled query ids only, both times
    assert json.loads((good / "fusion.json").read_text()) == json.loads((bad / "fusion.json").read_text())
    assert (good / "run.adaptive-hybrid.trec").read_bytes() == (bad / "run.adaptive-hybrid.trec").read_bytes()
    assert corrupt_results["adaptive-hybrid"]["MRR@10"] < 0.5  # the labels really did change


def test_without_unlabeled_queries_the_fit_uses_the_test_runs_and_says_so(tmp_path, runs):
    out = tmp_path / "eval"
    _stage(tmp_path, runs, tmp_path / "qrels.test.txt", out, unlabeled=False)
    fitted = json.loads((out / "fusion.json").read_text())["adaptive-hybrid"]
    assert fitted["fitted_on"].startswith("test queries (runs only") and fitted["fit_queries"] == 40


def test_cli_fuse_adaptive_fits_on_the_given_unlabeled_runs(tmp_path, runs, capsys):
    out = tmp_path / "fused.trec"
    assert main(["fuse", str(runs["bm25", "test"]), str(runs["dense-base", "test"]), "--out", str(out),
                 "--method", "adaptive", "--fit-on", str(runs["bm25", "unlabeled"]),
                 str(runs["dense-base", "unlabeled"])]) == 0
    expected = fit_fusion(read_run(runs["bm25", "unlabeled"]), read_run(runs["dense-base", "unlabeled"]),
                          FusionConfig(method="adaptive"), depth=100)
    assert f"{expected.weights[1]:.3f}" in capsys.readouterr().out
    fused = fuse_runs([read_run(runs["bm25", "test"]), read_run(runs["dense-base", "test"])], expected, top_k=100)
    written = read_run(out)
    assert set(written) == set(fused)
    for q, hits in fused.items():
        assert [h.doc_id for h in written[q]] == [h.doc_id for h in hits]
        assert [h.score for h in written[q]] == pytest.approx([h.score for h in hits], abs=1e-4)
