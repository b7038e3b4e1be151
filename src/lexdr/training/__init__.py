"""Contrastive dual-encoder training on mined (and generated) examples, memory-bounded and resumable."""

from lexdr.training.config import LossKind, TrainConfig
from lexdr.training.losses import listwise_kl_loss, contrastive_loss
from lexdr.training.trainer import train, TrainingExample, examples_from_mined

__all__ = ["LossKind", "TrainConfig", "listwise_kl_loss", "contrastive_loss", "train", "TrainingExample",
           "examples_from_mined"]
