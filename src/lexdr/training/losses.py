"""Losses over embeddings (not over texts), so they compose with the gradient cache.

Shapes: ``q`` (B, d) query embeddings, ``p`` (P, d) the batch's unique passage embeddings; index tensors
point into ``p``. Embeddings are L2-normalized by the model, so inner product = cosine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["listwise_kl_loss", "contrastive_loss"]


def listwise_kl_loss(q: torch.Tensor, p: torch.Tensor, cand_index: torch.Tensor, cand_mask: torch.Tensor,
                     teacher: torch.Tensor, student_temperature: float, teacher_temperature: float) -> torch.Tensor:
    """KL(teacher || student) over each query's candidate list.

    cand_index (B, C) long into ``p``; cand_mask (B, C) bool (False = padding); teacher (B, C) raw teacher scores.
    Student distribution: softmax(q·p / student_temperature); teacher: softmax(teacher / teacher_temperature).
    """
    scores = torch.einsum("bd,bcd->bc", q, p[cand_index]) / student_temperature  # (B, C)
    neg_inf = torch.finfo(scores.dtype).min
    log_student = F.log_softmax(scores.masked_fill(~cand_mask, neg_inf), dim=1)
    teacher_probs = F.softmax((teacher / teacher_temperature).masked_fill(~cand_mask, neg_inf), dim=1)
    kl = teacher_probs * (torch.log(teacher_probs.clamp_min(1e-12)) - log_student)
    return kl.masked_fill(~cand_mask, 0.0).sum(dim=1).mean()


def contrastive_loss(q: torch.Tensor, p: torch.Tensor, pos_index: torch.Tensor, temperature: float,
                     exclude: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE with every passage of the batch as a candidate (in-batch + hard negatives).

    pos_index (B,) long into ``p``. ``exclude`` (B, P) bool marks passages that must not count as negatives
    for a query (its other candidates that the teacher considers likely positives); the positive itself is
    never excluded.
    """
    scores = q @ p.T / temperature  # (B, P)
    if exclude is not None:
        keep_pos = F.one_hot(pos_index, num_classes=p.size(0)).bool()
        scores = scores.masked_fill(exclude & ~keep_pos, torch.finfo(scores.dtype).min)
    return F.cross_entropy(scores, pos_index)
