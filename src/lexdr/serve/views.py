"""What the inspection pages show, read from a run folder's files (no model, no search): the test set with the
gold passage's rank per system, the mined pseudo labels with both sides' ranks, the generated queries.

The same data feeds the live pages of ``lexdr serve`` and the static HTML of ``lexdr report --html``.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

from lexdr.errors import LexdrError
from lexdr.formats import read_qrels, read_queries, read_run
from lexdr.layout import BM25, DENSE_BASE, GENERATE, MINE, MINE_R2, RunLayout
from lexdr.pipeline.graph import adaptive_hybrid_name
from lexdr.records import Run

__all__ = ["RunViews", "FILTERS", "VERSUS"]

FILTERS = ("all", "wins", "loses", "ties")
VERSUS = {"bm25": "BM25", "dense-base": "the base encoder"}
MINING_FILTERS = ("all", "positive", "no-positive", "right", "wrong")
_MINED_DENSE = {MINE: DENSE_BASE, MINE_R2: "dense-r1"}  # a mining stage -> its dense side


def _rr(rank: int | None) -> float:
    return 1.0 / rank if rank else 0.0


def _ranks(run: Run, qid: str) -> dict[str, int]:
    return {h.doc_id: r for r, h in enumerate(run.get(qid, []), start=1)}


class RunViews:
    """Read-only views of one run folder. ``passages``: label -> doc id -> (title, text) when already loaded
    (the server's); otherwise each language's corpus is read on first use."""

    def __init__(self, run_dir: str | Path, passages: dict[str, dict[str, tuple[str, str]]] | None = None):
        from lexdr.serve.systems import run_language_inputs

        self.run_dir = Path(run_dir)
        self.layout = L = RunLayout(self.run_dir)
        manifest_path = L.manifest
        if not manifest_path.is_file():
            raise LexdrError(f"{self.run_dir} is not a lexdr run folder (no manifest.json)")
        self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        self.inputs = {i["label"]: i for i in run_language_inputs(self.run_dir, self.manifest)}
        self.labels = list(self.inputs)
        path = L.metrics
        self.metrics: dict[str, dict] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        self.metric_names: list[str] = list(self.manifest["config"].get("metrics") or ["MRR@10"])
        self._passages = dict(passages or {})

    # ------------------------------------------------------------------------------------------ basics
    def passages(self, label: str) -> dict[str, tuple[str, str]]:
        if label not in self._passages:
            from lexdr.serve.systems import _passages

            self._passages[label] = _passages(self.inputs[label]["corpus"])
        return self._passages[label]

    def main_metric(self) -> str:
        return self.metric_names[0]

    def trained_systems(self, label: str) -> list[str]:
        return [s for s in self.metrics.get(label, {}) if s.startswith("lexdr-") or s == "gold-supervised"]

    def best_trained(self, label: str) -> str | None:
        """The run's best self-supervised model for ``label`` by the first metric (gold-supervised excluded)."""
        m, main = self.metrics.get(label, {}), self.main_metric()
        own = [s for s in self.trained_systems(label) if s.startswith("lexdr-")]
        return max(own, key=lambda s: (m[s].get(main, 0.0), s)) if own else None

    def columns(self, label: str, trained: str | None) -> list[str]:
        """The side-by-side columns: BM25 | base | trained | its adaptive hybrid (those the run has)."""
        have = self.metrics.get(label, {})
        cols = ["bm25", "dense-base"] + ([trained, adaptive_hybrid_name(trained)] if trained else ["adaptive-hybrid"])
        return [c for c in cols if c in have or c in ("bm25", "dense-base")]

    # ------------------------------------------------------------------------------------------ test set
    def _test_run_path(self, label: str, system: str) -> Path | None:
        from lexdr.serve.systems import STAGE_OF

        stage = STAGE_OF.get(system)
        path = self.layout.run(label, stage, "test") if stage else self.layout.evaluated_run(label, system)
        return path if path.is_file() else None

    @functools.lru_cache(maxsize=None)
    def test_runs(self, label: str) -> dict[str, Run]:
        out = {}
        for system in self.metrics.get(label, {}):
            path = self._test_run_path(label, system)
            if path is not None:
                out[system] = read_run(path)
        return out

    @functools.lru_cache(maxsize=None)
    def test_queries(self, label: str) -> dict[str, str]:
        path = self.inputs[label]["test_queries"]
        return {q.query_id: q.text for q in read_queries(path)} if path else {}

    @functools.lru_cache(maxsize=None)
    def test_qrels(self, label: str) -> dict[str, dict[str, int]]:
        path = self.inputs[label]["test_qrels"]
        return read_qrels(path) if path else {}

    @functools.lru_cache(maxsize=None)
    def _gold_ranks(self, label: str) -> list[tuple[str, str, list[str], dict[str, int | None]]]:
        """(query id, text, gold ids, system -> best gold rank) for every judged test query, computed once."""
        runs, qrels = self.test_runs(label), self.test_qrels(label)
        out = []
        for qid, text in self.test_queries(label).items():
            gold = {d for d, rel in qrels.get(qid, {}).items() if rel > 0}
            if not gold:
                continue
            ranks = {}
            for system, run in runs.items():
                found = [r for r, h in enumerate(run.get(qid, []), start=1) if h.doc_id in gold]
                ranks[system] = found[0] if found else None
            out.append((qid, text, sorted(gold), ranks))
        return out

    def test_rows(self, label: str, trained: str | None = None, versus: str = "bm25",
                  only: str = "all") -> list[dict[str, Any]]:
        """Every test query with the gold passage's rank per system (None: not in that run's top ``depth``),
        and ``gap`` = reciprocal rank of ``trained`` minus that of ``versus``; filtered by ``only`` (wins /
        loses / ties of ``trained``) and sorted by the gap, largest first (losses: worst first)."""
        trained = trained or self.best_trained(label)
        rows = []
        for qid, text, gold, ranks in self._gold_ranks(label):
            gap = _rr(ranks.get(trained)) - _rr(ranks.get(versus)) if trained in ranks and versus in ranks else 0.0
            rows.append({"query_id": qid, "query": text, "gold": gold, "ranks": ranks, "gap": gap})
        if only == "wins":
            rows = [r for r in rows if r["gap"] > 0]
        elif only == "loses":
            rows = [r for r in rows if r["gap"] < 0]
        elif only == "ties":
            rows = [r for r in rows if r["gap"] == 0]
        key = (lambda r: (r["gap"], r["query_id"])) if only == "loses" else (lambda r: (-abs(r["gap"]), r["query_id"]))
        return sorted(rows, key=key)

    def side_by_side_from_runs(self, label: str, qid: str, columns: list[str], k: int) -> dict[str, list]:
        """A test query's columns from the run's own test runs (what the static HTML shows): system -> top
        ``k`` hits as (doc id, score)."""
        runs = self.test_runs(label)
        return {s: [(h.doc_id, h.score) for h in runs.get(s, {}).get(qid, [])[:k]] for s in columns}

    def rank_maps_from_runs(self, label: str, qid: str, columns: list[str]) -> dict[str, dict[str, int]]:
        runs = self.test_runs(label)
        return {s: _ranks(runs.get(s, {}), qid) for s in columns}

    # ------------------------------------------------------------------------------------------ mining
    def _mining_folder(self, label: str, stage: str) -> Path:
        """Where a mining's files are: its stage's folder; the generated queries' (page ``generate``) in
        ``mine-generated/`` (:meth:`lexdr.layout.RunLayout.generated_mining`)."""
        return self.layout.generated_mining(label) if stage == GENERATE else self.layout.stage(label, stage)

    def mining_stages(self, label: str) -> list[str]:
        return [s for s in (MINE, MINE_R2, GENERATE)
                if (p := self._mining_folder(label, s) / "mined.jsonl").is_file() and p.stat().st_size > 0]

    def _teacher_temperature(self, label: str, stage: str) -> float:
        from lexdr.mining.rules import MineConfig
        from lexdr.settings import default_of

        folder = self._mining_folder(label, stage)
        for path in (folder / "stats.json", folder / "mining" / "stats.json"):
            if path.is_file():
                t = (json.loads(path.read_text(encoding="utf-8")).get("config") or {}).get("teacher_temperature")
                if t:
                    return float(t)
        return float(default_of(MineConfig, "teacher_temperature"))

    @functools.lru_cache(maxsize=None)
    def mining(self, label: str, stage: str = "mine") -> tuple[list[dict], dict]:
        """The mined records of ``stage`` with each label's ranks on both sides, soft targets, and whether it
        was right (vs the unlabeled half's qrels; for generated queries, vs the passage each was generated
        for), plus a summary: coverage, precision, false negatives among the hard negatives."""
        if stage not in self.mining_stages(label):
            return [], {}
        base = self._mining_folder(label, stage)
        records = [json.loads(x) for x in (base / "mined.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
        if stage == GENERATE:
            sides = self.layout.generated_runs(label)
            gold = {}
            if self.layout.generated(label).is_file():
                for x in self.layout.generated(label).read_text(encoding="utf-8").splitlines():
                    if x.strip():
                        g = json.loads(x)
                        gold[g["query_id"]] = {d: 1 for d in g.get("positive_ids") or []}
            gold_from = "the passage each query was generated for"
        else:
            sides = (self.layout.run(label, BM25, "unlabeled"), self.layout.run(label, _MINED_DENSE[stage], "unlabeled"))
            qrels_path = self.inputs[label]["unlabeled_qrels"]
            gold = read_qrels(qrels_path) if qrels_path else {}
            gold_from = "the unlabeled half's qrels" if qrels_path else None
        bm25_run = read_run(sides[0]) if sides[0].is_file() else {}
        dense_run = read_run(sides[1]) if sides[1].is_file() else {}
        temp = self._teacher_temperature(label, stage)
        rows, n_pos, n_right, n_neg, n_false_neg = [], 0, 0, 0, 0
        for rec in records:
            qid = rec["query_id"]
            b, d = _ranks(bm25_run, qid), _ranks(dense_run, qid)
            relevant = {doc for doc, rel in gold.get(qid, {}).items() if rel > 0}
            judged = bool(gold_from) and qid in gold

            def item(doc: str) -> dict:
                return {"doc_id": doc, "bm25_rank": b.get(doc), "dense_rank": d.get(doc),
                        "relevant": (doc in relevant) if judged else None}

            scores = rec.get("teacher_scores") or []
            top = max(scores, default=0.0)
            exp = [math.exp((s - top) / temp) for s in scores]
            z = sum(exp) or 1.0
            soft = [dict(item(doc), teacher=s, p=e / z) for doc, s, e in zip(rec.get("candidate_ids") or [], scores, exp)]
            positives = [dict(item(doc), confidence=c) for doc, c in
                         zip(rec.get("positive_ids") or [], rec.get("positive_confidence") or [None] * 99)]
            negatives = [dict(item(doc), source=src) for doc, src in
                         zip(rec.get("negative_ids") or [], rec.get("negative_sources") or [""] * 999)]
            right = any(p["relevant"] for p in positives) if positives and judged else None
            n_pos += bool(positives)
            n_right += bool(right)
            n_neg += len(negatives) if judged else 0
            n_false_neg += sum(1 for x in negatives if x["relevant"])
            rows.append({"query_id": qid, "query": rec.get("query", ""), "rule": rec.get("rule"),
                         "positives": positives, "negatives": negatives, "soft": soft, "right": right,
                         "gold": sorted(relevant), "judged": judged})
        judged_pos = sum(1 for r in rows if r["positives"] and r["judged"])
        summary = {"stage": stage, "queries": len(rows), "with_positive": n_pos,
                   "coverage": n_pos / len(rows) if rows else None, "judged_by": gold_from,
                   "correct": n_right if gold_from else None,
                   "precision": (n_right / judged_pos if judged_pos else None) if gold_from else None,
                   "negatives": n_neg, "false_negatives": n_false_neg if gold_from else None,
                   "teacher_temperature": temp}
        return rows, summary

    def mining_rows(self, label: str, stage: str = "mine", only: str = "all", doc: str | None = None) -> list[dict]:
        rows, _ = self.mining(label, stage)
        if doc:
            rows = [r for r in rows if any(x["doc_id"] == doc for x in r["positives"] + r["negatives"])]
        if only == "positive":
            rows = [r for r in rows if r["positives"]]
        elif only == "no-positive":
            rows = [r for r in rows if not r["positives"]]
        elif only == "right":
            rows = [r for r in rows if r["right"] is True]
        elif only == "wrong":
            rows = [r for r in rows if r["right"] is False]
        return rows

    @functools.lru_cache(maxsize=None)
    def mined_labels_by_doc(self, label: str) -> dict[str, dict[str, int]]:
        """doc id -> how often the first round's mining made it a pseudo positive / a hard negative."""
        out: dict[str, dict[str, int]] = {}
        rows, _ = self.mining(label, "mine") if "mine" in self.mining_stages(label) else ([], {})
        for r in rows:
            for kind in ("positives", "negatives"):
                for x in r[kind]:
                    c = out.setdefault(x["doc_id"], {"positives": 0, "negatives": 0})
                    c[kind] += 1
        return out

    # ------------------------------------------------------------------------------------------ generated
    @functools.lru_cache(maxsize=None)
    def generated(self, label: str) -> tuple[list[dict], dict]:
        """Generated queries (kept or not) with the round-trip rank of their own passage, and the stage's stats."""
        base = self.layout.stage(label, GENERATE)
        path = self.layout.generated(label)
        if not path.is_file():
            return [], {}
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        stats = json.loads((base / "stats.json").read_text(encoding="utf-8")) if (base / "stats.json").is_file() else {}
        return rows, stats
