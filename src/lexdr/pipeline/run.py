"""``run_pipeline``: validate the inputs, declare the stage graph (:mod:`lexdr.pipeline.graph`), run it through
the stage engine (fingerprints, skip-if-unchanged, resume, manifest), write ``metrics.json`` and the report."""

from __future__ import annotations

import json
import logging

from lexdr.errors import ConfigError, LexdrError
from lexdr.executors import Executor, ExecutorSpec, resolve_executor
from lexdr.formats.files import atomic_write, folder_kind, folder_lock
from lexdr.layout import RunLayout
from lexdr.pipeline.config import RunConfig
from lexdr.pipeline.engine import Stage, StageRunner
from lexdr.pipeline.graph import StageSpec, method_graph, resolve_inputs
from lexdr.tasks import check_inputs

__all__ = ["run_pipeline", "validate_inputs", "run_stages"]

logger = logging.getLogger(__name__)


def validate_inputs(cfg: RunConfig) -> None:
    """Checks that need reading the (small) query and qrels files (:func:`lexdr.tasks.check_inputs`); raises one
    ConfigError listing every problem of every language."""
    problems = check_inputs(cfg.languages)
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
    if report:
        from lexdr.report import write_report

        write_report(cfg.out_dir)
    return results
