"""Long passages in training: the window the teacher favoured.

With ``[dense] window_stride`` set, the index scores a passage by its best window (MaxP), so the dense half of
the mining teacher judged each long passage by one window. The trainer cuts passages at
``max_passage_length`` tokens; for a passage longer than that, :func:`teacher_windows` gives each training
example the window of the passage that the teacher's dense encoder (the one whose run was mined: the base
encoder in round 1) scores highest for that example's query — for its positive, its soft candidates and its
hard negatives alike, as MaxP scored them. Windows are ``max_passage_length`` tokens long (prompt and special
tokens included) and start every ``window_stride`` tokens (at most half a window). A chosen window is a passage
of its own in the batch, under the id ``<passage id>#window<n>``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Mapping, Sequence

import numpy as np

from lexdr.dense.encoder import Encoder, EncoderConfig
from lexdr.dense.retriever import score_passages
from lexdr.errors import ConfigError
from lexdr.training.trainer import TrainingExample

__all__ = ["WINDOW_SEP", "teacher_windows"]

logger = logging.getLogger(__name__)

WINDOW_SEP = "#window"


def _cited(e: TrainingExample) -> list[str]:
    return [*e.candidate_ids, *e.negative_ids, *([e.positive_id] if e.positive_id else [])]


def teacher_windows(examples: Sequence[TrainingExample], passages: Mapping[str, str], teacher: EncoderConfig,
                    max_passage_length: int, encoder: Encoder | None = None
                    ) -> tuple[list[TrainingExample], dict[str, str]]:
    """``examples`` with every cited passage longer than ``max_passage_length`` tokens replaced, per example, by
    its window that ``teacher`` (model, prompts, ``window_stride``) scores highest for the example's query, and
    the passage texts with those windows added. Unchanged when ``teacher.window_stride`` is None or no cited
    passage is long. ``encoder``: an already loaded teacher model (tests), else loaded from ``teacher.model``."""
    if teacher.window_stride is None:
        return list(examples), dict(passages)
    stride = min(teacher.window_stride, max_passage_length // 2)
    cfg = dataclasses.replace(teacher, max_seq_length=max_passage_length, window_stride=max(1, stride))
    enc = Encoder(cfg) if encoder is None else Encoder(cfg, model=encoder.model)
    ids = sorted({d for e in examples for d in _cited(e)})
    clash = [d for d in ids if WINDOW_SEP in d]
    if clash:
        raise ConfigError(f"passage ids containing {WINDOW_SEP!r} (e.g. {clash[0]!r}) cannot be trained with "
                          "window_stride: set [dense] window_stride = None or rename those passages")
    texts, owner = enc.window_texts([passages[d] for d in ids])
    counts = np.bincount(owner, minlength=len(ids))
    long_rows = {ids[i] for i in np.flatnonzero(counts > 1)}
    if not long_rows:
        return list(examples), dict(passages)
    keep = np.isin(owner, [i for i, d in enumerate(ids) if d in long_rows])
    win_texts = [t for t, k in zip(texts, keep) if k]
    win_owner = owner[keep]
    rows_of: dict[str, np.ndarray] = {ids[i]: np.flatnonzero(win_owner == i) for i in np.unique(win_owner)}
    todo = [n for n, e in enumerate(examples) if any(d in long_rows for d in _cited(e))]
    # (examples, windows) teacher scores; each window fits max_passage_length, so nothing is cut
    scores = score_passages(enc, [examples[n].query for n in todo], win_texts)
    out_passages = dict(passages)
    out = list(examples)
    for row, n in zip(scores, todo):
        e = examples[n]
        chosen: dict[str, str] = {}
        for d in set(_cited(e)) & long_rows:
            rows = rows_of[d]
            best = int(np.argmax(row[rows]))  # first window on ties
            chosen[d] = f"{d}{WINDOW_SEP}{best}"
            out_passages[chosen[d]] = win_texts[rows[best]]
        sub = lambda d: chosen.get(d, d)  # noqa: E731
        out[n] = dataclasses.replace(e, candidate_ids=[sub(d) for d in e.candidate_ids],
                                     negative_ids=[sub(d) for d in e.negative_ids],
                                     positive_id=sub(e.positive_id) if e.positive_id else None)
    logger.info("windows: %d long passages (%d windows) in %d examples, each given its teacher-favoured window",
                len(long_rows), len(win_texts), len(todo))
    return out, out_passages
