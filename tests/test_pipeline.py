"""`lexdr run`: end to end on a tiny task, skip-if-unchanged, kill-and-resume, config errors before work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.tiny_corpus import write_tiny_config
from lexdr.cli import main
from lexdr.errors import ConfigError
from lexdr.pipeline import load_config, run_pipeline

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_end_to_end_then_rerun_skips_everything(tmp_path, tiny_encoder_dir):
    cfg_path = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run", epochs=3)
    assert main(["--quiet", "run", str(cfg_path)]) == 0
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())["tiny-en"]
    assert set(metrics) == {"bm25", "dense-base", "hybrid", "lexdr-r1", "hybrid-lexdr-r1", "adaptive-hybrid",
                            "adaptive-hybrid-lexdr-r1"}
    assert metrics["bm25"]["num_queries"] == 12
    # The tiny random encoder learns from the mined pairs: the trained model beats its own start.
    assert metrics["lexdr-r1"]["MRR@10"] > metrics["dense-base"]["MRR@10"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert all(not s["skipped"] for s in manifest["stages"].values())
    assert all(s["peak_rss_mb"] > 0 and s["seconds"] >= 0 for s in manifest["stages"].values())
    report = (run / "report" / "report.md").read_text()
    assert "tiny-en" in report and (run / "report" / "metrics.png").stat().st_size > 1000
    # The adaptive hybrids' weights were fitted on the unlabeled queries' runs and are in the report.
    fusion = json.loads((run / "tiny-en" / "evaluate" / "fusion.json").read_text())
    assert fusion["adaptive-hybrid-lexdr-r1"]["fitted_on"] == "unlabeled queries"
    assert fusion["adaptive-hybrid-lexdr-r1"]["fit_queries"] == 12 and "Adaptive hybrids: fitted weights" in report
    # What training added to the hybrid a user would deploy, beside what it added to dense alone.
    gain = json.loads((run / "tiny-en" / "evaluate" / "gain.json").read_text())["systems"]["lexdr-r1"]
    assert gain["hybrid"] == pytest.approx(metrics["adaptive-hybrid-lexdr-r1"]["MRR@10"] -
                                           metrics["adaptive-hybrid"]["MRR@10"])
    assert "### What training added" in report and "paid off" in report
    # the base and the trained model encoded the corpus from the same token ids (one tokenizer, one folder)
    tokens = list((run / "tiny-en" / "tokens").iterdir())
    assert len(tokens) == 1 and json.loads((tokens[0] / "manifest.json").read_text())["complete"]
    card = (run / "train-r1" / "model" / "README.md").read_text()  # the model's own card, not its base's
    assert "lexdr-r1" in card and "tiny-en" in card and "MRR@10" in card
    # ... written by its own stage of the graph, after the evaluation, with the metrics the evaluation wrote
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    assert "train-r1-card" in stages and (run / "train-r1-card" / "README.md").read_text() == card
    assert f"{metrics['lexdr-r1']['MRR@10']:.4f}"[:5] in card
    # Same config, same inputs: nothing runs again.
    run_pipeline(load_config(cfg_path), quiet=True)
    manifest = json.loads((run / "manifest.json").read_text())
    assert all(s["skipped"] for s in manifest["stages"].values())


def test_changed_mining_config_reruns_only_what_depends_on_it(tmp_path, tiny_encoder_dir):
    cfg_path = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run", epochs=1)
    run_pipeline(load_config(cfg_path), quiet=True, report=False)
    cfg = load_config(cfg_path, overrides={"mining": {"rule": "fused-top1"}})
    run_pipeline(cfg, quiet=True, report=False)
    stages = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    assert stages["tiny-en/bm25"]["skipped"] and stages["tiny-en/dense-base"]["skipped"]
    assert not stages["tiny-en/mine"]["skipped"] and not stages["train-r1"]["skipped"]


def test_killed_mid_training_resumes_from_checkpoint(tmp_path, tiny_encoder_dir):
    # Enough steps that the kill lands in training; a checkpoint after every step.
    cfg_path = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run", epochs=20, checkpoint_every=1)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "lexdr", "--quiet", "run", str(cfg_path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = tmp_path / "run" / "train-r1" / "checkpoint" / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["step"] >= 3):
        if proc.poll() is not None:
            pytest.fail("the run ended before it could be killed")
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state.read_text())["step"]
    assert 3 <= killed_at < 60
    assert not (tmp_path / "run" / "train-r1" / "done.json").exists()
    assert not (tmp_path / "run" / "train-r1" / "model").exists()
    # Re-run in-process: earlier stages are skipped, training continues from the checkpoint.
    run_pipeline(load_config(cfg_path), quiet=True, report=False)
    stages = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    assert stages["tiny-en/dense-base"]["skipped"] and not stages["train-r1"]["skipped"]
    log = [json.loads(x) for x in (tmp_path / "run" / "train-r1" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, len(log) + 1)) and len(log) == 60
    assert stages["train-r1"]["result"]["steps"] == 60


def test_config_errors_are_reported_together_before_any_work(tmp_path, tiny_encoder_dir):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f"""
[run]
out_dir = "{tmp_path / 'run'}"
colour = "blue"

