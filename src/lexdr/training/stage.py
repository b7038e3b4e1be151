"""The pipeline's training stage: mined (and generated) examples of every language → one jointly trained
encoder. Passage ids are namespaced by language label (``<label>/<doc_id>``) so two corpora may share ids."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from lexdr.errors import ConfigError
from lexdr.formats import iter_corpus, read_qrels
from lexdr.training.config import TrainConfig
from lexdr.training.trainer import TrainingExample, examples_from_mined

if TYPE_CHECKING:
    from lexdr.dense.encoder import EncoderConfig
    from lexdr.executors import Executor

__all__ = ["SEP", "TrainSource", "TrainInputs", "joint_examples", "mined_temperature", "train_stage"]

SEP = "/"  # namespaces passage ids across languages in joint training: "<label>/<doc_id>"


@dataclass(frozen=True)
class TrainSource:
    """One language's share of a joint training: its corpus, its mined files (those that exist are read),
    and, for the gold-supervised upper bound only, the unlabeled queries' true labels."""

    label: str
    corpus: Path
    mined: tuple[Path, ...]
    gold_qrels: Path | None = None


def _relabel_with_gold(mined: list, qrels: dict) -> None:
    """Gold upper bound: the true labels as hard positives, the mined hard negatives minus anything the labels
    call relevant (the soft candidates stay as mined)."""
    for m in mined:
        rel = [d for d, g in qrels.get(m.query_id, {}).items() if g >= 1]
        m.positive_ids = rel[:1]
        m.positive_confidence = [1.0] if rel else []
        keep = [(d, s) for d, s in zip(m.negative_ids, m.negative_sources) if d not in rel]
        m.negative_ids, m.negative_sources = [d for d, _ in keep], [s for _, s in keep]


def mined_temperature(paths: Sequence[str | Path], given: float | None = None) -> float:
    """The teacher temperature to distil at: the one the mined files were mined at (their ``stats.json``, see
    :func:`lexdr.mining.mined_teacher_temperature`). ``given`` (a config's or ``--teacher-temperature``) must
    agree with it, and so must the files among themselves: a disagreement is a :class:`ConfigError`, not a
    silent choice. Files that record none (a language without queries) accept ``given``, else mining's default."""
    from lexdr.mining import MineConfig, mined_teacher_temperature
    from lexdr.settings import default_of

    recorded = {str(p): t for p in paths if Path(p).exists() and (t := mined_teacher_temperature(p)) is not None}
    values = sorted(set(recorded.values()))
    if len(values) > 1:
        raise ConfigError("the mined files were mined at different teacher temperatures ("
                          + ", ".join(f"{p}: {t:g}" for p, t in recorded.items())
                          + "); mine them again with one [mining] teacher_temperature")
    if values and given is not None and not math.isclose(given, values[0]):
        path = next(iter(recorded))
        raise ConfigError(f"{path} was mined at teacher_temperature {values[0]:g} (its stats.json), but training "
                          f"was given {given:g}; leave the temperature to the mined file, or mine again with "
                          f"[mining] teacher_temperature = {given:g}")
    if values:
        return values[0]
    return given if given is not None else default_of(MineConfig, "teacher_temperature")


def joint_examples(sources: Sequence[TrainSource], config: TrainConfig,
                   gold: bool = False) -> tuple[list[TrainingExample], dict[str, str]]:
    """Training examples of every language (ids namespaced) and the text of every passage they cite — only
    those: the corpora are streamed, not held."""
    from lexdr.mining import read_mined

    examples: list[TrainingExample] = []
    needed: dict[str, set[str]] = {}
    for src in sources:
        mined = [m for path in src.mined if Path(path).exists() for m in read_mined(path)]
        if gold:
            if src.gold_qrels is None:
                raise ConfigError(f"{src.label}: gold_upper_bound needs unlabeled_qrels (dev tasks have them)")
            _relabel_with_gold(mined, read_qrels(src.gold_qrels))
        for e in examples_from_mined(mined, config):
            e.candidate_ids = [f"{src.label}{SEP}{d}" for d in e.candidate_ids]
            e.positive_id = f"{src.label}{SEP}{e.positive_id}" if e.positive_id else None
            e.negative_ids = [f"{src.label}{SEP}{d}" for d in e.negative_ids]
            for d in [*e.candidate_ids, *e.negative_ids, *([e.positive_id] if e.positive_id else [])]:
                needed.setdefault(src.label, set()).add(d.split(SEP, 1)[1])
            examples.append(e)
    passages: dict[str, str] = {}
    for src in sources:
        need = needed.get(src.label, set())
        for d in iter_corpus(src.corpus):
            if d.doc_id in need:
                passages[f"{src.label}{SEP}{d.doc_id}"] = d.full_text()
    return examples, passages


@dataclass(frozen=True)
class TrainInputs:
    """What :func:`train_stage` reads: each language's :class:`TrainSource`; ``gold``: read each source's
    ``gold_qrels`` as the labels (the supervised upper bound); ``windows``, the mining teacher's dense encoder
    when it scored long passages by windows (``window_stride`` set): each example then trains on the window of
    a long passage that this encoder favoured for its query (:func:`lexdr.training.windows.teacher_windows`)."""

    sources: tuple[TrainSource, ...]
    gold: bool = False
    windows: "EncoderConfig | None" = None


def train_stage(inputs: TrainInputs, config: TrainConfig, out_dir: str | Path, executor: "Executor") -> dict:
    """Train one encoder on every source's examples (ids namespaced ``<label>/<doc>``): the stage of
    ``lexdr train`` and of the pipeline's ``train-*``. Resumable (see :func:`lexdr.training.train`), on
    ``config.nproc_per_node`` processes (:func:`lexdr.training.distributed.fit`; torchrun, not the executor).

    ============================  ======  =======================================================
    file                          r / w   format
    ============================  ======  =======================================================
    each source's ``corpus``      read    corpus JSONL (only the cited passages are kept)
    each source's ``mined``       read    ``mined.jsonl`` (:func:`lexdr.mining.mine_stage`); the
                                          ``stats.json`` beside it gives the teacher temperature
    each source's ``gold_qrels``  read    TREC qrels (the gold upper bound only)
    ``out_dir/model/``            write   a sentence-transformers model folder (+ ``lexdr_training.json``)
    ``out_dir/train_log.jsonl``   write   one line per step: loss, its parts, learning rate
    ``out_dir/checkpoint/``       r / w   while training: resumed after a kill
    ============================  ======  =======================================================

    ``inputs.gold`` trains the same trainer and schedule on the true labels (``config.loss`` contrastive:
    labels as hard positives; kl+contrastive: plus the method's soft targets)."""
    out = Path(out_dir)
    from lexdr.training.distributed import fit

    sources, windows = inputs.sources, inputs.windows
    mined_temperature([p for src in sources for p in src.mined], config.teacher_temperature)
    examples, passages = joint_examples(sources, config, gold=inputs.gold)
    if windows is not None and windows.window_stride is not None:
        from lexdr.training.windows import teacher_windows

        examples, passages = teacher_windows(examples, passages, windows, config.max_passage_length)
    fit(examples, passages, out, config)
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines() if x.strip()]
    windowed = sum(1 for e in examples if any("#window" in d for d in [*e.candidate_ids, *e.negative_ids]))
    return {"examples": len(examples), "steps": len(log), "final_loss": log[-1]["loss"] if log else None,
            **({"examples_with_windows": windowed} if windows is not None and windows.window_stride else {})}
