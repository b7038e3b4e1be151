"""The mining stage: (queries, BM25 run, dense run) files → ``mined.jsonl`` + ``stats.json``.

Mining reads runs, not indexes, so it is cheap to re-run with another rule, and any retriever that writes a
TREC run (Lucene, a user's own) can be one side of the agreement.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from lexdr.errors import InputError
from lexdr.formats import read_qrels, read_queries, read_run
from lexdr.formats.files import atomic_write, iter_jsonl, open_text, write_jsonl
from lexdr.formats.runs import iter_run
from lexdr.mining.rules import MineConfig, MinedExample, mine_from_runs, mine_query
from lexdr.mining.stats import rule_quality, soft_target_quality

if TYPE_CHECKING:
    from lexdr.executors import Executor

__all__ = ["mine", "MineInputs", "mine_stage", "write_mined", "read_mined", "iter_mined", "mined_teacher_temperature"]

logger = logging.getLogger(__name__)


def write_mined(examples: Iterable[MinedExample], path: str | Path) -> int:
    return write_jsonl((e.to_dict() for e in examples), path)


def iter_mined(path: str | Path) -> Iterator[MinedExample]:
    fields = set(MinedExample.__dataclass_fields__)
    for lineno, rec in iter_jsonl(path):
        missing = {"query_id", "query", "positive_ids", "candidate_ids", "teacher_scores"} - set(rec)
        if missing:
            raise InputError(path, lineno, f"mined record lacks {sorted(missing)}", "regenerate it with `lexdr mine`")
        yield MinedExample(**{k: v for k, v in rec.items() if k in fields})


def read_mined(path: str | Path) -> list[MinedExample]:
    return list(iter_mined(path))


def mined_teacher_temperature(path: str | Path) -> float | None:
    """The teacher temperature ``path`` (a ``mined.jsonl``) was mined at, as :func:`mine` recorded it in the
    ``stats.json`` beside it (``config.teacher_temperature``), or in ``mining/stats.json`` beside it (where the
    generation stage mines its kept queries before moving ``mined.jsonl`` up). None when nothing records it: a
    language without queries, or a file from elsewhere; training then uses its own setting."""
    folder = Path(path).parent
    for stats_path in (folder / "stats.json", folder / "mining" / "stats.json"):
        if not stats_path.is_file():
            continue
        try:
            stats = json.loads(stats_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        value = (stats.get("config") or {}).get("teacher_temperature") if isinstance(stats, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _mine_on(executor: "Executor", queries: list, bm25_run: dict, dense_run: dict, cfg: MineConfig) -> list:
    """:func:`mine_from_runs` over query shards as the executor's tasks, concatenated in query order (the
    function is pure and per query, so the result is the same list)."""
    from lexdr import executors

    per = executors.QUERIES_PER_SHARD
    shards = [queries[i:i + per] for i in range(0, len(queries), per)]
    args = ((shard, {q.query_id: bm25_run.get(q.query_id, []) for q in shard},
             {q.query_id: dense_run.get(q.query_id, []) for q in shard}, cfg) for shard in shards)
    parts = executor.map_ordered(mine_from_runs, args, in_flight=executor.cluster.analysis_tasks,
                                 num_cpus=executor.cluster.analysis_num_cpus)
    return [e for part in parts for e in part]


class _RunCursor:
    """Hands out one run file's hits query by query, in the order of the query file. A first pass reads only
    the query ids (which queries the run has); then hits are read ahead only as far as the query asked for:
    a run in query-file order (as lexdr writes them) holds one query's hits at a time, and hits met before
    their query is asked for are kept until it is."""

    def __init__(self, path: str | Path, order: dict[str, int]):
        with open_text(path) as fh:
            self._present = {line.split(None, 1)[0] for line in fh if line.strip()}
        self._blocks = iter_run(path)
        self._order = order
        self._early: dict[str, list] = {}

    def hits(self, qid: str) -> list:
        if qid in self._early:
            return self._early.pop(qid)
        if qid not in self._present:
            return []  # the retriever found nothing for it
        for got, hits in self._blocks:
            if got == qid:
                return hits
            if got in self._order:
                self._early[got] = hits
        return []


def _check_runs_cover(query_ids, bm25_ids, dense_ids, bm25_path, dense_path) -> None:
    """Each run must be of these queries: none of them in a run is an error (mining would pair every query
    with nothing from that side), some missing a loud warning with the counts (see
    :func:`lexdr.fusion.check_same_queries`)."""
    from lexdr.fusion import check_same_queries

    for name, ids in (("BM25", bm25_ids), ("dense", dense_ids)):
        path = bm25_path if name == "BM25" else dense_path
        check_same_queries(set(query_ids), ids, "the queries", f"the {name} run {path}",
                           f"give the {name} run of these queries (lexdr search ... QUERIES)")


def iter_mined_from_runs(queries: list, bm25_run_path: str | Path, dense_run_path: str | Path,
                         cfg: MineConfig) -> Iterator[MinedExample]:
    """:func:`mine_from_runs` reading the two run files query by query (memory: one query's hits each)."""
    order = {q.query_id: i for i, q in enumerate(queries)}
    bm25, dense = _RunCursor(bm25_run_path, order), _RunCursor(dense_run_path, order)
    _check_runs_cover(order, bm25._present, dense._present, bm25_run_path, dense_run_path)
    for q in queries:
        yield mine_query(q, bm25.hits(q.query_id), dense.hits(q.query_id), cfg)


def mine(queries_path: str | Path, bm25_run_path: str | Path, dense_run_path: str | Path, out_dir: str | Path,
         config: MineConfig | None = None, report_qrels_path: str | Path | None = None,
         executor: "Executor | None" = None) -> Path:
    """Mine pseudo positives and hard negatives for every query; write ``mined.jsonl`` and ``stats.json``.

    ``report_qrels_path`` (optional) is used *only* to report the mined labels' precision and coverage.
    ``executor``: a distributed one (:mod:`lexdr.executors`) mines shards of
    :data:`lexdr.executors.QUERIES_PER_SHARD` queries as its tasks (the same ``mined.jsonl``).
    """
    cfg = config or MineConfig()
    out = Path(out_dir)
    queries = read_queries(queries_path)
    if executor is not None and executor.distributed:
        bm25_run, dense_run = read_run(bm25_run_path), read_run(dense_run_path)
        _check_runs_cover({q.query_id for q in queries}, bm25_run, dense_run, bm25_run_path, dense_run_path)
        examples = _mine_on(executor, queries, bm25_run, dense_run, cfg)
    else:  # the runs are read query by query; the examples (a few candidates each) are kept for the statistics
        examples = list(iter_mined_from_runs(queries, bm25_run_path, dense_run_path, cfg))
    write_mined(examples, out / "mined.jsonl")
    sources = Counter(s for e in examples for s in e.negative_sources)
    stats: dict = {
        "config": cfg.to_dict(),
        "queries": len(examples),
        "with_positive": sum(1 for e in examples if e.positive_ids),
        "negatives": dict(sources),
        "mean_candidates": sum(len(e.candidate_ids) for e in examples) / max(1, len(examples)),
    }
    if report_qrels_path:
        qrels = read_qrels(report_qrels_path)
        stats["quality"] = rule_quality(examples, qrels)
        stats["soft_quality"] = soft_target_quality(examples, qrels, cfg.teacher_temperature)
    with atomic_write(out / "stats.json") as fh:
        json.dump(stats, fh, indent=2)
    logger.info("mined %d queries, %d with a positive (rule %s)", stats["queries"], stats["with_positive"], cfg.rule)
    return out


@dataclass(frozen=True)
class MineInputs:
    """What :func:`mine_stage` reads: the queries and the two runs of them (None: a language without unlabeled
    queries, whose mining writes an empty ``mined.jsonl``); ``report_qrels``, labels used only to report the
    mined labels' precision and coverage. ``optional``: an absent query file, or a run that found nothing for
    any query, gives an empty ``mined.jsonl`` (with a warning for the run) instead of an error (the pipeline's
    generated queries: generation may keep none, and BM25 may know none of the words of the kept ones)."""

    queries: Path | None
    bm25_run: Path | None = None
    dense_run: Path | None = None
    report_qrels: Path | None = None
    optional: bool = False


def _nothing_to_mine(inputs: MineInputs) -> bool:
    """Whether ``inputs`` leave nothing to mine: no query file, or (``optional``) none on disk or a run with
    no hit at all (with one side empty no query can be mined)."""
    if inputs.queries is None:
        return True
    if not inputs.optional:
        return False
    if not Path(inputs.queries).is_file():
        return True
    empty = [name for name, run in (("BM25", inputs.bm25_run), ("the dense index", inputs.dense_run))
             if run is None or not Path(run).is_file() or Path(run).stat().st_size == 0]
    if empty:
        logger.warning("mining: %s found nothing for the queries of %s; none is mined", empty[0], inputs.queries)
    return bool(empty)


def mine_stage(inputs: MineInputs, config: MineConfig, out_dir: str | Path, executor: "Executor") -> dict:
    """Mine pseudo positives and hard negatives from two runs: the stage of ``lexdr mine`` and of the pipeline's
    ``mine`` / ``mine-r2``.

    ==========================  ======  ===========================================================
    file                        r / w   format
    ==========================  ======  ===========================================================
    ``inputs.queries``          read    topics TSV or BEIR ``queries.jsonl``
    ``inputs.bm25_run``         read    TREC run of BM25 for those queries
    ``inputs.dense_run``        read    TREC run of the dense encoder for those queries
    ``inputs.report_qrels``     read    TREC qrels (optional; only for the quality report)
    ``out_dir/mined.jsonl``     write   one line per query: ``query_id``, ``query``, ``positive_ids``,
                                        ``negative_ids`` + ``negative_sources``, ``candidate_ids`` +
                                        ``teacher_scores`` (:class:`lexdr.mining.MinedExample`)
    ``out_dir/stats.json``      write   counts, the config (its ``teacher_temperature`` is what training
                                        distils at), the quality report when labels were given
    ==========================  ======  ===========================================================

    Returns ``stats.json`` (recorded in the manifest). On a distributed ``executor`` the queries are mined in
    shards of :data:`lexdr.executors.QUERIES_PER_SHARD` as its tasks (the same ``mined.jsonl``)."""
    if _nothing_to_mine(inputs):  # every passage is then unreached, so generation covers the corpus
        with atomic_write(Path(out_dir) / "mined.jsonl") as fh:
            fh.write("")
        return {"queries": 0}
    out = mine(inputs.queries, inputs.bm25_run, inputs.dense_run, out_dir, config,
               report_qrels_path=inputs.report_qrels, executor=executor)
    return json.loads((out / "stats.json").read_text(encoding="utf-8"))
