"""Issue 22: nothing a user already has is destroyed, and no mismatch passes silently.

Every CLI command is tried against a folder of another kind, an output equal to one of its inputs, a second
process on the same run folder and a full disk; each must exit 2 with one line naming the fix, leave the
folder as it was, and print no traceback."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.tiny_corpus import write_tiny_config, write_tiny_task
from lexdr.cli import main
from lexdr.errors import LexdrError

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (or the file itself) with its SHA-256: equal snapshots, untouched folder."""
    folder = Path(folder)
    if folder.is_file():
        return {folder.name: hashlib.sha256(folder.read_bytes()).hexdigest()}
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(capsys, args: list[str], *needles: str) -> str:
    """Run ``lexdr ARGS`` in process: exit 2, exactly one ``error:`` line holding ``needles`` and a fix, no
    traceback. Returns that line. (A config's problems are listed one per line under that line: they count.)"""
    assert main(args) == 2, args
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    if "problem(s):" in errors[0]:
        errors = [err.strip()]
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert "fix" in errors[0].lower() or "; change " in errors[0], errors[0]  # the plan's refusals name the knob
    return errors[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_encoder_dir) -> dict[str, Path]:
    """A tiny task with a sparse and a dense index and a run of each (built once for the module)."""
    root = tmp_path_factory.mktemp("integrity")
    data = write_tiny_task(root / "data")
    sparse, dense = root / "sparse", root / "dense"
    model = str(tiny_encoder_dir)
    assert main(["-q", "index", "sparse", str(data["corpus"]), "--out", str(sparse), "--lang", "en"]) == 0
    assert main(["-q", "index", "dense", str(data["corpus"]), "--out", str(dense), "--model", model,
                 "--max-seq-length", "32"]) == 0
    for kind, index in (("sparse", sparse), ("dense", dense)):
        assert main(["-q", "search", kind, str(index), str(data["test"]), "--out", str(root / f"{kind}.trec"),
                     "-k", "10"]) == 0
    return {**data, "root": root, "sparse": sparse, "dense": dense, "model": Path(model),
            "sparse_run": root / "sparse.trec", "dense_run": root / "dense.trec"}


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------ a folder of another kind
def test_index_folders_say_their_kind(built):
    from lexdr.formats.files import DENSE_INDEX, SPARSE_INDEX, folder_kind

    assert json.loads((built["sparse"] / "config.json").read_text())["kind"] == SPARSE_INDEX
    assert json.loads((built["dense"] / "config.json").read_text())["kind"] == DENSE_INDEX
    assert folder_kind(built["sparse"]) == SPARSE_INDEX and folder_kind(built["dense"]) == DENSE_INDEX


@pytest.mark.parametrize("command, target", [("sparse", "dense"), ("dense", "sparse")])
def test_index_into_a_folder_of_the_other_kind_is_refused_and_overwrite_replaces_it(built, tmp_path, capsys,
                                                                                     command, target):
    other = _copy(built[target], tmp_path / target)
    before = _snapshot(other)
    extra = ["--lang", "en"] if command == "sparse" else ["--model", str(built["model"]), "--max-seq-length", "32"]
    args = ["-q", "index", command, str(built["corpus"]), "--out", str(other), *extra]
    _refused(capsys, args, str(other), "--overwrite", "another folder")
    assert _snapshot(other) == before
    # The other kind is still what it was, and still searchable.
    assert main(["-q", "search", target, str(other), str(built["test"]), "--out", str(tmp_path / "r.trec")]) == 0
    assert main([*args, "--overwrite"]) == 0
    from lexdr.formats.files import folder_kind

    assert folder_kind(other) == command
    leftovers = {"sparse": "vocab.index.json", "dense": "index.faiss"}[target]
    assert not (other / leftovers).exists()  # nothing of the old index is left beside the new one


@pytest.mark.parametrize("command", ["sparse", "dense"])
def test_index_into_a_folder_of_user_files_is_refused_even_with_overwrite(built, tmp_path, capsys, command):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    (mine / "config.json").write_text('{"my": "settings"}')
    extra = ["--lang", "en"] if command == "sparse" else ["--model", str(built["model"]), "--max-seq-length", "32"]
    for flags in ([], ["--overwrite"]):
        _refused(capsys, ["-q", "index", command, str(built["corpus"]), "--out", str(mine), *extra, *flags],
                 "thesis.tex")
    assert _snapshot(mine) == {"config.json": hashlib.sha256(b'{"my": "settings"}').hexdigest(),
                               "thesis.tex": hashlib.sha256(b"years of work").hexdigest()}


@pytest.mark.parametrize("command, target", [("sparse", "dense"), ("dense", "sparse")])
def test_search_of_an_index_of_the_other_kind_names_the_right_command(built, tmp_path, capsys, command, target):
    before = _snapshot(built[target])
    _refused(capsys, ["-q", "search", command, str(built[target]), str(built["test"]), "--out",
                      str(tmp_path / "r.trec")], f"is a {target} index", "lexdr search")
    assert _snapshot(built[target]) == before and not (tmp_path / "r.trec").exists()


