"""Data-parallel training on the CPU with two gloo processes.

Two ranks sharing a global batch of B queries must train the model one process trains with batch B: the
same loss at every step and the same final weights, to float rounding. That holds exactly only without
dropout — dropout masks are drawn per (seed, step, rank), so a rank's slice gets other masks than the same
rows in a single process — hence the comparison uses the tiny encoder with dropout set to 0. A stopped
two-rank run (with dropout on) resumes from rank 0's checkpoint to the model of the uninterrupted two-rank
run: the masks are replayed exactly on resume.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from lexdr.formats import write_corpus_jsonl
from lexdr.records import Doc
from lexdr.training import TrainConfig, TrainingExample, train

DOCS = [Doc("d0", "paris is the capital of france"), Doc("d1", "tokyo is the capital of japan"),
        Doc("d2", "the nile is a river in africa"), Doc("d3", "python is a programming language"),
        Doc("d4", "the cat sat on the mat"), Doc("d5", "a dog barked at the mailman"),
        Doc("d6", "東京は日本の首都です"), Doc("d7", "Москва — столица России")]
EXAMPLES = [
    TrainingExample("capital of france", ["d0", "d1", "d2"], [2.0, 0.5, -1.0], "d0", ["d2"]),
    TrainingExample("capital of japan", ["d1", "d0", "d6"], [2.0, 0.4, 1.0], "d1", ["d3"]),
    TrainingExample("river in africa", ["d2", "d4"], [1.5, -0.5], "d2", ["d4"]),
    TrainingExample("programming language", ["d3", "d5", "d0"], [2.5, 0.0, -0.2], "d3", ["d5"]),
    TrainingExample("where did the cat sit", ["d4", "d5", "d1"], [1.8, 0.3, -1.0], "d4", ["d1"]),
    TrainingExample("what did the dog do", ["d5", "d4"], [2.2, 0.1], "d5", ["d7"]),
    TrainingExample("столица России", ["d7", "d6", "d0"], [2.4, 0.2, 0.1], "d7", ["d2"]),
]
# 7 queries, global batch 4: the last step of each epoch has 3 queries (slices of 2 and 1 rows).
# mini_batch_size 2 < a rank's passages: the gradient cache's chunked path runs on every rank.
CFG = dict(loss="kl+contrastive", epochs=2, lr=1e-3, batch_size=4, mini_batch_size=2, warmup_ratio=0.0,
           max_passage_length=32, checkpoint_every=1, show_progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, jobs: list) -> None:
    """One rank: join the gloo group, then run each job (out_dir, model, cfg overrides, stop_after_steps)."""
    import torch.distributed as dist

    from lexdr.training.distributed import train_distributed

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        for out_dir, corpus, model, overrides, stop in jobs:
            cfg = TrainConfig(model=model, **{**CFG, **overrides})
            train_distributed(EXAMPLES, corpus, out_dir, cfg, stop_after_steps=stop, backend="gloo")
    finally:
        dist.destroy_process_group()


def _run_ranks(jobs: list, world: int = 2) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(world, _free_port(), jobs), nprocs=world, join=True)


def _weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def _log(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def no_dropout_encoder(tiny_encoder_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny-no-dropout") / "model"
    shutil.copytree(tiny_encoder_dir, out)
    conf = json.loads((out / "config.json").read_text())
    conf.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (out / "config.json").write_text(json.dumps(conf))
    return out


def test_two_gloo_ranks_match_one_process_and_a_stopped_run_resumes(tmp_path, tiny_encoder_dir, no_dropout_encoder):
    corpus = tmp_path / "corpus.jsonl"
    write_corpus_jsonl(DOCS, corpus)
    jobs = [
        (tmp_path / "ddp", corpus, str(no_dropout_encoder), {}, None),
        # with dropout: an uninterrupted two-rank run, and one stopped after 2 of its 4 steps then re-run
        (tmp_path / "ddp-straight", corpus, str(tiny_encoder_dir), {}, None),
        (tmp_path / "ddp-resumed", corpus, str(tiny_encoder_dir), {}, 2),
        (tmp_path / "ddp-resumed", corpus, str(tiny_encoder_dir), {}, None),
    ]
    _run_ranks(jobs)

    single = train(EXAMPLES, corpus, tmp_path / "single",
                   TrainConfig(model=str(no_dropout_encoder), **CFG))

    # 1. Two ranks x global batch 4 == one process x batch 4: loss trajectory and final weights.
    ddp_log, one_log = _log(tmp_path / "ddp"), _log(tmp_path / "single")
    assert [r["step"] for r in ddp_log] == [r["step"] for r in one_log] == [1, 2, 3, 4]
    assert [r["passages"] for r in ddp_log] == [r["passages"] for r in one_log]  # same batches, all passages
    np.testing.assert_allclose([r["loss"] for r in ddp_log], [r["loss"] for r in one_log], rtol=1e-5, atol=1e-6)
    assert ddp_log[-1]["loss"] != pytest.approx(ddp_log[0]["loss"], abs=1e-3)  # it did train
    w_ddp, w_one, w_init = (_weights(tmp_path / "ddp" / "model"), _weights(single),
                            _weights(no_dropout_encoder))
    assert w_ddp.keys() == w_one.keys()
    moved = 0.0
    for k in w_one:
        torch.testing.assert_close(w_ddp[k], w_one[k], rtol=1e-4, atol=2e-5, msg=k)
        moved = max(moved, float((w_one[k] - w_init[k]).abs().max()))
    assert moved > 1e-3  # the comparison is between trained models, not two copies of the start
    assert json.loads((tmp_path / "ddp" / "train_config.json").read_text())["world_size"] == 2

    # 2. A stopped two-rank run resumes from rank 0's checkpoint to the uninterrupted run's model.
    straight, resumed = tmp_path / "ddp-straight", tmp_path / "ddp-resumed"
    assert [r["step"] for r in _log(resumed)] == [1, 2, 3, 4]
    np.testing.assert_allclose([r["loss"] for r in _log(resumed)], [r["loss"] for r in _log(straight)],
                               rtol=1e-6, atol=1e-7)
    w_a, w_b = _weights(straight / "model"), _weights(resumed / "model")
    for k in w_a:
        torch.testing.assert_close(w_a[k], w_b[k], rtol=1e-6, atol=1e-7, msg=k)
    assert not (resumed / "checkpoint").exists()  # rank 0 removed it after writing the model


def test_slices_cover_every_row_once():
    from lexdr.training.distributed import slice_bounds

    for n in range(0, 12):
        for world in (1, 2, 3, 5):
            bounds = [slice_bounds(n, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


def test_nproc_per_node_launches_torchrun_and_matches_one_process(tmp_path, no_dropout_encoder):
    """``fit`` with ``nproc_per_node = 2`` (what the pipeline's training stage and ``lexdr train`` call) launches
    two gloo ranks through ``torchrun`` and trains the one-process model; its inputs folder is removed after."""
    from lexdr.training.distributed import fit

    corpus = tmp_path / "corpus.jsonl"
    write_corpus_jsonl(DOCS, corpus)
    passages = {d.doc_id: d.full_text() for d in DOCS}
    launched = fit(EXAMPLES, passages, tmp_path / "two", TrainConfig(model=str(no_dropout_encoder), nproc_per_node=2,
                                                                      **CFG))
    single = fit(EXAMPLES, passages, tmp_path / "one", TrainConfig(model=str(no_dropout_encoder), **CFG))
    assert json.loads((tmp_path / "two" / "train_config.json").read_text())["world_size"] == 2
    assert json.loads((tmp_path / "one" / "train_config.json").read_text())["world_size"] == 1
    np.testing.assert_allclose([r["loss"] for r in _log(tmp_path / "two")], [r["loss"] for r in _log(tmp_path / "one")],
                               rtol=1e-5, atol=1e-6)
    w_two, w_one = _weights(launched), _weights(single)
    for k in w_one:
        torch.testing.assert_close(w_two[k], w_one[k], rtol=1e-4, atol=2e-5, msg=k)
    assert not (tmp_path / "two" / "inputs").exists()


def test_a_failing_launch_names_the_way_out(tmp_path, tiny_encoder_dir):
    from lexdr.errors import LexdrError
    from lexdr.training.distributed import fit

    bad = TrainConfig(model=str(tmp_path / "no-such-model"), nproc_per_node=2, **CFG)
    with pytest.raises(LexdrError, match="nproc_per_node = 1"):
        fit(EXAMPLES, {d.doc_id: d.full_text() for d in DOCS}, tmp_path / "bad", bad)
