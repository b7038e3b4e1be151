"""Typed training configuration."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass

from lexdr.errors import ConfigError

__all__ = ["LossKind", "TrainConfig"]


class LossKind(str, enum.Enum):
    kl = "kl"  # listwise distillation of the BM25+dense teacher over each query's candidates (soft targets)
    contrastive = "contrastive"  # InfoNCE: mined positive vs in-batch + hard negatives (hard labels)
    kl_contrastive = "kl+contrastive"  # both, the contrastive term weighted by `contrastive_weight`


@dataclass
class TrainConfig:
    """How to train. Memory is bounded by ``mini_batch_size`` x ``max_passage_length`` (gradient cache), not by
    ``batch_size``: a large batch of queries costs time, not memory."""

    model: str = "intfloat/multilingual-e5-small"
    loss: LossKind | str = LossKind.kl
    epochs: float = 2.0
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    batch_size: int = 32  # queries per optimizer step
    mini_batch_size: int = 32  # sequences per forward chunk (the memory knob)
    max_query_length: int = 64
    max_passage_length: int = 256
    student_temperature: float = 0.02
    teacher_temperature: float = 0.5
    contrastive_temperature: float = 0.02
    contrastive_weight: float = 1.0
    n_hard_negatives: int = 1
    max_candidates: int = 8
    min_confidence: float = 0.0  # drop hard positives whose teacher probability is lower
    freeze_embeddings: bool = True  # keep the (250k x 384) word embeddings fixed: see trainer docstring
    seed: int = 13
    checkpoint_every: int = 50  # optimizer steps
    device: str | None = None
    tf32: bool = True  # on a GPU, TF32 tensor-core matmuls (no effect on the CPU)
    bf16: bool | None = None  # bfloat16 autocast of the forward passes (losses stay float32); None: on for CUDA
    show_progress: bool = True
    query_prompt: str | None = None  # None: the model's own prompts, else the family default (e5: "query: ")
    passage_prompt: str | None = None

    def __post_init__(self) -> None:
        self.loss = LossKind(self.loss)
        for name in ("batch_size", "mini_batch_size", "max_query_length", "max_passage_length", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.epochs <= 0 or self.lr <= 0:
            raise ConfigError("epochs and lr must be > 0")
        if self.max_candidates < 2 and self.loss is not LossKind.contrastive:
            raise ConfigError("the kl loss needs max_candidates >= 2 (a softmax over one passage is constant)")

    def to_dict(self) -> dict:
        """The settings that define the training (what fingerprints and checkpoints compare); display
        options such as ``show_progress`` are left out."""
        d = asdict(self)
        d["loss"] = LossKind(self.loss).value
        d.pop("show_progress")
        d.pop("tf32")  # an execution option (float rounding on a GPU only), like the progress bar
        d.pop("bf16")  # likewise (float rounding of the forward passes)
        return d