def test_an_index_written_before_the_kind_field_still_opens(built, tmp_path):
    from lexdr.retrieval import load_retriever
    from lexdr.records import Query

    for name in ("sparse", "dense"):
        old = _copy(built[name], tmp_path / name)
        meta = json.loads((old / "config.json").read_text())
        del meta["kind"]
        (old / "config.json").write_text(json.dumps(meta))
        hits = load_retriever(old).search([Query("q", "paris capital")], k=3)["q"]
        assert hits and hits[0].doc_id.startswith(("d", "x"))
    # and a sparse build into an old sparse folder is a rebuild of the same kind, not a refusal
    assert main(["-q", "index", "sparse", str(built["corpus"]), "--out", str(tmp_path / "sparse"), "--lang", "en"]) == 0


def test_generate_refuses_an_index_of_the_other_kind_as_round_trip_index(built, tmp_path, capsys):
    assert main(["-q", "mine", str(built["test"]), str(built["sparse_run"]), str(built["dense_run"]), "--out",
                 str(tmp_path / "mine")]) == 0
    capsys.readouterr()
    _refused(capsys, ["-q", "generate", str(built["corpus"]), str(tmp_path / "mine" / "mined.jsonl"), "--out",
                      str(tmp_path / "gen"), "--lang", "en", "--backend", "passage-cut", "--bm25-index",
                      str(built["dense"])], "lexdr search dense")
    assert not (tmp_path / "gen").exists()


# ------------------------------------------------------------------ an output equal to an input
def _output_over_input_cases(b: dict[str, Path], tmp: Path) -> list[tuple[list[str], Path]]:
    """(argv, the input the output names), for every command with a file input and an output."""
    q = tmp / "q.tsv"
    q.write_bytes(b["test"].read_bytes())
    s, d = tmp / "s.trec", tmp / "d.trec"
    s.write_bytes(b["sparse_run"].read_bytes())
    d.write_bytes(b["dense_run"].read_bytes())
    qrels = tmp / "qrels.txt"
    qrels.write_bytes(b["qrels"].read_bytes())
    mine_dir = tmp / "m"
    mine_dir.mkdir()
    mined_q = mine_dir / "stats.json"  # a query file that happens to sit where mine writes its stats
    mined_q.write_bytes(b["test"].read_bytes())
    gen_dir = tmp / "g"
    gen_dir.mkdir()
    gen_in = gen_dir / "pairs.jsonl"
    return [
        (["search", "sparse", str(b["sparse"]), str(q), "--out", str(q)], q),
        (["search", "dense", str(b["dense"]), str(q), "--out", str(tmp / "." / "q.tsv")], q),
        (["fuse", str(s), str(d), "--out", str(s)], s),
        (["fuse", str(s), str(d), "--out", str(d), "--method", "rrf"], d),
        (["fuse", str(s), str(d), "--out", str(tmp / "x.trec"), "--method", "adaptive", "--fit-on", str(s),
          str(tmp / "x.trec")], tmp / "x.trec"),
        (["evaluate", str(s), str(qrels), "--json", str(qrels)], qrels),
        (["mine", str(mined_q), str(s), str(d), "--out", str(mine_dir)], mined_q),
        (["generate", str(b["corpus"]), str(gen_in), "--out", str(gen_dir), "--lang", "en", "--no-round-trip",
          "--backend", "passage-cut"], gen_in),
    ]


def test_an_output_that_is_an_input_is_refused_for_every_command(built, tmp_path, capsys):
    cases = _output_over_input_cases(built, tmp_path)
    (tmp_path / "x.trec").write_bytes(built["dense_run"].read_bytes())
    (tmp_path / "g" / "pairs.jsonl").write_text("")
    for args, victim in cases:
        before = _snapshot(victim)
        _refused(capsys, ["-q", *args], "is also an input", "choose another output path")
        assert _snapshot(victim) == before, args


def test_a_hard_link_or_symlink_to_an_input_is_the_same_file(tmp_path):
    from lexdr.formats.files import refuse_output_over_input

    q = tmp_path / "q.tsv"
    q.write_text("q1\thello\n")
    os.link(q, tmp_path / "hard.tsv")
    (tmp_path / "soft.tsv").symlink_to(q)
    for alias in ("hard.tsv", "soft.tsv"):
        with pytest.raises(LexdrError, match="is also an input"):
            refuse_output_over_input(tmp_path / alias, [q])
    refuse_output_over_input(tmp_path / "new.trec", [q, None])  # another path: fine