[[languages]]
lang = "xx"
corpus = "missing.jsonl"

[training]
epochz = 3
""")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    msg = str(err.value)
    assert "colour" in msg and "epochz" in msg and "unsupported language 'xx'" in msg and "does not exist" in msg
    assert "ja" in msg  # the supported languages are listed
    assert not (tmp_path / "run").exists()
    assert main(["run", str(cfg)]) == 2


def test_mismatched_query_and_qrels_ids_fail_before_work(tmp_path, tiny_encoder_dir):
    cfg_path = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run")
    (tmp_path / "data" / "qrels.txt").write_text("nope Q0 d1 1\n")
    with pytest.raises(ConfigError, match="not in"):
        run_pipeline(load_config(cfg_path), quiet=True)
    assert not (tmp_path / "run" / "tiny-en").exists()


def test_hub_sources_fail_with_a_clear_offline_message(tmp_path):
    from lexdr.errors import LexdrError
    from lexdr.tasks.sources import load_hf_source

    with pytest.raises(LexdrError, match="no network: .*Point corpus="):
        load_hf_source("mrtydi", "sw", tmp_path)


def test_generation_adds_its_own_model_and_report_samples(tmp_path, tiny_encoder_dir):
    extra = '\n[generation]\nenabled = true\nbackend = "passage-cut"\nmax_passages = 10\n'
    cfg_path = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run", epochs=1, extra=extra)
    results = run_pipeline(load_config(cfg_path), quiet=True)
    assert {"lexdr-r1", "lexdr-gen"} <= set(results["tiny-en"])
    gen = tmp_path / "run" / "tiny-en" / "generate"
    stats = json.loads((gen / "stats.json").read_text())
    assert stats["passages_selected"] == 10 and stats["generated"] >= stats["kept"]
    # Every kept query passed the round trip: its passage is in the hybrid top-k.
    rows = [json.loads(x) for x in (gen / "generated.jsonl").read_text().splitlines()]
    assert all(r["round_trip_rank"] is not None and r["round_trip_rank"] <= 10 for r in rows if r["kept"])
    if stats["kept"]:  # searched and mined by their own stages, like any unlabeled query
        assert (gen / "queries.generated.tsv").is_file() and not (gen / "mined.jsonl").exists()
        assert (gen.parent / "mine-generated" / "mined.jsonl").read_text().strip()
        assert "Generated queries" in (tmp_path / "run" / "report" / "report.md").read_text()


def test_every_row_of_the_method_table_in_one_run(tmp_path, tiny_encoder_dir):
    """rounds = 2, generation and the gold upper bound together: each adds its own model to the results."""
    extra = '\n[generation]\nenabled = true\nbackend = "passage-cut"\nmax_passages = 6\n'
    cfg_path = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run", epochs=1, extra=extra,
                                 run_extra="rounds = 2\ngold_upper_bound = true")
    # First as round 1 only, then the full config in the same folder: round 2 needs the round-1 model's
    # runs on the unlabeled queries, which the round-1-only run did not write.
    run_pipeline(load_config(cfg_path, overrides={"run": {"rounds": 1, "gold_upper_bound": False}}), quiet=True,
                 report=False)
    results = run_pipeline(load_config(cfg_path), quiet=True)["tiny-en"]
    assert {"bm25", "dense-base", "hybrid", "lexdr-r1", "lexdr-gen", "lexdr-r2", "gold-supervised"} <= set(results)
    run = tmp_path / "run"
    # Round 2 mines with the round-1 model, on the unlabeled queries.
    r2 = json.loads((run / "tiny-en" / "mine-r2" / "done.json").read_text())
    assert r2["result"]["queries"] == 12
    # The gold model trains on the unlabeled half's true labels: one positive per query, the labelled one.
    gold_stage = json.loads((run / "train-gold" / "done.json").read_text())
    assert gold_stage["config"]["gold"] is True and gold_stage["result"]["examples"] == 12
    manifest = json.loads((run / "manifest.json").read_text())
    assert {"train-r1", "train-gen", "train-r2", "train-gold"} <= set(manifest["stages"])
    for system in ("lexdr-r2", "gold-supervised"):
        assert 0.0 <= results[system]["MRR@10"] <= 1.0 and results[system]["num_queries"] == 12
    assert gold_stage["config"]["training"]["loss"] == "contrastive"
    # The soft-target gold bound re-trains only the gold model (and what reads it).
    run_pipeline(load_config(cfg_path, overrides={"run": {"gold_loss": "kl+contrastive"}}), quiet=True, report=False)
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    assert not stages["train-gold"]["skipped"] and stages["train-gold"]["config"]["training"]["loss"] == "kl+contrastive"
    assert all(stages[s]["skipped"] for s in ("train-r1", "train-gen", "train-r2", "tiny-en/dense-r2"))
    # ... really re-trained (the folder held the contrastive model) and re-indexed with the new weights.
    assert json.loads((run / "train-gold" / "model" / "lexdr_training.json").read_text())["loss"] == "kl+contrastive"
    index_meta = json.loads((run / "tiny-en" / "dense-gold" / "index" / "config.json").read_text())
    assert index_meta["model_fingerprint"] == stages["train-gold"]["fingerprint"]
    with pytest.raises(ConfigError, match="gold_loss"):
        load_config(cfg_path, overrides={"run": {"gold_loss": "kl"}})


def test_mrtydi_format_path_with_the_real_samples(tmp_path, tiny_encoder_dir, shared_data_dir):
    """Mr. TyDi's own files (corpus .jsonl.gz, gzipped topics, TREC qrels) go through the whole pipeline.

    The 4-passage sample corpus does not hold the judged passages, so the metrics are zero: this checks the
    format path, not retrieval quality."""
    m = shared_data_dir / "mrtydi"
    cfg = tmp_path / "mrtydi.toml"
    cfg.write_text(f"""
