"""Losses over embeddings (not over texts), so they compose with the gradient cache.

Shapes: ``q`` (B, d) query embeddings, ``p`` (P, d) the batch's unique passage embeddings; index tensors
point into ``p``. Embeddings are L2-normalized by the model, so inner product = cosine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lexdr.training.config import LossKind, TrainConfig

__all__ = ["listwise_kl_loss", "contrastive_loss", "ListwiseKLLoss", "ContrastiveLoss", "FusionAwareKLLoss", "BM25HardKLLoss", "WeightedSum",
           "LOSSES",
           "build_loss"]


def _candidate_scores(q: torch.Tensor, p: torch.Tensor, cand_index: torch.Tensor) -> torch.Tensor:
    """Each query's inner product with each of its candidates: (B, C)."""
    return torch.einsum("bd,bcd->bc", q, p[cand_index])


def _per_query_kl(student_logits: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor,
                  teacher_temperature: float) -> torch.Tensor:
    """KL(softmax(teacher / teacher_temperature) || softmax(student_logits)) per query (B,), padding masked."""
    neg_inf = torch.finfo(student_logits.dtype).min
    log_student = F.log_softmax(student_logits.masked_fill(~mask, neg_inf), dim=1)
    teacher_probs = F.softmax((teacher / teacher_temperature).masked_fill(~mask, neg_inf), dim=1)
    kl = teacher_probs * (torch.log(teacher_probs.clamp_min(1e-12)) - log_student)
    return kl.masked_fill(~mask, 0.0).sum(dim=1)


def listwise_kl_loss(q: torch.Tensor, p: torch.Tensor, cand_index: torch.Tensor, cand_mask: torch.Tensor,
                     teacher: torch.Tensor, student_temperature: float, teacher_temperature: float) -> torch.Tensor:
    """KL(teacher || student) over each query's candidate list.

    cand_index (B, C) long into ``p``; cand_mask (B, C) bool (False = padding); teacher (B, C) raw teacher scores.
    Student distribution: softmax(q·p / student_temperature); teacher: softmax(teacher / teacher_temperature).
    """
    scores = _candidate_scores(q, p, cand_index) / student_temperature  # (B, C)
    return _per_query_kl(scores, teacher, cand_mask, teacher_temperature).mean()


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


# --- Losses as objects -------------------------------------------------------------------------------------------
#
# The trainer calls ``loss(q, p, batch) -> (total, parts)`` and never asks which loss it runs. Each loss states
# its data contract: ``needs`` (what the batch must carry, see :class:`lexdr.training.batch.TrainingBatch`) and
# ``usable(example)`` (which training examples it can learn from; the others are dropped before training).


class ListwiseKLLoss:
    """Soft-target distillation: KL(teacher || student) over each query's mined candidate list.

    Needs: ``candidates`` (``batch.cand_index``, ``cand_mask``, ``teacher``). Usable: an example with at least two
    candidates (a softmax over one passage is constant). Parts: ``kl``.
    """

    needs = frozenset({"candidates"})
    name = "kl"

    def __init__(self, student_temperature: float, teacher_temperature: float):
        self.student_temperature = student_temperature
        self.teacher_temperature = teacher_temperature

    def usable(self, example) -> bool:
        return len(example.candidate_ids) >= 2

    def __call__(self, q: torch.Tensor, p: torch.Tensor, batch) -> tuple[torch.Tensor, dict[str, float]]:
        kl = listwise_kl_loss(q, p, batch.cand_index.to(q.device), batch.cand_mask.to(q.device),
                              batch.teacher.to(q.device), self.student_temperature, self.teacher_temperature)
        return kl, {self.name: kl.item()}


class ContrastiveLoss:
    """InfoNCE of each query's mined positive against every passage of the batch (in-batch and mined hard
    negatives), never against the query's own other candidates that mining did not call negatives.

    Needs: ``positives`` (``batch.pos_rows``, ``pos_index``, ``exclude``). Usable: an example with a positive.
    Parts: ``contrastive``. A batch without any positive contributes zero.
    """

    needs = frozenset({"positives"})
    name = "contrastive"

    def __init__(self, temperature: float):
        self.temperature = temperature

    def usable(self, example) -> bool:
        return example.positive_id is not None

    def __call__(self, q: torch.Tensor, p: torch.Tensor, batch) -> tuple[torch.Tensor, dict[str, float]]:
        if not batch.pos_rows:
            return torch.zeros((), device=q.device), {}
        ce = contrastive_loss(q[batch.pos_rows], p, batch.pos_index.to(q.device), self.temperature,
                              batch.exclude.to(q.device))
        return ce, {self.name: ce.item()}