# ------------------------------------------------------------------ a second process on the same run folder
_HOLD = """
import sys, time
from lexdr.formats.files import folder_lock
with folder_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold_lock(folder: Path, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder), str(seconds)], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_run_on_a_folder_in_use_stops_at_once(tmp_path, tiny_encoder_dir, capsys):
    run_dir = tmp_path / "run"
    cfg = write_tiny_config(tmp_path, tiny_encoder_dir, run_dir)
    holder = _hold_lock(run_dir, 60)
    try:
        t0 = time.time()
        line = _refused(capsys, ["-q", "run", str(cfg)], str(run_dir), "in use by another lexdr run",
                        f"process {holder.pid}")
        assert time.time() - t0 < 30 and "out_dir" in line
        assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]  # no stage started
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_run_is_not_stale(tmp_path):
    from lexdr.formats.files import folder_lock

    holder = _hold_lock(tmp_path / "run", 60)
    with pytest.raises(LexdrError, match="in use"):
        with folder_lock(tmp_path / "run"):
            pass
    holder.kill()  # SIGKILL: no cleanup ran, the lock file stays
    holder.wait()
    assert (tmp_path / "run" / ".lock").exists()
    with folder_lock(tmp_path / "run"):  # the kernel released the lock with the process
        pass
    with folder_lock(tmp_path / "run"):  # and an orderly exit releases it too
        pass


# ------------------------------------------------------------------ runs of other queries
def _renamed(run_file: Path, out: Path, prefix: str, keep: int | None = None) -> Path:
    """``run_file`` with every query id renamed ``prefix + id`` (the first ``keep`` query ids left as they are)."""
    lines, seen = [], []
    for line in run_file.read_text().splitlines():
        qid, rest = line.split(" ", 1)
        if qid not in seen:
            seen.append(qid)
        lines.append(f"{qid if keep is not None and seen.index(qid) < keep else prefix + qid} {rest}")
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.mark.parametrize("method", ["rrf", "adaptive"])
def test_fusing_runs_of_disjoint_queries_is_an_error(built, tmp_path, capsys, method):
    other = _renamed(built["dense_run"], tmp_path / "other.trec", "zz")
    _refused(capsys, ["-q", "fuse", str(built["sparse_run"]), str(other), "--out", str(tmp_path / "f.trec"),
                      "--method", method], "share no query id")
    assert not (tmp_path / "f.trec").exists()


def test_fit_on_runs_of_disjoint_queries_is_an_error(built, tmp_path, capsys):
    other = _renamed(built["dense_run"], tmp_path / "other.trec", "zz")
    _refused(capsys, ["-q", "fuse", str(built["sparse_run"]), str(built["dense_run"]), "--out",
                      str(tmp_path / "f.trec"), "--method", "adaptive", "--fit-on", str(built["sparse_run"]),
                      str(other)], "share no query id", "--fit-on")
    assert not (tmp_path / "f.trec").exists()


def test_fusing_runs_that_share_only_some_queries_warns_with_counts(built, tmp_path, caplog):
    import logging

    part = _renamed(built["dense_run"], tmp_path / "part.trec", "zz", keep=5)
    with caplog.at_level(logging.WARNING, logger="lexdr.fusion"):
        assert main(["-q", "fuse", str(built["sparse_run"]), str(part), "--out", str(tmp_path / "f.trec")]) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("only 5 query ids are in both" in m and "14 are in one of them only" in m for m in warned), warned


def test_mining_with_a_run_of_other_queries_is_an_error(built, tmp_path, capsys):
    other = _renamed(built["sparse_run"], tmp_path / "other.trec", "zz")
    _refused(capsys, ["-q", "mine", str(built["test"]), str(other), str(built["dense_run"]), "--out",
                      str(tmp_path / "m")], "share no query id", "BM25 run")
    assert not (tmp_path / "m" / "mined.jsonl").exists()


def test_mining_with_a_run_of_some_other_queries_warns_with_counts(built, tmp_path, caplog):
    import logging

    part = _renamed(built["dense_run"], tmp_path / "part.trec", "zz", keep=9)
    with caplog.at_level(logging.WARNING, logger="lexdr.fusion"):
        assert main(["-q", "mine", str(built["test"]), str(built["sparse_run"]), str(part), "--out",
                     str(tmp_path / "m")]) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("only 9 query ids are in both the queries (12)" in m for m in warned), warned


# ------------------------------------------------------------------ cut-offs and k
@pytest.mark.parametrize("args", [
    ["evaluate", "{sparse_run}", "{qrels}", "--metrics", "MRR@0"],
    ["evaluate", "{sparse_run}", "{qrels}", "--metrics", "nDCG@0,MRR@10"],
    ["fuse", "{sparse_run}", "{dense_run}", "--out", "{tmp}/f.trec", "-k", "0"],
    ["search", "sparse", "{sparse}", "{test}", "--out", "{tmp}/s.trec", "-k", "0"],
    ["search", "dense", "{dense}", "{test}", "--out", "{tmp}/d.trec", "-k", "0"],
])
def test_cut_offs_and_k_below_one_are_refused(built, tmp_path, capsys, args):
    argv = [a.format(tmp=tmp_path, **{k: v for k, v in built.items()}) for a in args]
    assert main(["-q", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("at least 1" in err or "greater than or equal to 1" in err), err
    assert not list(tmp_path.glob("*.trec"))


def test_fuse_runs_refuses_top_k_zero():
    from lexdr.fusion import fuse_runs
    from lexdr.records import Hit

    run = {"q": [Hit("d1", 1.0), Hit("d2", 0.5)]}
    with pytest.raises(LexdrError, match="top_k >= 1"):
        fuse_runs([run, run], top_k=0)


# ------------------------------------------------------------------ the plan prices what the run will do
def _e5_shaped_folder(root: Path) -> Path:
    """A model folder whose config.json has e5-small's shape (the plan reads only that)."""
    folder = root / "e5-shaped"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 12,
                                                    "num_attention_heads": 12, "max_position_embeddings": 512}))
    return folder


