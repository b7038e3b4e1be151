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


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the initialized default process group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def slice_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """[start, end) of rank ``rank``'s contiguous slice of ``n`` rows (sizes differ by at most one)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def gather_rows(local, n_total: int, world: int):
    """Concatenate every rank's rows (rank order) into the full ``(n_total, d)`` tensor, on every rank.

    Slices may differ in size by one row (see :func:`slice_bounds`); they are padded to the same size for the
    collective and trimmed after. No autograd graph: the gradient cache back-propagates slices itself."""
    import torch
    import torch.distributed as dist

    if world == 1:
        return local
    size = -(-n_total // world)
    padded = torch.zeros((size, *local.shape[1:]), dtype=local.dtype, device=local.device)
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded.contiguous())
    rows = [parts[r][: (lambda b: b[1] - b[0])(slice_bounds(n_total, r, world))] for r in range(world)]
    return torch.cat(rows)


def all_reduce_grads(params: Sequence) -> None:
    """Sum the parameter gradients over ranks in one flat buffer (a missing gradient counts as zero)."""
    import torch
    import torch.distributed as dist

    params = list(params)
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def broadcast_parameters(module) -> None:
    """Make every rank hold rank 0's weights (each rank loaded the same folder; this rules out drift from
    any randomly initialized head)."""
    import torch.distributed as dist

    for t in [*module.parameters(), *module.buffers()]:
        dist.broadcast(t.data, src=0)


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def init_process_group(backend: str | None = None) -> str:
    """Join the process group ``torchrun`` describes in the environment (RANK, WORLD_SIZE, MASTER_ADDR, ...);
    returns this rank's device: ``cuda:LOCAL_RANK`` with NCCL when GPUs are visible, else ``cpu`` with gloo."""
    import torch
    import torch.distributed as dist

    use_cuda = torch.cuda.is_available() and backend != "gloo"
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if use_cuda else "cpu"
    if use_cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if use_cuda else "gloo"))
    return device


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