class FusionAwareKLLoss:
    """Residual distillation: the student's candidate scores are fused with the fixed BM25 z-scores the way the
    teacher fuses BM25 with the dense side, and that fusion is pulled to the teacher. Where BM25 already ranks
    as the teacher does, the student gets little gradient; it learns what BM25 lacks.

    Student distribution: ``softmax(q·p / student_temperature + bm25_weight * z_bm25 / teacher_temperature)``;
    teacher: ``softmax(teacher / teacher_temperature)``. Needs: ``candidates`` with the candidates' BM25
    z-scores (``batch.bm25``; mined records carry them). Usable: at least two candidates. Parts: ``fusion_kl``.
    """

    needs = frozenset({"candidates", "bm25"})
    name = "fusion_kl"

    def __init__(self, student_temperature: float, teacher_temperature: float, bm25_weight: float = 1.0):
        self.student_temperature = student_temperature
        self.teacher_temperature = teacher_temperature
        self.bm25_weight = bm25_weight

    def usable(self, example) -> bool:
        return len(example.candidate_ids) >= 2 and len(example.bm25_scores) >= len(example.candidate_ids)

    def __call__(self, q: torch.Tensor, p: torch.Tensor, batch) -> tuple[torch.Tensor, dict[str, float]]:
        mask = batch.cand_mask.to(q.device)
        scores = _candidate_scores(q, p, batch.cand_index.to(q.device)) / self.student_temperature
        fused = scores + self.bm25_weight * batch.bm25.to(q.device) / self.teacher_temperature
        kl = _per_query_kl(fused, batch.teacher.to(q.device), mask, self.teacher_temperature).mean()
        return kl, {self.name: kl.item()}


class BM25HardKLLoss(ListwiseKLLoss):
    """Soft-target distillation weighted toward the queries BM25 finds hard: each query's KL term is weighted by
    ``1 - q_bm25(top)``, where ``q_bm25`` is the softmax of the candidates' BM25 z-scores at the teacher
    temperature and ``top`` the teacher's first candidate; weights are normalized to mean 1 over the batch. A
    query whose answer BM25 already ranks far ahead teaches little; one where BM25 hesitates teaches most.

    Needs: ``candidates`` and ``bm25``. Usable: at least two candidates with their BM25 z-scores. Parts: ``kl``.
    """

    needs = frozenset({"candidates", "bm25"})

    def usable(self, example) -> bool:
        return len(example.candidate_ids) >= 2 and len(example.bm25_scores) >= len(example.candidate_ids)

    def __call__(self, q: torch.Tensor, p: torch.Tensor, batch) -> tuple[torch.Tensor, dict[str, float]]:
        mask = batch.cand_mask.to(q.device)
        neg_inf = torch.finfo(torch.float32).min
        scores = _candidate_scores(q, p, batch.cand_index.to(q.device)) / self.student_temperature
        kl = _per_query_kl(scores, batch.teacher.to(q.device), mask, self.teacher_temperature)
        # 1 - BM25's softmax share of the teacher's top candidate
        teacher = batch.teacher.to(q.device).masked_fill(~mask, neg_inf)
        bm25 = F.softmax((batch.bm25.to(q.device) / self.teacher_temperature).masked_fill(~mask, neg_inf), dim=1)
        top = teacher.argmax(dim=1, keepdim=True)
        weight = (1.0 - bm25.gather(1, top).squeeze(1)).clamp_min(0.0)
        weight = weight / weight.mean().clamp_min(1e-6)
        value = (weight * kl).mean()
        return value, {self.name: value.item()}


class WeightedSum:
    """``sum(weight * loss)`` of several losses. Needs: the union of theirs. Usable: what the first (the
    primary) loss can use — the others learn from those examples' batches where they apply. Parts: each
    term's own parts."""

    def __init__(self, terms: list[tuple[object, float]]):
        self.terms = terms
        self.needs = frozenset().union(*(t.needs for t, _ in terms))

    def usable(self, example) -> bool:
        return self.terms[0][0].usable(example)

    def __call__(self, q: torch.Tensor, p: torch.Tensor, batch) -> tuple[torch.Tensor, dict[str, float]]:
        total = torch.zeros((), device=q.device)
        parts: dict[str, float] = {}
        for loss, weight in self.terms:
            value, its = loss(q, p, batch)
            total = total + (value if weight == 1.0 else weight * value)
            parts.update(its)
        return total, parts


def _kl(cfg) -> ListwiseKLLoss:
    return ListwiseKLLoss(cfg.student_temperature, cfg.teacher_temperature)


def _contrastive(cfg) -> ContrastiveLoss:
    return ContrastiveLoss(cfg.contrastive_temperature)


# ``[training] loss`` -> the loss object; a new loss is one entry here and one value of LossKind.
LOSSES = {
    LossKind.kl: _kl,
    LossKind.contrastive: _contrastive,
    LossKind.fusion_kl: lambda cfg: FusionAwareKLLoss(cfg.student_temperature, cfg.teacher_temperature),
    LossKind.kl_bm25_hard: lambda cfg: BM25HardKLLoss(cfg.student_temperature, cfg.teacher_temperature),
    LossKind.kl_contrastive: lambda cfg: WeightedSum([(_kl(cfg), 1.0), (_contrastive(cfg), cfg.contrastive_weight)]),
}


def build_loss(cfg: TrainConfig):
    """The loss object that ``cfg.loss`` names."""
    return LOSSES[LossKind(cfg.loss)](cfg)