def test_plan_and_run_refuse_a_training_chunk_that_cannot_fit(tmp_path, capsys):
    model = _e5_shaped_folder(tmp_path)
    big = "mini_batch_size = 512\nmax_passage_length = 512\n"
    cfg = write_tiny_config(tmp_path, model, tmp_path / "run")
    text = cfg.read_text().replace("mini_batch_size = 8\nmax_passage_length = 32\n", big)
    assert big in text
    cfg.write_text(text)
    _refused(capsys, ["plan", str(cfg)], "train", "mini_batch_size", "GiB")
    _refused(capsys, ["-q", "run", str(cfg)], "train", "mini_batch_size")
    assert not (tmp_path / "run" / "manifest.json").exists() and not (tmp_path / "run" / "tiny-en").exists()
    # the shape the measured peak was taken at does not grow the plan
    from lexdr.pipeline import load_config
    from lexdr.pipeline.planning import plan_config

    cfg.write_text(text.replace(big, "mini_batch_size = 32\nmax_passage_length = 256\n"))
    train = [e for e in plan_config(load_config(cfg)).estimates if e.stage.value == "train"]
    from lexdr.plan import RATES

    assert train and all(e.peak_bytes == RATES["train_peak_rss"] for e in train)


def test_plan_refuses_a_base_model_that_is_not_there(tmp_path, capsys):
    cfg = write_tiny_config(tmp_path, tmp_path / "no-such-model", tmp_path / "run")
    _refused(capsys, ["plan", str(cfg)], "base_model", "no-such-model")
    cfg.write_text(cfg.read_text().replace(str(tmp_path / "no-such-model"), "nobody/no-such-model"))
    os.environ["HF_HUB_OFFLINE"] = "1"  # conftest sets it too: this machine has no network
    _refused(capsys, ["plan", str(cfg)], "nobody/no-such-model", "not on this machine")