[run]
out_dir = "{tmp_path / 'run'}"
base_model = "{tiny_encoder_dir}"

[[languages]]
lang = "th"
corpus = "{m / 'corpus-samples' / 'th.corpus.jsonl.gz'}"
unlabeled_queries = "{m / 'topics' / 'topics.mrtydi-v1.1-th.train.txt.gz'}"
test_queries = "{m / 'topics' / 'topics.mrtydi-v1.1-th.dev.txt.gz'}"
test_qrels = "{m / 'qrels' / 'qrels.mrtydi-v1.1-th.dev.txt'}"
max_unlabeled = 8
max_test = 10

[dense]
max_seq_length = 64  # the tiny encoder has 128 positions; a longer setting is refused before any work

[training]
epochs = 1
batch_size = 4
max_passage_length = 32
""")
    results = run_pipeline(load_config(cfg), quiet=True, report=False)["th"]
    assert results["bm25"]["num_queries"] == 10
    data = tmp_path / "run" / "th" / "data"
    assert len((data / "queries.unlabeled.tsv").read_text(encoding="utf-8").splitlines()) == 8
    stages = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    assert stages["th/data"]["result"]["passages"] == 4
    # The manifest records the hashes of the user's input files.
    assert any(p.endswith("th.corpus.jsonl.gz") for p in stages["th/data"]["inputs"])


def test_stage_commands_chain_from_files_to_files(tmp_path, tiny_encoder_dir):
    """The per-stage CLI (index, search, mine, generate, train, evaluate) on the tiny task, file to file."""
    from fixtures.tiny_corpus import write_tiny_task

    p = write_tiny_task(tmp_path / "data")
    w = tmp_path / "work"
    steps = [
        ["index", "sparse", str(p["corpus"]), "--lang", "en", "--out", str(w / "bm25")],
        ["index", "dense", str(p["corpus"]), "--model", str(tiny_encoder_dir), "--max-seq-length", "32",
         "--out", str(w / "dense")],
        ["search", str(w / "bm25"), str(p["unlabeled"]), "--out", str(w / "bm25.trec")],
        ["search", str(w / "dense"), str(p["unlabeled"]), "--out", str(w / "dense.trec")],
        ["mine", str(p["unlabeled"]), str(w / "bm25.trec"), str(w / "dense.trec"), "--out", str(w / "mined"),
         "--report-qrels", str(p["qrels_unlabeled"])],
        ["generate", str(p["corpus"]), str(w / "mined" / "mined.jsonl"), "--lang", "en", "--out", str(w / "gen"),
         "--bm25-index", str(w / "bm25"), "--dense-index", str(w / "dense"), "--max-passages", "8"],
        ["train", str(w / "mined" / "mined.jsonl"), "--corpus", str(p["corpus"]), "--model", str(tiny_encoder_dir),
         "--epochs", "1", "--batch-size", "4", "--mini-batch-size", "8", "--max-passage-length", "32",
         "--out", str(w / "model")],
        ["search", str(w / "bm25"), str(p["test"]), "--out", str(w / "test.trec")],
        ["evaluate", str(w / "test.trec"), str(p["qrels"])],
    ]
    for argv in steps:
        assert main(["--quiet", *argv]) == 0, argv
    stats = json.loads((w / "gen" / "stats.json").read_text())
    assert stats["passages_selected"] == 8 and stats["round_trip"]["checked"] > 0
    kept = [json.loads(x) for x in (w / "gen" / "pairs.jsonl").read_text().splitlines() if x.strip()]
    assert len(kept) == stats["kept"] and all(r["query_id"].startswith("gen-") for r in kept)
    assert (w / "model" / "model" / "config.json").exists()
    # Without an index to check the round trip against, generate refuses instead of keeping unverified text.
    assert main(["--quiet", "generate", str(p["corpus"]), str(w / "mined" / "mined.jsonl"), "--lang", "en",
                 "--out", str(w / "gen2")]) == 2


def test_plan_prints_every_stage_and_run_plan_does_no_work(tmp_path, tiny_encoder_dir, capsys):
    cfg_path = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run")
    assert main(["plan", str(cfg_path)]) == 0
    out = capsys.readouterr().out
    for stage in ("bm25", "dense", "mine", "train", "evaluate"):
        assert f"| {stage} |" in out
    assert main(["run", str(cfg_path), "--plan"]) == 0
    assert not (tmp_path / "run" / "manifest.json").exists()  # planned, nothing run


def test_a_plan_that_cannot_fit_is_refused_naming_the_knob(tmp_path, tiny_encoder_dir):
    from lexdr.pipeline.planning import plan_config
    from lexdr.plan import check_fits

    plan = plan_config(load_config(write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run")))
    tight = type(plan)(settings=plan.settings, sizes=plan.sizes, estimates=plan.estimates, memory_bytes=1024,
                       notes=plan.notes)
    with pytest.raises(ConfigError, match="change"):
        check_fits(tight)
