"""What every lexdr training loop shares: the learning-rate schedule, the optimizer step, the step log and the
resumable checkpoint.

The encoder's trainer (:mod:`lexdr.training`) and the query generator's (:mod:`lexdr.generation.trained`) both
build on these, so the schedule, the clipping and the checkpoint layout are written once. The module sits below
both packages and imports torch only inside its functions.

Checkpoint layout (a folder, swapped in atomically): the weights, written by the caller's ``write_weights``
(a sentence-transformers folder, LoRA adapters, ...), ``optimizer.pt`` (``torch.save`` of the optimizer's
state dict, read back with ``weights_only=True``) and ``state.json`` (the step and the training's identity).
A checkpoint of another identity is never resumed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

from lexdr.formats.files import atomic_folder, atomic_write, recover_folder

__all__ = ["linear_warmup_decay", "optimizer_step", "StepLog", "save_checkpoint", "read_checkpoint_state",
           "load_optimizer_state"]

logger = logging.getLogger(__name__)


def linear_warmup_decay(step: int, total: int, peak_lr: float, warmup_ratio: float) -> float:
    """Learning rate at optimizer step ``step`` (0-based) of ``total``: linear warmup over the first
    ``warmup_ratio`` of the steps (at least one), then linear decay to 0."""
    warm = max(1, int(warmup_ratio * total))
    if step < warm:
        return peak_lr * (step + 1) / warm
    return peak_lr * max(0.0, (total - step) / max(1, total - warm))


def optimizer_step(optimizer, params: list, lr: float, max_grad_norm: float = 1.0) -> None:
    """Set ``lr`` on every parameter group, clip the gradient norm of ``params`` and step."""
    import torch

    for group in optimizer.param_groups:
        group["lr"] = lr
    torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()


class StepLog:
    """``train_log.jsonl``: one JSON line per optimizer step. A resumed run keeps the lines up to its
    checkpoint's step and drops the rest (steps that the checkpoint does not hold are done again)."""

    def __init__(self, path: str | Path, resume_step: int):
        self.path = Path(path)
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        self.lines = [ln for ln in lines if ln.strip() and json.loads(ln)["step"] <= resume_step]

    def append(self, record: dict) -> None:
        self.lines.append(json.dumps(record))

    def flush(self) -> None:
        with atomic_write(self.path) as fh:
            fh.write("\n".join(self.lines) + "\n")


def save_checkpoint(ckpt: str | Path, optimizer, state: dict, write_weights: Callable[[Path], None]) -> None:
    """Write a checkpoint folder atomically: ``write_weights(folder)``, the optimizer state and ``state``."""
    import torch

    with atomic_folder(ckpt) as tmp:
        write_weights(tmp)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")


def read_checkpoint_state(ckpt: str | Path, identity: str, recover: bool = True) -> tuple[dict | None, bool]:
    """``(state, stale)``: the checkpoint's ``state.json`` when it belongs to ``identity``; ``stale`` is True
    when a checkpoint of another identity is there (the caller removes it, after any peers have read it).
    ``recover`` first undoes a swap killed between its two renames."""
    ckpt = Path(ckpt)
    if recover:
        recover_folder(ckpt)
    state_file = ckpt / "state.json"
    if not state_file.is_file():
        return None, False
    saved = json.loads(state_file.read_text(encoding="utf-8"))
    if saved.get("identity") == identity:
        return saved, False
    logger.warning("%s belongs to another config or data; starting over", ckpt)
    return None, True


def load_optimizer_state(optimizer, ckpt: str | Path, device) -> None:
    """Restore the optimizer's state from a checkpoint folder (tensors only: ``weights_only=True``)."""
    import torch

    optimizer.load_state_dict(torch.load(Path(ckpt) / "optimizer.pt", weights_only=True, map_location=device))