def test_plan_with_an_unknown_device_is_one_line(tmp_path, tiny_encoder_dir, capsys):
    cfg = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run")
    assert main(["plan", str(cfg), "--device", "tpu"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unknown device 'tpu'" in err and "cpu" in err, err


# ------------------------------------------------------------------ a skip re-reads what a later stage reads
def test_a_same_size_edit_with_its_time_restored_is_caught_on_skip(tmp_path, caplog):
    import logging

    from lexdr.pipeline.engine import Stage, StageRunner

    calls: list[str] = []

    def produce(folder: Path) -> dict:
        calls.append("produce")
        (folder / "run.trec").write_text("q1 Q0 d1 1 2.0 x\nq1 Q0 d2 2 1.0 x\n")
        return {}

    StageRunner(tmp_path / "run", {}).run(Stage("a", produce))
    out = tmp_path / "run" / "a" / "run.trec"
    st = out.stat()
    out.write_text(out.read_text().replace("d1", "d9"))  # same size
    os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the time put back, as `touch -r` or rsync -t do
    with caplog.at_level(logging.WARNING, logger="lexdr.pipeline.engine"):
        StageRunner(tmp_path / "run", {}).run(Stage("a", produce))
    assert calls == ["produce", "produce"] and "d1" in out.read_text()
    assert any("content changed" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ work redone for nothing
def test_the_model_card_rewritten_after_evaluation_is_not_damage(tmp_path, tiny_encoder_dir, caplog):
    """Run; lose train-r1's done.json (a kill after the model was saved); re-run with other metrics, so the
    training takes the "already holds this training's model" path over a folder that has a card, and the card
    is rewritten with the new metrics; an identical third run must then skip the training."""
    import logging

    from lexdr.pipeline import load_config, run_pipeline

    cfg_path = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run", epochs=1)
    run_pipeline(load_config(cfg_path), quiet=True, report=False)
    (tmp_path / "run" / "train-r1" / "done.json").unlink()
    text = cfg_path.read_text().replace("seed = 7", 'seed = 7\nmetrics = ["MRR@10", "Recall@5"]')
    cfg_path.write_text(text)
    run_pipeline(load_config(cfg_path), quiet=True, report=False)
    assert "Recall@5" in (tmp_path / "run" / "train-r1" / "model" / "README.md").read_text()
    with caplog.at_level(logging.INFO, logger="lexdr.pipeline.engine"):
        run_pipeline(load_config(cfg_path), quiet=True, report=False)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["train-r1"]["skipped"], [r.getMessage() for r in caplog.records]
    assert not any("damaged" in r.getMessage() for r in caplog.records)


def test_progress_bars_and_batch_size_do_not_rerun_generation_and_a_new_seed_regenerates(tmp_path, tiny_encoder_dir):
    from lexdr.pipeline import load_config, run_pipeline

    extra = '\n[generation]\nenabled = true\nbackend = "passage-cut"\nmax_passages = 10\n'
    cfg_path = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run", epochs=1, extra=extra)
    manifest = tmp_path / "run" / "manifest.json"

    def skipped() -> dict[str, bool]:
        return {k: v["skipped"] for k, v in json.loads(manifest.read_text())["stages"].items()}

    run_pipeline(load_config(cfg_path), quiet=True, report=False)  # lexdr -q run
    run_pipeline(load_config(cfg_path), quiet=False, report=False)  # lexdr run
    assert all(skipped().values()), skipped()
    cfg_path.write_text(cfg_path.read_text().replace("max_passages = 10\n", "max_passages = 10\nbatch_size = 2\n"))
    run_pipeline(load_config(cfg_path), quiet=True, report=False)
    assert all(skipped().values()), skipped()
    # Another seed changes which passages are sampled: generation runs again (and so does what reads it),
    # instead of stopping with "delete .../generate/shards".
    cfg_path.write_text(cfg_path.read_text().replace("seed = 7", "seed = 8"))
    run_pipeline(load_config(cfg_path), quiet=True, report=False)
    assert not skipped()["tiny-en/generate"]
    shards = json.loads((tmp_path / "run" / "tiny-en" / "generate" / "shards" / "manifest.json").read_text())
    from lexdr.generation.config import GenerationConfig

    assert shards["fingerprint"] == GenerationConfig(backend="passage-cut", max_passages=10, seed=8).fingerprint()


def test_a_run_folder_copied_elsewhere_does_not_re_encode_with_its_trained_models(tmp_path, tiny_encoder_dir,
                                                                                   caplog):
    import logging
    import shutil

    from lexdr.pipeline import load_config, run_pipeline
    from lexdr.retrieval import load_retriever
    from lexdr.records import Query

    cfg_path = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run", epochs=1)
    first = run_pipeline(load_config(cfg_path), quiet=True, report=False)
    shutil.copytree(tmp_path / "run", tmp_path / "moved" / "run", symlinks=True)  # cp -a: times kept
    cfg_path.write_text(cfg_path.read_text().replace(str(tmp_path / "run"), str(tmp_path / "moved" / "run")))
    with caplog.at_level(logging.INFO):
        again = run_pipeline(load_config(cfg_path), quiet=True, report=False)
    messages = [r.getMessage() for r in caplog.records]
    assert not any("re-encoding" in m or "encoded by another encoder" in m for m in messages), messages
    assert not any("dense-r1: running" in m and "index" in m for m in messages)
    assert again == first
    # the reused index now names the model where it is, so `lexdr search dense` on it works without the old folder
    shutil.rmtree(tmp_path / "run")
    index = tmp_path / "moved" / "run" / "tiny-en" / "dense-r1" / "index"
    meta = json.loads((index / "config.json").read_text())
    assert meta["encoder"]["model"].startswith(str(tmp_path / "moved" / "run"))
    assert load_retriever(index).search([Query("q", "paris capital")], k=2)["q"]


# ------------------------------------------------------------------ one line, exit 2, nothing half-written
def test_index_dense_with_out_equal_to_the_corpus_file(built, capsys):
    before = _snapshot(built["corpus"])
    _refused(capsys, ["-q", "index", "dense", str(built["corpus"]), "--out", str(built["corpus"]), "--model",
                      str(built["model"]), "--max-seq-length", "32"], "is a file")
    assert _snapshot(built["corpus"]) == before


def test_index_dense_into_a_read_only_folder(built, tmp_path, capsys, monkeypatch):
    from lexdr.formats import files

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    real = os.access
    if os.access(ro, os.W_OK):  # root ignores permissions: make the OS say no the way it would to a user
        monkeypatch.setattr(files.os, "access", lambda p, m: False if Path(p) == ro else real(p, m))
    _refused(capsys, ["-q", "index", "dense", str(built["corpus"]), "--out", str(ro / "index"), "--model",
                      str(built["model"]), "--max-seq-length", "32"], "not writable", str(ro))
    assert not list(ro.iterdir())


def test_max_seq_length_above_the_models_positions_names_the_limit(built, tmp_path, capsys):
    long_corpus = tmp_path / "long.jsonl"
    long_corpus.write_text(json.dumps({"_id": "d1", "text": "word " * 200_000}) + "\n")
    _refused(capsys, ["-q", "index", "dense", str(long_corpus), "--out", str(tmp_path / "idx"), "--model",
                      str(built["model"]), "--max-seq-length", "1000"], "--max-seq-length", "at most 128")
    assert not (tmp_path / "idx").exists()


@pytest.mark.parametrize("where, value", [("config", "-5"), ("config", "99999999999999999999"),
                                          ("train", "-5"), ("train", "99999999999999999999")])
def test_a_seed_out_of_range_is_one_line(built, tmp_path, tiny_encoder_dir, capsys, where, value):
    if where == "config":
        cfg = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run")
        cfg.write_text(cfg.read_text().replace("seed = 7", f"seed = {value}"))
        _refused(capsys, ["plan", str(cfg)], "seed must be between 0 and 4294967295")
        _refused(capsys, ["-q", "run", str(cfg)], "seed must be between 0 and 4294967295")
        assert not (tmp_path / "run").exists()
    else:
        mined = tmp_path / "mined.jsonl"
        mined.write_text("")
        _refused(capsys, ["-q", "train", str(mined), "--corpus", str(built["corpus"]), "--out", str(tmp_path / "t"),
                          "--model", str(built["model"]), "--seed", value], "seed must be between 0 and 4294967295")
        assert not (tmp_path / "t").exists()


def test_a_generator_folder_with_only_pickled_weights_is_refused_before_unpickling(built, tmp_path, capsys):
    folder = tmp_path / "pickled-lm"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    assert main(["-q", "mine", str(built["test"]), str(built["sparse_run"]), str(built["dense_run"]), "--out",
                 str(tmp_path / "m")]) == 0
    capsys.readouterr()
    _refused(capsys, ["-q", "generate", str(built["corpus"]), str(tmp_path / "m" / "mined.jsonl"), "--out",
                      str(tmp_path / "g"), "--lang", "en", "--no-round-trip", "--backend", "causal-fewshot",
                      "--model", str(folder)], "pytorch_model.bin", "pickle")


@pytest.mark.parametrize("command", ["sparse", "dense"])
def test_a_full_disk_while_indexing_is_one_line_naming_the_folder(built, tmp_path, capsys, monkeypatch, command):
    import numpy as np

    real_save = np.save

    def full(file, arr, *a, **k):  # write a little, then the disk is full
        if hasattr(file, "write"):
            file.write(b"\x93NUMPY" + b"\0" * 4096)
        else:
            Path(str(file) if str(file).endswith(".npy") else f"{file}.npy").write_bytes(b"\0" * 4096)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    out = tmp_path / "index"
    extra = ["--lang", "en"] if command == "sparse" else ["--model", str(built["model"]), "--max-seq-length", "32"]
    line = _refused(capsys, ["-q", "index", command, str(built["corpus"]), "--out", str(out), *extra],
                    "no space left on the device", "MiB", "another disk")
    assert str(tmp_path) in line
    monkeypatch.setattr(np, "save", real_save)
    # nothing half-written: no temp file or folder stays beside or inside the output
    left = [p for p in tmp_path.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert not left, left
    assert not out.exists() or not list(out.rglob("*.npy"))


@pytest.mark.parametrize("where", ["corpus", "queries"])
def test_a_lone_surrogate_is_the_same_error_for_sparse_and_dense(built, tmp_path, capsys, where):
    corpus, queries = tmp_path / "corpus.jsonl", tmp_path / "queries.jsonl"
    corpus.write_bytes(built["corpus"].read_bytes())
    queries.write_text('{"_id": "q1", "text": "paris"}\n')
    target = corpus if where == "corpus" else queries
    with target.open("a") as fh:
        fh.write('{"_id": "bad", "text": "broken \\ud800 text"}\n')
    line_no = len(target.read_text().splitlines())
    for kind in ("sparse", "dense"):
        if where == "corpus":
            extra = ["--lang", "en"] if kind == "sparse" else ["--model", str(built["model"]), "--max-seq-length", "32"]
            args = ["-q", "index", kind, str(corpus), "--out", str(tmp_path / kind), *extra]
        else:
            args = ["-q", "search", kind, str(built[kind]), str(queries), "--out", str(tmp_path / f"{kind}.trec")]
        _refused(capsys, args, f"{target}:{line_no}", "\\ud800")
    assert not list(tmp_path.glob("*.trec")) and not (tmp_path / "sparse").exists()


@pytest.mark.parametrize("damage", ["data.csc.index.npy", "vocab.terms.utf8", "vocab.ids.npy", "doc_ids.utf8",
                                    "doc_ids.offsets.npy", "vocab.index.json (no compact copies)"])
def test_search_sparse_on_a_truncated_index_file_says_rebuild(built, tmp_path, capsys, damage):
    index = _copy(built["sparse"], tmp_path / "sparse")
    if damage.endswith("(no compact copies)"):  # a folder written before them is read from its JSON files
        for name in ("doc_ids.utf8", "doc_ids.offsets.npy", "vocab.terms.utf8", "vocab.terms.offsets.npy",
                     "vocab.ids.npy"):
            (index / name).unlink()
        damage = damage.split()[0]
    f = index / damage
    f.write_bytes(f.read_bytes()[: max(1, f.stat().st_size // 2)])
    _refused(capsys, ["-q", "search", "sparse", str(index), str(built["test"]), "--out", str(tmp_path / "r.trec")],
             "damaged", "rebuild")
    assert not (tmp_path / "r.trec").exists()


def test_ctrl_c_in_a_training_rank_ends_it_quietly(monkeypatch, capsys):
    from lexdr.training import distributed

    def interrupted(argv=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "main", interrupted)
    assert distributed.rank_entry([]) == 130
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out


# ------------------------------------------------------------------ smaller things users see
def test_a_trained_model_encodes_documents_with_the_passage_prompt(tmp_path, tiny_encoder_dir):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from lexdr.formats import write_corpus_jsonl
    from lexdr.records import Doc
    from lexdr.training.config import TrainConfig
    from lexdr.training.trainer import TrainingExample, train

    write_corpus_jsonl([Doc("d0", "paris is the capital of france"), Doc("d1", "the nile is a river")],
                       tmp_path / "corpus.jsonl")
    examples = [TrainingExample("capital of france", ["d0", "d1"], [2.0, 0.5], "d0", ["d1"])]
    cfg = TrainConfig(model=str(tiny_encoder_dir), epochs=1, batch_size=1, mini_batch_size=2, max_passage_length=16,
                      query_prompt="query: ", passage_prompt="passage: ")
    model = SentenceTransformer(str(train(examples, tmp_path / "corpus.jsonl", tmp_path / "run", cfg)))
    assert model.prompts["document"] == model.prompts["passage"] == "passage: "
    text = ["the nile is a river"]
    np.testing.assert_allclose(model.encode_document(text), model.encode(["passage: " + text[0]]), atol=1e-6)
    np.testing.assert_allclose(model.encode_query(text), model.encode(["query: " + text[0]]), atol=1e-6)


def test_the_report_names_its_run_directory_absolute_and_clean(tmp_path, tiny_encoder_dir, monkeypatch, capsys):
    cfg = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "runs" / "x", epochs=1)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["-q", "run", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert f"report: {tmp_path / 'runs' / 'x' / 'report' / 'report.md'}" in out.replace("\n", "")
    assert main(["report", "../runs/x/../x"]) == 0
    out = capsys.readouterr().out.replace("\n", "")
    assert f"report written to {tmp_path / 'runs' / 'x' / 'report' / 'report.md'}" in out and ".." not in out
    md = (tmp_path / "runs" / "x" / "report" / "report.md").read_text()
    assert f"Run directory: `{tmp_path / 'runs' / 'x'}`" in md


def test_a_single_languages_mining_tick_is_inside_the_axes(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from lexdr.report import plots

    figs = []
    monkeypatch.setattr(plt, "close", lambda fig: figs.append(fig))
    for stats in ({"ja": {"queries": 10, "with_positive": 9}},
                  {"ja": {"queries": 10, "with_positive": 9, "quality": {"precision": 0.9}}}):
        plots.plot_mining(stats, tmp_path / "m.png")
        ax = figs[-1].axes[0]
        lo, hi = ax.get_xlim()
        assert abs((0 - lo) / (hi - lo) - 0.5) < 0.1, (lo, hi)  # the tick is in the middle, not at an edge
        bars = [p for p in ax.patches]
        assert all(lo < b.get_x() and b.get_x() + b.get_width() < hi for b in bars)


def test_ray_temp_dir_is_passed_to_the_ray_instance_a_run_starts(tmp_path, monkeypatch):
    from lexdr import executors

    calls = []

    class FakeRay:
        class data:
            class DataContext:
                @staticmethod
                def get_current():
                    return type("Ctx", (), {})()

        @staticmethod
        def is_initialized():
            return False

        @staticmethod
        def init(**kw):
            calls.append(kw)

        @staticmethod
        def cluster_resources():
            return {}

    monkeypatch.setattr(executors, "require_ray", lambda: FakeRay)
    executors.RayExecutor(None, executors.ClusterSettings(ray_temp_dir=str(tmp_path / "ray")))
    executors.RayExecutor("auto", executors.ClusterSettings(ray_temp_dir=str(tmp_path / "ray")))
    executors.RayExecutor(None, executors.ClusterSettings())
    assert calls[0]["_temp_dir"] == str(tmp_path / "ray")
    assert "_temp_dir" not in calls[1] and "_temp_dir" not in calls[2]  # a joined cluster keeps its own


def test_ray_temp_dir_is_a_cluster_setting_of_the_config(tmp_path, tiny_encoder_dir):
    from lexdr.pipeline import load_config

    cfg = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run", extra='\n[cluster]\nray_temp_dir = "/scratch/r"\n')
    assert load_config(cfg).cluster.ray_temp_dir == "/scratch/r"


def test_a_run_whose_out_dir_is_an_index_folder_is_refused(built, tmp_path, tiny_encoder_dir, capsys):
    for kind in ("sparse", "dense"):
        index = _copy(built[kind], tmp_path / kind)
        before = _snapshot(index)
        cfg = write_tiny_config(tmp_path, tiny_encoder_dir, index)
        _refused(capsys, ["-q", "run", str(cfg)], f"holds a {kind} index", "its own out_dir")
        assert _snapshot(index) == before


_NOISY_CHILD = """
import signal, sys, time
def on_int(*a):
    sys.stderr.write("Traceback (most recent call last):\\n  rank 0 was interrupted\\n" * 19)
    sys.stderr.flush()
    sys.exit(1)
signal.signal(signal.SIGINT, on_int)
sys.stderr.write("rank 0: step 1\\n"); sys.stderr.flush()
time.sleep(60)
"""

_LAUNCHER = """
import signal, sys
from lexdr.training.distributed import run_relaying_stderr
# as lexdr's CLI does (cli.py installs its own SIGINT handler): a shell's background job starts with SIGINT
# ignored, and Python then installs no KeyboardInterrupt handler of its own
signal.signal(signal.SIGINT, signal.default_int_handler)
try:
    run_relaying_stderr([sys.executable, "-c", sys.argv[1]])
except KeyboardInterrupt:
    print("interrupted: clean message", file=sys.stderr)
    sys.exit(130)
"""


def test_ctrl_c_during_a_multi_process_training_prints_no_rank_traceback():
    import signal

    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, _NOISY_CHILD], env=env, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stderr.readline().strip() == "rank 0: step 1"  # relayed while it runs
    os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C reaches the whole process group
    rest = proc.stderr.read()
    assert proc.wait(timeout=30) == 130
    assert "Traceback" not in rest and "interrupted: clean message" in rest, rest


def test_mine_generate_and_train_refuse_an_index_folder_as_out(built, tmp_path, capsys):
    assert main(["-q", "mine", str(built["test"]), str(built["sparse_run"]), str(built["dense_run"]), "--out",
                 str(tmp_path / "m")]) == 0
    capsys.readouterr()
    mined = str(tmp_path / "m" / "mined.jsonl")
    for kind in ("sparse", "dense"):
        index = _copy(built[kind], tmp_path / kind)
        before = _snapshot(index)
        for args in (["mine", str(built["test"]), str(built["sparse_run"]), str(built["dense_run"])],
                     ["generate", str(built["corpus"]), mined, "--lang", "en", "--no-round-trip",
                      "--backend", "passage-cut"],
                     ["train", mined, "--corpus", str(built["corpus"]), "--model", str(built["model"])]):
            _refused(capsys, ["-q", *args, "--out", str(index)], f"holds a {kind}", "another folder")
        assert _snapshot(index) == before


def test_a_full_disk_while_faiss_writes_the_index_is_one_line(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    import faiss
    import numpy as np

    from lexdr.dense.index import DenseIndex

    vectors = np.random.default_rng(0).standard_normal((1000, 64)).astype(np.float32)
    index = DenseIndex.build(vectors, [f"d{i}" for i in range(1000)], "flat")

    def failing_write(idx, path):
        Path(path).write_bytes(b"\0" * 100)
        raise RuntimeError("Error in faiss::FileIOWriter: fwrite failed")

    monkeypatch.setattr(faiss, "write_index", failing_write)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9, 0))
    with pytest.raises(LexdrError, match="no space left on the device") as err:
        index.save(tmp_path / "idx")
    assert "\n" not in str(err.value)
    assert "needs about 0.2 MiB" in str(err.value)  # 1,000 float32 vectors of 64 dimensions: how much is needed
    assert not [p for p in (tmp_path / "idx").iterdir() if p.name != "shards"]  # no temp or half file stays


def test_a_full_disk_while_saving_bm25_names_the_space_the_index_needs(tmp_path, monkeypatch):
    import numpy as np

    from lexdr.records import Doc
    from lexdr.sparse import BM25Index

    index = BM25Index.build([Doc(f"d{i}", f"passage {i} about topic {i % 97} and word{i}") for i in range(3000)],
                            lang="en")

    def full(file, arr, *a, **k):
        Path(str(file) if str(file).endswith(".npy") else f"{file}.npy").write_bytes(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    with pytest.raises(LexdrError, match="needs about") as err:
        index.save(tmp_path / "bm25")
    assert f"{index._array_bytes() / 2**20:,.1f} MiB" in str(err.value) and not (tmp_path / "bm25").exists()
