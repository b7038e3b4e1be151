"""``run_pipeline``: index → mine → [generate] → train → [re-mine → train] → index with the new model →
evaluate → report, for one or several languages, into one run directory.

Layout of the run directory::

    manifest.json                config, environment, per-stage fingerprint/time/peak memory/result
    <label>/data/                the language's inputs as standard files (dev tasks are materialised here)
    <label>/bm25/                BM25 index + runs (unlabeled, test)
    <label>/dense-base/          FAISS index of the base encoder + runs
    <label>/mine/                mined.jsonl + stats.json
    <label>/generate/            generated.jsonl + stats.json (when enabled), <label>/mine-gen/ their mining
    train-r1/                    the trained model (joint over all languages) + train_log.jsonl
    <label>/dense-r1/            index and runs of the trained model
    <label>/mine-r2/, train-r2/, <label>/dense-r2/   second round (rounds = 2)
    train-gold/, <label>/dense-gold/                 gold-supervised upper bound (gold_upper_bound = true)
    <label>/evaluate/            metrics.json (every system on the test queries) and the fused runs
    metrics.json                 all languages' metrics
    report/                      report.md + PNG plots
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from lexdr.errors import ConfigError, LexdrError
from lexdr.formats import (iter_corpus, read_qrels, read_queries, read_run, write_qrels_trec, write_queries_tsv,
                           write_run)
from lexdr.formats.files import atomic_write
from lexdr.pipeline.config import LanguageInput, RunConfig
from lexdr.pipeline.engine import Stage, StageRunner, file_digest

__all__ = ["run_pipeline", "validate_inputs"]

logger = logging.getLogger(__name__)
SEP = "/"  # namespaces passage ids across languages in joint training: "<label>/<doc_id>"


def _take(items: list, n: int | None) -> list:
    """At most ``n`` items, evenly spaced over the list (deterministic): files are often ordered by article or
    topic, and the first ``n`` would cover only a few of them."""
    if n is None or n >= len(items):
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


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


def _reusable_dense_index(folder: Path, encoder_description: dict, provenance: dict):
    """An index already built from the same corpus content with the same encoder, or None.

    A stage re-runs when anything it depends on changes (e.g. the number of unlabeled queries), but
    re-encoding an unchanged corpus is the most expensive thing the pipeline does: reuse it when its
    recorded provenance (corpus digest, trained model's fingerprint) and encoder description match exactly.
    """
    from lexdr.dense.index import DenseIndex

    cfg_path = folder / "config.json"
    if not cfg_path.exists():
        return None
    meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    recorded = {k: v for k, v in (meta.get("encoder") or {}).items() if k != "show_progress"}
    if any(meta.get(k) != v for k, v in provenance.items()) or recorded != encoder_description:
        return None
    logger.info("reusing the dense index in %s (same corpus and encoder)", folder)
    return DenseIndex.load(folder)


def _record_provenance(folder: Path, provenance: dict) -> None:
    cfg_path = folder / "config.json"
    meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    meta.update(provenance)
    with atomic_write(cfg_path) as fh:
        json.dump(meta, fh, ensure_ascii=False, indent=2)


def _data_stage(li: LanguageInput):
    def fn(folder: Path) -> dict:
        out: dict[str, Any] = {}
        if li.dev_task:
            from lexdr.tasks import load_dev_task

            task = load_dev_task(li.dev_task)
            from lexdr.formats import write_corpus_jsonl

            write_corpus_jsonl(task.corpus, folder / "corpus.jsonl")
            unl = _take(task.queries_of("unlabeled"), li.max_unlabeled)
            test = _take(task.queries_of("test"), li.max_test)
            write_queries_tsv(unl, folder / "queries.unlabeled.tsv")
            write_queries_tsv(test, folder / "queries.test.tsv")
            write_qrels_trec({q.query_id: task.qrels[q.query_id] for q in test}, folder / "qrels.test.txt")
            # Written for the gold upper bound and mining-precision reports only; no training stage reads it
            # unless gold_upper_bound is set.
            write_qrels_trec({q.query_id: task.qrels[q.query_id] for q in unl}, folder / "qrels.unlabeled.txt")
            out["corpus"] = str(folder / "corpus.jsonl")
            out["unlabeled_qrels"] = str(folder / "qrels.unlabeled.txt")
        elif li.source:
            from lexdr.pipeline.sources import load_hf_source

            paths = load_hf_source(li.source, li.lang, folder)
            out["corpus"] = str(paths["corpus"])
            li_paths = {k: str(v) for k, v in paths.items()}
            for k in ("unlabeled_queries", "test_queries", "test_qrels"):
                out[k + "_src"] = li_paths[k]
        else:
            out["corpus"] = li.corpus
            out["unlabeled_qrels"] = li.unlabeled_qrels
        if not li.dev_task:
            unl_src = out.get("unlabeled_queries_src", li.unlabeled_queries)
            test_src = out.get("test_queries_src", li.test_queries)
            qrels_src = out.get("test_qrels_src", li.test_qrels)
            if unl_src:
                write_queries_tsv(_take(read_queries(unl_src), li.max_unlabeled), folder / "queries.unlabeled.tsv")
            if test_src:
                test = _take(read_queries(test_src), li.max_test)
                write_queries_tsv(test, folder / "queries.test.tsv")
                qrels = read_qrels(qrels_src)
                write_qrels_trec({q.query_id: qrels[q.query_id] for q in test if q.query_id in qrels},
                                 folder / "qrels.test.txt")
        n_docs = sum(1 for _ in iter_corpus(out["corpus"]))  # validates the whole corpus once, with file:line errors
        out["passages"] = n_docs
        for name in ("queries.unlabeled.tsv", "queries.test.tsv"):
            out[name] = len(read_queries(folder / name)) if (folder / name).exists() else 0
        return out

    return fn


class _Pipeline:
    def __init__(self, cfg: RunConfig, quiet: bool = False):
        self.cfg = cfg
        self.quiet = quiet
        self.runner = StageRunner(cfg.out_dir, cfg.to_dict())
        self.data: dict[str, dict] = {}

    # ---------------------------------------------------------------- helpers
    def f(self, *parts: str) -> Path:
        return self.runner.run_dir.joinpath(*parts)

    def queries_path(self, li: LanguageInput, part: str) -> Path | None:
        p = self.f(li.label(), "data", f"queries.{part}.tsv")
        return p if p.exists() else None

    def encoder_config(self, model: str):
        from lexdr.dense import EncoderConfig

        d = dataclasses.asdict(self.cfg.dense)
        d.update(model=model, show_progress=not self.quiet)
        if model != self.cfg.base_model:
            # A trained folder carries its own prompts (saved by the trainer); do not override them.
            d.update(query_prompt=None, passage_prompt=None)
        return EncoderConfig(**d)

    # ---------------------------------------------------------------- stages
    def stage_data(self, li: LanguageInput) -> None:
        inputs = [p for p in (li.corpus, li.unlabeled_queries, li.test_queries, li.test_qrels, li.unlabeled_qrels) if p]
        self.data[li.label()] = self.runner.run(Stage(f"{li.label()}/data", _data_stage(li),
                                                      config=dataclasses.asdict(li), inputs=inputs))

    def stage_bm25(self, li: LanguageInput) -> None:
        label = li.label()
        bm = self.cfg.bm25

        def fn(folder: Path) -> dict:
            from lexdr.sparse import BM25Index

            kwargs = {k: v for k, v in {"analyzer": bm.analyzer, "k1": bm.k1, "b": bm.b}.items() if v is not None}
            index = BM25Index.build(iter_corpus(self.data[label]["corpus"]), lang=li.lang, **kwargs)
            index.save(folder / "index")
            for part in ("unlabeled", "test"):
                qp = self.queries_path(li, part)
                if qp:
                    write_run(index.search(read_queries(qp), k=bm.depth), folder / f"run.{part}.trec", tag="bm25")
            return {"vocab": index.vocab_size, "docs": index.num_docs}

        self.runner.run(Stage(f"{label}/bm25", fn, config=dataclasses.asdict(bm), deps=[f"{label}/data"]))

    def stage_dense(self, li: LanguageInput, name: str, model_dep: str | None, parts=("unlabeled", "test")) -> None:
        """Index the corpus with a model (the base one, or the output of a training stage) and search."""
        label = li.label()

        def fn(folder: Path) -> dict:
            from lexdr.dense import Encoder, build_dense_index
            from lexdr.dense.index import DenseIndex

            model = self.cfg.base_model if model_dep is None else str(self.f(model_dep, "model"))
            encoder = Encoder(self.encoder_config(model))
            corpus = self.data[label]["corpus"]
            # A trained model's folder path stays the same when it is retrained: the index is tied to the
            # training stage's fingerprint too, not only to the path.
            provenance = {"corpus_sha256": file_digest(corpus),
                          "model_fingerprint": self.runner.fingerprints[model_dep] if model_dep else None}
            index = _reusable_dense_index(folder / "index", encoder.describe(), provenance)
            if index is None:
                build_dense_index(corpus, folder / "index", encoder=encoder)
                _record_provenance(folder / "index", provenance)
                index = DenseIndex.load(folder / "index")
            for part in parts:
                qp = self.queries_path(li, part)
                if qp:
                    qs = read_queries(qp)
                    emb = encoder.encode_queries([q.text for q in qs])
                    write_run(index.search([q.query_id for q in qs], emb, self.cfg.bm25.depth),
                              folder / f"run.{part}.trec", tag=name)
            return {"model": model}

        deps = [f"{label}/data"] + ([model_dep] if model_dep else [])
        self.runner.run(Stage(f"{label}/{name}", fn, config={"dense": dataclasses.asdict(self.cfg.dense),
                                                               "model": model_dep or self.cfg.base_model,
                                                               # which runs it writes: a run first made with
                                                               # rounds = 1 must redo it for round 2's mining
                                                               "parts": list(parts)},
                              deps=deps))

    def stage_mine(self, li: LanguageInput, name: str, dense_stage: str, part: str = "unlabeled",
                   queries: Path | None = None, bm25_stage: str = "bm25") -> None:
        label = li.label()

        def fn(folder: Path) -> dict:
            from lexdr.mining import mine

            qp = queries or self.queries_path(li, part)
            report = self.data[label].get("unlabeled_qrels") if part == "unlabeled" else None
            mine(qp, self.f(label, bm25_stage, f"run.{part}.trec"), self.f(label, dense_stage, f"run.{part}.trec"),
                 folder, self.cfg.mining, report_qrels_path=report)
            return json.loads((folder / "stats.json").read_text())

        self.runner.run(Stage(f"{label}/{name}", fn, config=self.cfg.mining.to_dict(),
                              deps=[f"{label}/data", f"{label}/{bm25_stage}", f"{label}/{dense_stage}"]))

    def stage_generate(self, li: LanguageInput) -> None:
        from lexdr.pipeline.generate_stage import generate_and_mine

        label = li.label()
        gen = self.cfg.generation
        self.runner.run(Stage(f"{label}/generate", lambda folder: generate_and_mine(self, li, folder),
                              config={"generation": dataclasses.asdict(gen), "mining": self.cfg.mining.to_dict(),
                                      "base_model": self.cfg.base_model},
                              deps=[f"{label}/data", f"{label}/bm25", f"{label}/dense-base", f"{label}/mine"]))

    def _examples(self, mined_stage: str, gold: bool = False, generated: bool = False):
        """Training examples of every language, passage ids namespaced by language label."""
        from lexdr.mining import read_mined
        from lexdr.training import examples_from_mined

        examples, passages_needed = [], {}
        for li in self.cfg.languages:
            label = li.label()
            sources = [self.f(label, mined_stage, "mined.jsonl")]
            if generated:
                sources.append(self.f(label, "generate", "mined.jsonl"))
            mined = [m for s in sources if s.exists() for m in read_mined(s)]
            if gold:
                qrels_path = self.data[label].get("unlabeled_qrels")
                if not qrels_path:
                    raise ConfigError(f"{label}: gold_upper_bound needs unlabeled_qrels (dev tasks have them)")
                qrels = read_qrels(qrels_path)
                for m in mined:
                    rel = [d for d, g in qrels.get(m.query_id, {}).items() if g >= 1]
                    m.positive_ids = rel[:1]
                    m.positive_confidence = [1.0] if rel else []
                    # Hard negatives as mined, minus anything the gold labels call relevant.
                    keep = [(d, s) for d, s in zip(m.negative_ids, m.negative_sources) if d not in rel]
                    m.negative_ids, m.negative_sources = [d for d, _ in keep], [s for _, s in keep]
            exs = examples_from_mined(mined, self.cfg.training)
            for e in exs:
                e.candidate_ids = [f"{label}{SEP}{d}" for d in e.candidate_ids]
                e.positive_id = f"{label}{SEP}{e.positive_id}" if e.positive_id else None
                e.negative_ids = [f"{label}{SEP}{d}" for d in e.negative_ids]
                for d in [*e.candidate_ids, *e.negative_ids, *([e.positive_id] if e.positive_id else [])]:
                    passages_needed.setdefault(label, set()).add(d.split(SEP, 1)[1])
            examples.extend(exs)
        passages = {}
        for li in self.cfg.languages:
            need = passages_needed.get(li.label(), set())
            for d in iter_corpus(self.data[li.label()]["corpus"]):
                if d.doc_id in need:
                    passages[f"{li.label()}{SEP}{d.doc_id}"] = d.full_text()
        return examples, passages

    def stage_train(self, name: str, mined_stage: str, start_model: str | None = None, gold: bool = False,
                    generated: bool = False) -> None:
        from lexdr.training import LossKind, train

        tcfg = dataclasses.replace(self.cfg.training, show_progress=not self.quiet)
        if gold:
            # Gold upper bound: the same trainer and schedule, on the true labels (hard positives + the mined
            # hard negatives that the labels do not call relevant); with gold_loss = "kl+contrastive" also
            # the method's soft targets.
            tcfg = dataclasses.replace(tcfg, loss=LossKind(self.cfg.gold_loss))
        if start_model:
            tcfg = dataclasses.replace(tcfg, model=str(self.f(start_model, "model")))

        def fn(folder: Path) -> dict:
            examples, passages = self._examples(mined_stage, gold=gold, generated=generated)
            train(examples, passages, folder, tcfg)
            log = [json.loads(x) for x in (folder / "train_log.jsonl").read_text().splitlines() if x.strip()]
            return {"examples": len(examples), "steps": len(log), "final_loss": log[-1]["loss"] if log else None}

        deps = [f"{li.label()}/{mined_stage}" for li in self.cfg.languages]
        if generated:
            deps += [f"{li.label()}/generate" for li in self.cfg.languages]
        deps += [start_model] if start_model else []
        self.runner.run(Stage(name, fn, config={"training": tcfg.to_dict(), "gold": gold, "generated": generated},
                              deps=deps))

    def stage_evaluate(self, li: LanguageInput, systems: dict[str, str]) -> dict:
        label = li.label()
        qrels_path = self.f(label, "data", "qrels.test.txt")

        def fn(folder: Path) -> dict:
            from lexdr.evaluation import evaluate
            from lexdr.fusion import rrf

            qrels = read_qrels(qrels_path)
            runs = {name: read_run(self.f(label, stage, "run.test.trec")) for name, stage in systems.items()}
            for name in [n for n in runs if n != "bm25"]:
                hybrid = "hybrid" if name == "dense-base" else f"hybrid-{name}"
                runs[hybrid] = rrf([runs["bm25"], runs[name]], top_k=self.cfg.bm25.depth)
                write_run(runs[hybrid], folder / f"run.{hybrid}.trec", tag=hybrid)
            metrics = {name: evaluate(run, qrels, self.cfg.metrics) for name, run in runs.items()}
            with atomic_write(folder / "metrics.json") as fh:
                json.dump(metrics, fh, indent=2)
            return metrics

        deps = [f"{label}/data"] + [f"{label}/{s}" for s in systems.values()]
        return self.runner.run(Stage(f"{label}/evaluate", fn, config={"metrics": self.cfg.metrics, "systems": systems},
                                     deps=deps))

    # ---------------------------------------------------------------- the whole method
    def run(self) -> dict:
        cfg = self.cfg
        langs = cfg.languages
        for li in langs:
            self.stage_data(li)
        for li in langs:
            if not self.queries_path(li, "unlabeled") and not cfg.generation.enabled:
                raise ConfigError(f"{li.label()}: no unlabeled queries and generation is disabled: there is "
                                  "nothing to train on; give unlabeled_queries= or enable [generation]")
            self.stage_bm25(li)
            self.stage_dense(li, "dense-base", None)
            if self.queries_path(li, "unlabeled"):
                self.stage_mine(li, "mine", "dense-base")
            else:
                self._empty_mine(li)
            if cfg.generation.enabled:
                self.stage_generate(li)
        systems = {"bm25": "bm25", "dense-base": "dense-base"}
        has_mined = any(self.queries_path(li, "unlabeled") for li in langs)
        if has_mined:
            # Round 1 on mined pairs only; with generation on, a second model trains on mined + generated, so
            # the report shows what generation adds.
            self.stage_train("train-r1", "mine")
            for li in langs:
                self.stage_dense(li, "dense-r1", "train-r1",
                                 parts=("unlabeled", "test") if cfg.rounds == 2 else ("test",))
            systems["lexdr-r1"] = "dense-r1"
        if cfg.generation.enabled:
            self.stage_train("train-gen", "mine", generated=True)
            for li in langs:
                self.stage_dense(li, "dense-gen", "train-gen", parts=("test",))
            systems["lexdr-gen"] = "dense-gen"
        if cfg.rounds == 2 and has_mined:
            for li in langs:
                self.stage_mine(li, "mine-r2", "dense-r1")
            self.stage_train("train-r2", "mine-r2")
            for li in langs:
                self.stage_dense(li, "dense-r2", "train-r2", parts=("test",))
            systems["lexdr-r2"] = "dense-r2"
        if cfg.gold_upper_bound:
            self.stage_train("train-gold", "mine", gold=True)
            for li in langs:
                self.stage_dense(li, "dense-gold", "train-gold", parts=("test",))
            systems["gold-supervised"] = "dense-gold"
        results = {}
        for li in langs:
            if self.queries_path(li, "test"):
                results[li.label()] = self.stage_evaluate(li, systems)
        with atomic_write(self.f("metrics.json")) as fh:
            json.dump(results, fh, indent=2)
        return results

    def _empty_mine(self, li: LanguageInput) -> None:
        def fn(folder: Path) -> dict:
            with atomic_write(folder / "mined.jsonl") as fh:
                fh.write("")
            return {"queries": 0}

        self.runner.run(Stage(f"{li.label()}/mine", fn, deps=[f"{li.label()}/data"]))


def run_pipeline(cfg: RunConfig, quiet: bool = False, report: bool = True) -> dict:
    """Run (or resume) the whole method for ``cfg``; returns per-language metrics of every system."""
    validate_inputs(cfg)
    results = _Pipeline(cfg, quiet=quiet).run()
    if report:
        from lexdr.report import write_report

        write_report(cfg.out_dir)
    return results
