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
import os
from dataclasses import replace
from pathlib import Path
from typing import Sequence

__all__ = ["rank_and_world", "slice_bounds", "gather_rows", "all_reduce_grads", "broadcast_parameters", "barrier",
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


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m torch.distributed.run --nproc_per_node N -m lexdr.training.distributed MINED... --corpus C
    --out DIR [options]``: the options of ``lexdr train``."""
    parser = argparse.ArgumentParser(prog="python -m torch.distributed.run -m lexdr.training.distributed",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("mined", nargs="+", type=Path, help="mined.jsonl files (lexdr mine)")
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--loss", default=None)
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="global batch: queries per step, all ranks")
    parser.add_argument("--mini-batch-size", type=int, default=None, help="sequences per forward chunk per rank")
    parser.add_argument("--max-passage-length", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--backend", choices=["nccl", "gloo"], default=None)
    args = parser.parse_args(argv)

    from lexdr.mining import read_mined
    from lexdr.training.config import TrainConfig
    from lexdr.training.trainer import examples_from_mined

    overrides = {k: v for k, v in vars(args).items() if v is not None and k not in ("mined", "corpus", "out", "backend")}
    rank = int(os.environ.get("RANK", 0))
    cfg = replace(TrainConfig(), **overrides, show_progress=rank == 0)
    examples = examples_from_mined([m for p in args.mined for m in read_mined(p)], cfg)
    try:
        path = train_distributed(examples, args.corpus, args.out, cfg, backend=args.backend)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0:
        print(f"trained model written to {path}")


if __name__ == "__main__":
    main()
