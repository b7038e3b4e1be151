"""``run_pipeline``: validate the inputs, declare the stage graph (:mod:`lexdr.pipeline.graph`), run it through
the stage engine (fingerprints, skip-if-unchanged, resume, manifest), write ``metrics.json`` and the report."""

from __future__ import annotations

import json
import logging

from lexdr.errors import ConfigError, LexdrError
from lexdr.executors import Executor, ExecutorSpec, resolve_executor
from lexdr.formats import read_qrels, read_queries
from lexdr.formats.files import atomic_write, folder_kind, folder_lock
from lexdr.layout import RunLayout
from lexdr.pipeline.config import RunConfig
from lexdr.pipeline.engine import Stage, StageRunner
from lexdr.pipeline.graph import StageSpec, method_graph, resolve_inputs

__all__ = ["run_pipeline", "validate_inputs", "run_stages"]

logger = logging.getLogger(__name__)


def validate_inputs(cfg: RunConfig) -> None:
    """Checks that need reading the (small) query and qrels files; raises one ConfigError listing all problems."""
    problems = []
    for li in cfg.languages:
        if li.test_queries and li.test_qrels:
            try:
                qids = {q.query_id for q in read_queries(li.test_queries)}
                qrels = read_qrels(li.test_qrels)
            except LexdrError as e:
                problems.append(f"{li.label()}: {e}")
                continue
            orphan = sorted(set(qrels) - qids)
            if orphan:
                problems.append(f"{li.label()}: {len(orphan)} query ids in {li.test_qrels} are not in {li.test_queries} "
                                f"(e.g. {orphan[:3]}); the files do not belong together")
            if not set(qrels) & qids:
                problems.append(f"{li.label()}: no test query has a judgment in {li.test_qrels}")
        if li.unlabeled_queries:
            try:
                read_queries(li.unlabeled_queries)
            except LexdrError as e:
                problems.append(f"{li.label()}: {e}")
    if problems:
        raise ConfigError("input problems found before any work started:\n  - " + "\n  - ".join(problems))


def run_stages(runner: StageRunner, specs: list[StageSpec], executor: Executor | ExecutorSpec | None = None,
               show_progress: bool = False) -> dict[str, dict]:
    """Run ``specs`` in order through ``runner`` (each skipped when its fingerprint is unchanged), each as
    ``spec.fn(inputs, config, folder, executor)``; returns each stage's result record. ``executor`` (``[run]
    executor``) is resolved here, once, when the first stage runs: every stage gets the same executor object
    (a :class:`lexdr.executors.LocalExecutor` by default), and a run whose stages are all skipped connects to
    nothing."""
    results: dict[str, dict] = {}
    made: list[Executor] = []

    def the_executor() -> Executor:
        if not made:
            made.append(resolve_executor(executor, show_progress=show_progress))
        return made[0]

    for spec in specs:
        def fn(folder, spec=spec):
            return spec.fn(resolve_inputs(spec, runner.fingerprints), spec.config, folder, the_executor())

        results[spec.name] = runner.run(Stage(spec.name, fn, config=dict(spec.fingerprint), inputs=list(spec.files),
                                              deps=list(spec.deps), not_outputs=list(spec.not_outputs)))
    return results


def _count_lines(path) -> int:
    return sum(1 for line in open(path, encoding="utf-8") if line.strip()) if path.exists() else 0


def write_model_cards(cfg: RunConfig, results: dict) -> None:
    """Each trained model folder gets its own README.md: base model and its provenance, method and loss,
    languages, mined and generated queries per language, this run's metrics against BM25 and the base encoder,
    lexdr version and the config's hash (not the base model's card, which sentence-transformers would copy)."""
    import hashlib

    from lexdr.pipeline.graph import TRAINED_MODELS
    from lexdr.training.card import write_model_card

    L = RunLayout(cfg.out_dir)
    config_hash = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
    for m in TRAINED_MODELS:
        stage, system = m.stage, m.system
        model_dir = L.model(stage)
        if not model_dir.is_dir():
            continue
        counts = {li.label(): {"mined": _count_lines(L.mined(li.label(), m.mined)),
                               "generated": _count_lines(L.generated_mining(li.label()) / "mined.jsonl")
                               if m.generated else 0}
                  for li in cfg.languages}
        training = json.loads((model_dir / "lexdr_training.json").read_text(encoding="utf-8")) \
            if (model_dir / "lexdr_training.json").exists() else cfg.training.to_dict()
        write_model_card(model_dir, base_model=cfg.base_model, training_config=training,
                         examples_per_language=counts, metrics=results or None, config_hash=config_hash,
                         system=system, metric_names=cfg.metrics, languages={li.label(): li.lang for li in cfg.languages})


def run_pipeline(cfg: RunConfig, quiet: bool = False, report: bool = True) -> dict:
    """Run (or resume) the whole method for ``cfg``; returns per-language metrics of every system.

    The run folder is locked while it runs (:func:`lexdr.formats.files.folder_lock`): a second run on the same
    folder stops at once with a message instead of redoing, and overwriting, the first one's work."""
    validate_inputs(cfg)
    kind = folder_kind(cfg.out_dir)
    if kind is not None:  # an index folder: a run's stage folders and manifest would be mixed into it
        raise LexdrError(f"[run] out_dir {cfg.out_dir} holds a {kind} index, not a run (fix: give the run "
                         "its own out_dir)")
    with folder_lock(cfg.out_dir):
        return _run_locked(cfg, quiet, report)


def _run_locked(cfg: RunConfig, quiet: bool, report: bool) -> dict:
    runner = StageRunner(cfg.out_dir, cfg.to_dict())
    done = run_stages(runner, method_graph(cfg, quiet=quiet), cfg.executor, show_progress=not quiet)
    results = {li.label(): done[f"{li.label()}/evaluate"] for li in cfg.languages if f"{li.label()}/evaluate" in done}
    with atomic_write(RunLayout(cfg.out_dir).metrics) as fh:
        json.dump(results, fh, indent=2)
    write_model_cards(cfg, results)
    if report:
        from lexdr.report import write_report

        write_report(cfg.out_dir)
    return results
