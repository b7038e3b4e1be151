"""The collective operations data-parallel training needs (rank and world size, even slices of a batch,
gathering rows with their gradients, all-reducing gradients, broadcasting parameters), over
``torch.distributed``. Kept apart from the launcher in :mod:`lexdr.training.distributed` so the trainer can use
them without importing the module that imports the trainer."""

from __future__ import annotations

import os
from typing import Sequence

__all__ = ["rank_and_world", "slice_bounds", "gather_rows", "all_reduce_grads", "broadcast_parameters", "barrier",
           "init_process_group"]


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
