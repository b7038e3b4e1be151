"""One optimizer step's data: the batch's unique passages and index tensors into them, built for what the loss
needs (``loss.needs``):

* ``candidates``: ``cand_index`` (B, C) long into the passages, ``cand_mask`` (B, C) bool, ``teacher`` (B, C)
  raw teacher scores, and ``bm25`` (B, C) the candidates' BM25 z-scores where the examples carry them;
* ``positives``: ``pos_rows`` (the rows with a positive), ``pos_index`` long into the passages and ``exclude``
  (rows, P) bool — a query's own candidates that mining did not call negatives may be unlabeled positives and
  are never pushed away as in-batch negatives.

Passages are numbered in order of first use: every example's candidates, then positives and hard negatives.
"""

from __future__ import annotations

from typing import Collection, Sequence

__all__ = ["TrainingBatch"]


class TrainingBatch:
    def __init__(self, examples: Sequence, needs: Collection[str]):
        import torch

        self.queries = [e.query for e in examples]
        order: dict[str, int] = {}

        def idx(doc_id: str) -> int:
            return order.setdefault(doc_id, len(order))

        if "candidates" in needs:
            C = max(2, max(len(e.candidate_ids) for e in examples))
            self.cand_index = torch.zeros((len(examples), C), dtype=torch.long)
            self.cand_mask = torch.zeros((len(examples), C), dtype=torch.bool)
            self.teacher = torch.zeros((len(examples), C), dtype=torch.float32)
            self.bm25 = torch.zeros((len(examples), C), dtype=torch.float32)
            for i, e in enumerate(examples):
                for j, (d, t) in enumerate(zip(e.candidate_ids, e.teacher_scores)):
                    self.cand_index[i, j] = idx(d)
                    self.cand_mask[i, j] = True
                    self.teacher[i, j] = t
                for j, z in enumerate(e.bm25_scores[:C]):
                    self.bm25[i, j] = z
        self.pos_rows: list[int] = []
        if "positives" in needs:
            pos = []
            for i, e in enumerate(examples):
                if e.positive_id is None:
                    continue
                self.pos_rows.append(i)
                pos.append(idx(e.positive_id))
                for n in e.negative_ids:
                    idx(n)
            self.pos_index = torch.tensor(pos, dtype=torch.long)
        self.passage_ids = list(order)
        if self.pos_rows:
            P = len(self.passage_ids)
            self.exclude = torch.zeros((len(self.pos_rows), P), dtype=torch.bool)
            for r, i in enumerate(self.pos_rows):
                e = examples[i]
                for d in e.candidate_ids:
                    if d != e.positive_id and d not in e.negative_ids and d in order:
                        self.exclude[r, order[d]] = True
