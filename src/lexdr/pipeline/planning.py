"""``lexdr plan CONFIG`` / ``lexdr run --plan``: count what a config will process and estimate each stage's
time, memory and disk with the fitted cost model (:mod:`lexdr.plan`) before any work starts."""

from __future__ import annotations

import math

from lexdr.formats import read_queries
from lexdr.formats.files import open_text
from lexdr.pipeline.config import RunConfig
from lexdr.plan import Device, Plan, PlanSettings, Stage, plan_run

__all__ = ["count_inputs", "plan_config"]


def _count_lines(path: str) -> int:
    with open_text(path) as fh:
        return sum(1 for line in fh if line.strip())


def count_inputs(cfg: RunConfig) -> dict[str, tuple[int, int, int]]:
    """``{label: (passages, unlabeled queries, test queries)}`` after ``max_unlabeled`` / ``max_test``; a corpus
    file is counted by its non-blank lines (one passage a line), without parsing it."""
    sizes = {}
    for li in cfg.languages:
        if li.dev_task:
            from lexdr.tasks import load_dev_task

            task = load_dev_task(li.dev_task)
            n, unl, test = len(task.corpus), len(task.queries_of("unlabeled")), len(task.queries_of("test"))
        elif li.corpus:
            n = _count_lines(li.corpus)
            unl = len(read_queries(li.unlabeled_queries)) if li.unlabeled_queries else 0
            test = len(read_queries(li.test_queries)) if li.test_queries else 0
        else:  # a public dataset by name: its size is only known once downloaded
            n, unl, test = 1, 0, 0
        unl = min(unl, li.max_unlabeled or unl)
        test = min(test, li.max_test or test)
        sizes[li.label()] = (n, unl, test)
    return sizes


def plan_config(cfg: RunConfig, device: Device | str = Device.cpu) -> Plan:
    """The plan of ``cfg`` on ``device`` (the settings the cost model depends on are read from the config)."""
    stages = [Stage.bm25, Stage.dense, Stage.mine, Stage.train, Stage.evaluate]
    if cfg.generation.enabled:
        stages.append(Stage.generate)
    settings = PlanSettings(stages=tuple(stages), max_seq_length=cfg.dense.max_seq_length,
                            epochs=max(1, math.ceil(cfg.training.epochs)), train_batch_size=cfg.training.batch_size,
                            max_candidates=cfg.training.max_candidates, rounds=cfg.rounds,
                            generate_passages=cfg.generation.config.max_passages or 10**9, device=Device(device))
    return plan_run(count_inputs(cfg), settings)
