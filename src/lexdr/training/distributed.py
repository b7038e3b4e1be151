"""Data-parallel training across GPUs (or CPU processes) with ``torch.distributed``, launched by ``torchrun``.

    python -m torch.distributed.run --nproc_per_node 8 -m lexdr.training.distributed \\
        mined.jsonl --corpus corpus.jsonl --out run/ --batch-size 1024 --mini-batch-size 128

Every rank runs the same :func:`lexdr.training.train` loop on the same global batch order (one permutation
per epoch from ``cfg.seed``, independent of the number of ranks). Each rank embeds a contiguous slice of the
batch's queries and of its unique passages (in gradient-cache chunks of ``mini_batch_size`` when the slice is
larger), the embeddings are all-gathered without a graph, and every rank computes the same full-batch loss,
so in-batch negatives and the listwise candidate lists span all ranks. The gradient of the loss with
respect to the gathered embeddings is then back-propagated through each rank's own slice only, and the
parameter gradients are summed with one ``all_reduce`` — the GradCache / Tevatron pattern. ``DDP`` is not
used: it averages (the full-batch loss needs a sum) and would all-reduce after each of the gradient cache's
chunked backward passes. Peak activation memory per GPU stays one chunk.

Checkpoints, logs and the final model are written by rank 0 only; on a re-run every rank resumes from rank 0's
checkpoint (on several nodes ``out_dir`` must be on a shared file system). Dropout masks are drawn per
(seed, step, rank), so a resumed run replays them exactly, but a run on W ranks does not draw the same masks
as a run on one process: with dropout the two are statistically, not bitwise, equal (without dropout they
match to float rounding, see tests/test_training_ddp.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Mapping, Sequence

logger = logging.getLogger(__name__)

__all__ = ["fit", "rank_and_world", "slice_bounds", "gather_rows", "all_reduce_grads", "broadcast_parameters", "barrier",
           "init_process_group", "train_distributed", "main"]


from lexdr.training.collectives import (all_reduce_grads, barrier, broadcast_parameters, gather_rows,  # noqa: E402,F401
                                        init_process_group, rank_and_world, slice_bounds)


def train_distributed(examples, corpus, out_dir, cfg, stop_after_steps: int | None = None,
                      backend: str | None = None) -> Path:
    """:func:`lexdr.training.train` on every rank of a ``torchrun`` launch (joins the process group if the
    caller has not). ``cfg.batch_size`` is the global batch; each rank runs on its own device."""
    from lexdr.training.trainer import train

    if str(cfg.device or "").startswith("cpu"):
        backend = "gloo"  # CPU ranks on a GPU machine: gloo moves CPU tensors, NCCL does not
    device = init_process_group(backend)
    return train(examples, corpus, out_dir, cfg, stop_after_steps=stop_after_steps, device=device)


def fit(examples: list, passages: str | Path | Mapping[str, str], out_dir: str | Path, cfg) -> Path:
    """Train on ``cfg.nproc_per_node`` processes of this machine: one process trains in place
    (:func:`lexdr.training.train`); more are launched with ``torchrun`` (``--standalone``), each rank reading
    the same inputs, written once under ``out_dir/inputs/`` and removed after success. Inside a process group
    that a launcher already started (``torchrun -m lexdr train ...``), every rank simply trains. The pipeline's
    training stage and ``lexdr train`` both call this."""
    from lexdr.training.trainer import train

    rank, world = rank_and_world()
    if world > 1 or os.environ.get("WORLD_SIZE", "1") != "1":
        return train_distributed(examples, passages, out_dir, cfg)
    if cfg.nproc_per_node <= 1:
        return train(examples, passages, out_dir, cfg)
    return _launch(examples, passages, Path(out_dir), cfg)


def _launch(examples: list, passages: str | Path | Mapping[str, str], out: Path, cfg) -> Path:
    from lexdr.errors import LexdrError
    from lexdr.formats import iter_corpus
    from lexdr.formats.files import atomic_write, write_jsonl
    from lexdr.settings import to_plain

    inputs = out / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    texts = passages if isinstance(passages, Mapping) else {d.doc_id: d.full_text() for d in iter_corpus(passages)}
    write_jsonl(({"_id": k, "title": "", "text": v} for k, v in texts.items()), inputs / "corpus.jsonl")
    write_jsonl((asdict(e) for e in examples), inputs / "examples.jsonl")
    with atomic_write(inputs / "train_config.json") as fh:
        json.dump(to_plain(cfg), fh, indent=1)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={cfg.nproc_per_node}",
           "-m", "lexdr.training.distributed", "--inputs", str(inputs), "--out", str(out)]
    logger.info("training on %d processes: %s", cfg.nproc_per_node, " ".join(cmd))
    returncode = run_relaying_stderr(cmd)
    if returncode != 0:
        raise LexdrError(f"distributed training failed (torchrun exit {returncode}); its ranks' errors are "
                         f"above. Re-running resumes from {out / 'checkpoint'} if one was written; "
                         f"nproc_per_node = 1 trains in one process.")
    shutil.rmtree(inputs, ignore_errors=True)
    return out / "model"


# How long a chunk of the launched processes' stderr waits before it is shown (see run_relaying_stderr).
_RELAY_DELAY_S = 0.25


def run_relaying_stderr(cmd: Sequence[str]) -> int:
    """Run ``cmd`` (the ``torchrun`` launch) and relay its stderr (ranks' progress bars, logs, errors) byte for
    byte, until Ctrl-C: from then on what it prints while it shuts down (torchrun's and every rank's
    ``KeyboardInterrupt`` / ``SignalException`` tracebacks) is dropped, the child is ended, and the interrupt
    goes on to the command line, which prints its one message. Returns the exit code.

    The terminal's Ctrl-C reaches the child and this process at once, and the child may print before this
    process has seen it: each chunk is held back :data:`_RELAY_DELAY_S` and dropped if an interrupt came."""
    import threading

    proc = subprocess.Popen(list(cmd), stderr=subprocess.PIPE)
    interrupted = threading.Event()

    def relay() -> None:
        out = sys.stderr.buffer if hasattr(sys.stderr, "buffer") else None
        while chunk := os.read(proc.stderr.fileno(), 65536):
            if not interrupted.wait(_RELAY_DELAY_S):
                if out is not None:
                    out.write(chunk)
                    out.flush()
                else:
                    sys.stderr.write(chunk.decode(errors="replace"))

    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    try:
        returncode = proc.wait()
    except KeyboardInterrupt:
        interrupted.set()
        try:
            proc.wait(timeout=15)  # the ranks got the same Ctrl-C from the terminal: let them stop
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.kill()
            proc.wait()
        raise
    thread.join(timeout=5)
    return returncode


def main(argv: Sequence[str] | None = None) -> None:
    """One rank of :func:`fit`'s ``torchrun`` launch: ``-m lexdr.training.distributed --inputs DIR --out DIR``.
    (To launch by hand, use ``torchrun --nproc_per_node N -m lexdr train ...``: the CLI joins the group.)"""
    parser = argparse.ArgumentParser(prog="python -m torch.distributed.run -m lexdr.training.distributed",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=Path, required=True, help="folder with examples.jsonl, corpus.jsonl, "
                                                                   "train_config.json (written by fit)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    from lexdr.errors import ConfigError
    from lexdr.formats.files import iter_jsonl
    from lexdr.settings import build
    from lexdr.training.config import TrainConfig
    from lexdr.training.trainer import TrainingExample

    rank = int(os.environ.get("RANK", 0))
    errors: list[str] = []
    table = json.loads((args.inputs / "train_config.json").read_text(encoding="utf-8"))
    cfg = build(TrainConfig, {**table, "show_progress": table.get("show_progress", True) and rank == 0},
                "train", errors)
    if cfg is None:
        raise ConfigError("; ".join(errors))
    examples = [TrainingExample(**r) for _, r in iter_jsonl(args.inputs / "examples.jsonl")]
    try:
        path = train_distributed(examples, args.inputs / "corpus.jsonl", args.out, cfg)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0:
        logger.info("trained model written to %s", path)


def rank_entry(argv: Sequence[str] | None = None) -> int:
    """What a rank process runs: :func:`main`, with Ctrl-C (which the terminal sends every rank) ending the rank
    quietly with exit 130: the launching ``lexdr`` prints the one message that says how to resume, not each
    rank's traceback."""
    try:
        main(argv)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(rank_entry())
