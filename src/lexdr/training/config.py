"""Typed training configuration."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lexdr.defaults import DEFAULT_ENCODER, DEFAULT_SEED
from lexdr.errors import ConfigError
from lexdr.mining.rules import MineConfig
from lexdr.settings import as_enums, at_least, default_of, fingerprint_fields, setting, to_plain, valid_seed

__all__ = ["LossKind", "TrainConfig"]


class LossKind(str, enum.Enum):
    kl = "kl"  # listwise distillation of the BM25+dense teacher over each query's candidates (soft targets)
    contrastive = "contrastive"  # InfoNCE: mined positive vs in-batch + hard negatives (hard labels)
    kl_contrastive = "kl+contrastive"  # both, the contrastive term weighted by `contrastive_weight`
    fusion_kl = "fusion-kl"  # kl on the student's scores fused with the fixed BM25 z-scores: learn what BM25 lacks
    kl_bm25_hard = "kl-bm25-hard"  # kl weighted toward the queries whose teacher answer BM25 is unsure of


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Memory is bounded by ``mini_batch_size`` x ``max_passage_length`` (gradient cache), not by
    ``batch_size``: a large batch of queries costs time, not memory."""

    model: str = setting(DEFAULT_ENCODER, "Base encoder to start from: hub id or folder.")
    loss: LossKind = setting(LossKind.kl, "kl (soft teacher targets) | contrastive (hard labels) | kl+contrastive "
                                            "| fusion-kl (soft targets on the student fused with BM25: the residual) "
                                            "| kl-bm25-hard (kl weighted toward the queries BM25 is unsure of).")
    epochs: float = setting(2.0, "Passes over the mined queries.")
    lr: float = setting(2e-5, "Peak learning rate (linear warmup, then linear decay).")
    weight_decay: float = setting(0.01, "AdamW weight decay.")
    warmup_ratio: float = setting(0.1, "Share of the steps spent warming up.")
    batch_size: int = setting(32, "Queries per optimizer step (costs time, not memory).")
    mini_batch_size: int = setting(32, "Sequences per forward chunk (the memory knob).")
    max_query_length: int = setting(64, "Query token cap.")
    max_passage_length: int = setting(256, "Passage token cap.")
    student_temperature: float = setting(0.02, "Temperature of the student's softmax over candidate similarities.")
    teacher_temperature: float = setting(default_of(MineConfig, "teacher_temperature"),
                                         "Temperature of the teacher's softmax (z units): mining owns it ([mining] "
                                         "teacher_temperature) and records it beside mined.jsonl; training reads it "
                                         "from there, and a different value here is an error.")
    contrastive_temperature: float = setting(0.02, "InfoNCE temperature.")
    contrastive_weight: float = setting(1.0, "Weight of the contrastive term in kl+contrastive.")
    n_hard_negatives: int = setting(1, "Mined hard negatives per query in the contrastive loss.")
    max_candidates: int = setting(8, "Soft-target candidates per query in the kl loss.")
    min_confidence: float = setting(0.0, "Drop hard positives whose teacher probability is lower.")
    freeze_embeddings: bool = setting(True, "Keep the (250k x 384) word embeddings fixed (CPU memory; see the "
                                            "trainer's docstring).")
    seed: int = setting(DEFAULT_SEED, "Seed for data order and dropout.")
    checkpoint_every: int = setting(50, "Checkpoint every N optimizer steps (resume point).")
    device: str | None = setting(None, "cpu | cuda | cuda:1 ... (None: cuda if available).")
    nproc_per_node: int = setting(1, "Data-parallel processes on this machine (one per GPU), launched with torchrun; "
                                     "batch_size stays the global batch. With dropout a W-process model is "
                                     "statistically, not bitwise, equal to the one-process model.", fingerprint=False)
    tf32: bool = setting(True, "On a GPU, TF32 tensor-core matmuls (no effect on the CPU).", fingerprint=False)
    bf16: bool | None = setting(None, "bfloat16 autocast of the encoder's forward passes (losses stay float32); "
                                      "None: on for CUDA, off on the CPU.", fingerprint=False)
    show_progress: bool = setting(True, "Progress bars.", fingerprint=False)
    query_prompt: str | None = setting(None, "None: the model's own prompts, else the family default (e5: 'query: ').")
    passage_prompt: str | None = setting(None, "None: the model's own prompts, else the family default (e5: 'passage: ').")

    def __post_init__(self) -> None:
        valid_seed(self)
        as_enums(self, ("loss",))
        at_least(self, ("batch_size", "mini_batch_size", "max_query_length", "max_passage_length", "checkpoint_every",
                        "nproc_per_node"), 1)
        at_least(self, ("epochs", "lr", "teacher_temperature", "student_temperature", "contrastive_temperature"), 0,
                 strict=True)
        at_least(self, ("n_hard_negatives",), 0)
        if self.max_candidates < 2 and self.loss is not LossKind.contrastive:
            raise ConfigError("the kl loss needs max_candidates >= 2 (a softmax over one passage is constant)")

    def to_dict(self) -> dict:
        """The settings that define the training (what fingerprints and checkpoints compare); display
        options such as ``show_progress`` are left out."""
        # show_progress and tf32 (float rounding on a GPU only) are execution options: declared fingerprint=False
        keep = fingerprint_fields(TrainConfig)
        return {k: v for k, v in to_plain(self).items() if k in keep}
