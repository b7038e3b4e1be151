"""One stage contract: every stage of the graph is ``fn(inputs, config, out_dir, executor)``, and each per-stage
CLI command calls the stage function the pipeline calls. Each test runs a command on the inputs a finished tiny
run (``lexdr run``: BM25, base, lexdr-r1, lexdr-gen with passage-cut generation) read, and compares what it
writes with that stage's folder in the run: the same bytes."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from lexdr.cli import main

LABEL = "tiny-en"


@pytest.fixture(scope="module")
def run(tiny_run_dir) -> Path:
    return tiny_run_dir


def _data(run: Path, name: str) -> Path:
    return run / LABEL / "data" / name


def _corpus(run: Path) -> Path:
    """The corpus the run indexed (the tiny config names a local file; the data stage does not copy it)."""
    manifest = json.loads((run / "manifest.json").read_text())
    return Path(manifest["stages"][f"{LABEL}/data"]["result"]["corpus"])


def _files(folder: Path, skip: tuple[str, ...] = ("done.json",)) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in skip}


# What an out-of-core BM25 build measures about itself (config.json's "build"): seconds and its workers' peak
# memory differ between any two builds; every other byte of the index must not.
_MEASURED = ("seconds", "analysis_peak_rss_mib")


def _unmeasured(name: str, data: bytes) -> bytes:
    if not name.endswith("config.json"):
        return data
    cfg = json.loads(data)
    if isinstance(cfg.get("build"), dict):
        cfg["build"] = {k: v for k, v in cfg["build"].items() if k not in _MEASURED}
    return json.dumps(cfg, sort_keys=True).encode()


def _same_files(cli_out: Path, stage_out: Path, skip: tuple[str, ...] = ("done.json",)) -> None:
    ours, theirs = _files(cli_out, skip), _files(stage_out, skip)
    assert sorted(ours) == sorted(theirs)
    differ = [name for name in ours if _unmeasured(name, ours[name]) != _unmeasured(name, theirs[name])]
    assert not differ, f"the CLI and the pipeline wrote different bytes: {differ}"


def _cli(*argv: str) -> None:
    assert main(["--quiet", *argv]) == 0, argv


def test_every_stage_of_the_graph_has_the_one_shape(tiny_encoder_dir, tmp_path):
    """(inputs, config, out_dir, executor), a frozen inputs dataclass, and a table of the files it reads and
    writes in its docstring."""
    import dataclasses

    from fixtures.tiny_corpus import write_tiny_config
    from lexdr.pipeline import load_config, method_graph

    extra = '\n[generation]\nenabled = true\nbackend = "passage-cut"\n'
    cfg = load_config(write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run", extra=extra,
                                        run_extra="rounds = 2\ngold_upper_bound = true"))
    specs = method_graph(cfg)
    fns = {spec.fn for spec in specs}
    assert {f.__name__ for f in fns} >= {"data_stage", "bm25_stage", "dense_stage", "mine_stage", "generate_stage",
                                         "search_stage", "train_stage", "evaluate_stage"}
    for fn in fns:
        assert list(inspect.signature(fn).parameters) == ["inputs", "config", "out_dir", "executor"], fn
        assert "r / w" in (fn.__doc__ or ""), f"{fn.__name__}: no table of the files it reads and writes"
    for spec in specs:
        assert dataclasses.is_dataclass(spec.inputs) and type(spec.inputs).__dataclass_params__.frozen, spec.name


def test_the_executor_is_resolved_once_and_is_never_none(monkeypatch, tmp_path):
    """run_stages makes the executor once, when the first stage runs, and hands every stage that object."""
    from lexdr import executors
    from lexdr.pipeline import StageSpec
    from lexdr.pipeline.engine import StageRunner
    from lexdr.pipeline.run import run_stages

    made, seen = [], []
    real = executors.resolve_executor

    def counting(spec, show_progress=False):
        made.append(spec)
        return real(spec, show_progress)

    monkeypatch.setattr("lexdr.pipeline.run.resolve_executor", counting)

    def stage(inputs, config, out_dir, executor):
        seen.append(executor)
        (Path(out_dir) / "out.txt").write_text(str(inputs))
        return {}

    specs = [StageSpec(f"s{i}", stage, i, None) for i in range(3)]
    run_stages(StageRunner(tmp_path / "run", {}), specs, executors.ExecutorSpec())
    assert len(made) == 1 and len(seen) == 3
    assert all(isinstance(e, executors.LocalExecutor) and e is seen[0] for e in seen)
    assert isinstance(executors.resolve_executor(None), executors.LocalExecutor)


def test_index_sparse_writes_the_bm25_stage_index(run, tmp_path):
    _cli("index", "sparse", str(_corpus(run)), "--lang", "en", "--out", str(tmp_path / "bm25"))
    _same_files(tmp_path / "bm25", run / LABEL / "bm25" / "index")


def test_index_dense_writes_the_dense_stage_index(run, tmp_path, tiny_encoder_dir):
    # the tiny run's [dense]: max_seq_length 32, batch 8; its token ids live beside the index, the CLI's inside
    # it until the index is built
    _cli("index", "dense", str(_corpus(run)), "--model", str(tiny_encoder_dir), "--max-seq-length", "32",
         "--batch-size", "8", "--out", str(tmp_path / "dense"))
    _same_files(tmp_path / "dense", run / LABEL / "dense-base" / "index")


@pytest.mark.parametrize("stage,tag,part", [("bm25", "bm25", "unlabeled"), ("bm25", "bm25", "test"),
                                            ("dense-base", "dense-base", "unlabeled"),
                                            ("dense-r1", "dense-r1", "test")])
def test_search_writes_the_retrieval_stages_runs(run, tmp_path, stage, tag, part):
    out = tmp_path / f"run.{part}.trec"
    # the tiny run's [dense] batch_size (a dense index's queries are encoded in batches of it)
    _cli("search", str(run / LABEL / stage / "index"), str(_data(run, f"queries.{part}.tsv")), "--out", str(out),
         "--tag", tag, "--batch-size", "8")
    assert out.read_bytes() == (run / LABEL / stage / f"run.{part}.trec").read_bytes()


@pytest.mark.parametrize("stage,index,tag", [("generated-bm25", "bm25", "bm25"),
                                             ("generated-dense", "dense-base", "dense")])
def test_search_writes_the_generated_queries_runs(run, tmp_path, stage, index, tag):
    queries = run / LABEL / "generate" / "queries.generated.tsv"
    assert queries.is_file(), "the tiny run's generation kept no query: nothing to compare"
    out = tmp_path / "run.generated.trec"
    _cli("search", str(run / LABEL / index / "index"), str(queries), "--out", str(out), "--tag", tag)
    assert out.read_bytes() == (run / LABEL / stage / "run.generated.trec").read_bytes()


def test_mine_writes_the_mining_stage(run, tmp_path):
    # the tiny run's [mining]: rule agree@3, the rest default; the unlabeled qrels for the report
    _cli("mine", str(_data(run, "queries.unlabeled.tsv")), str(run / LABEL / "bm25" / "run.unlabeled.trec"),
         str(run / LABEL / "dense-base" / "run.unlabeled.trec"), "--rule", "agree@3", "--report-qrels",
         str(json.loads((run / "manifest.json").read_text())["config"]["languages"][0]["unlabeled_qrels"]),
         "--out", str(tmp_path / "mine"))
    _same_files(tmp_path / "mine", run / LABEL / "mine")


def test_mine_writes_the_generated_queries_mining(run, tmp_path):
    _cli("mine", str(run / LABEL / "generate" / "queries.generated.tsv"),
         str(run / LABEL / "generated-bm25" / "run.generated.trec"),
         str(run / LABEL / "generated-dense" / "run.generated.trec"), "--rule", "agree@3",
         "--out", str(tmp_path / "mine"))
    _same_files(tmp_path / "mine", run / LABEL / "mine-generated")


def test_generate_writes_the_generate_stage(run, tmp_path):
    # the tiny run's [generation]: passage-cut, 6 passages, [run] seed 7; the round trip against both indexes
    _cli("generate", str(_corpus(run)), str(run / LABEL / "mine" / "mined.jsonl"), "--lang", "en",
         "--backend", "passage-cut", "--max-passages", "6", "--seed", "7",
         "--unlabeled-queries", str(_data(run, "queries.unlabeled.tsv")),
         "--bm25-index", str(run / LABEL / "bm25" / "index"),
         "--dense-index", str(run / LABEL / "dense-base" / "index"),
         "--out", str(tmp_path / "gen"))
    gen = run / LABEL / "generate"
    # generation times itself ("seconds" per passage in the shards, their mean in stats.json): compared apart
    _same_files(tmp_path / "gen", gen, skip=("done.json", "stats.json") + tuple(
        p.name for p in (gen / "shards").glob("*.jsonl")))
    for shard in (gen / "shards").glob("*.jsonl"):
        strip = lambda text: [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in text.splitlines()]
        assert strip((tmp_path / "gen" / "shards" / shard.name).read_text()) == strip(shard.read_text())
    ours, theirs = (json.loads(p.read_text()) for p in (tmp_path / "gen" / "stats.json", gen / "stats.json"))
    assert {k: v for k, v in ours.items() if k != "seconds_per_passage"} == \
        {k: v for k, v in theirs.items() if k != "seconds_per_passage"}


def test_train_writes_the_training_stage_model(run, tmp_path, tiny_encoder_dir):
    # the tiny run's [training] (epochs 1, batch 4, mini-batch 8, passages 32 tokens, lr 1e-3) and [run] seed 7
    _cli("train", str(run / LABEL / "mine" / "mined.jsonl"), "--corpus", str(_corpus(run)),
         "--model", str(tiny_encoder_dir), "--epochs", "1", "--batch-size", "4", "--mini-batch-size", "8",
         "--max-passage-length", "32", "--lr", "1e-3", "--seed", "7", "--out", str(tmp_path / "train"))
    ours, theirs = tmp_path / "train" / "model", run / "train-r1" / "model"
    assert (ours / "model.safetensors").read_bytes() == (theirs / "model.safetensors").read_bytes()
    losses = [[json.loads(x)["loss"] for x in (folder / "train_log.jsonl").read_text().splitlines()]
              for folder in (tmp_path / "train", run / "train-r1")]
    assert losses[0] == losses[1] and losses[0]


def test_mine_takes_every_mining_setting_as_an_option(run, tmp_path):
    """A [mining] setting the command does not list itself (here the teacher temperature) is still an option,
    with the setting's help, and reaches the mining: the mined file records it."""
    import json

    _cli("mine", str(_data(run, "queries.unlabeled.tsv")), str(run / LABEL / "bm25" / "run.unlabeled.trec"),
         str(run / LABEL / "dense-base" / "run.unlabeled.trec"), "--teacher-temperature", "0.37",
         "--out", str(tmp_path / "mine"))
    stats = json.loads((tmp_path / "mine" / "stats.json").read_text())
    assert stats["config"]["teacher_temperature"] == 0.37


def test_a_bad_value_of_an_enum_setting_is_one_line_naming_the_valid_ones(run, tmp_path, capsys):
    """The settings options pass values to the config class, which names the valid ones (not a traceback)."""
    assert main(["--quiet", "index", "dense", str(_corpus(run)), "--out", str(tmp_path / "d"),
                 "--index-type", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "index_type must be one of" in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()
