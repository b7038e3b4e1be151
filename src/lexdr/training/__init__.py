"""Contrastive dual-encoder training on mined (and generated) examples, memory-bounded and resumable.

The settings (:class:`TrainConfig`, :class:`LossKind`) import without torch, so the CLI and the config loader
stay fast; everything else loads torch on first use.
"""

from importlib import import_module

from lexdr.training.config import LossKind, TrainConfig

__all__ = ["LossKind", "TrainConfig", "listwise_kl_loss", "contrastive_loss", "ListwiseKLLoss", "ContrastiveLoss",
           "FusionAwareKLLoss", "BM25HardKLLoss", "WeightedSum", "LOSSES", "build_loss", "train", "TrainingExample", "examples_from_mined", "TrainSource",
           "TrainInputs", "joint_examples", "train_stage"]

_LAZY = {"listwise_kl_loss": "losses", "contrastive_loss": "losses", "ListwiseKLLoss": "losses",
         "ContrastiveLoss": "losses", "FusionAwareKLLoss": "losses", "BM25HardKLLoss": "losses", "WeightedSum": "losses", "LOSSES": "losses", "build_loss": "losses",
         "train": "trainer", "TrainingExample": "trainer",
         "examples_from_mined": "trainer", "TrainSource": "stage", "TrainInputs": "stage", "joint_examples": "stage", "train_stage": "stage"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"lexdr.training.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'lexdr.training' has no attribute {name!r}")
