"""The method as a stage graph: a list of :class:`StageSpec`, each naming a package's stage function, its
arguments (paths in the run directory and frozen configs), what it depends on, and what is fingerprinted.

Nothing here runs anything: :func:`method_graph` only declares. :mod:`lexdr.pipeline.run` hands the specs to
the stage engine (fingerprints, skip, resume, manifest); another executor can call the same functions with the
same arguments. Layout of the run directory::

    manifest.json                config, environment, per-stage fingerprint/time/peak memory/result
    <label>/data/                the language's inputs as standard files (dev tasks are materialised here)
    <label>/bm25/                BM25 index + runs (unlabeled, test)
    <label>/tokens/<key>/        the corpus's token ids (one folder per tokenizer, length and prompt), written by
                                 the first dense stage and read by the others (lexdr.dense.token_ids)
    <label>/dense-base/          FAISS index of the base encoder + runs
    <label>/mine/                mined.jsonl + stats.json
    generator/                   [generation] backend = "trained": ONE query generator trained on every language's
                                 mined pairs (model/ = LoRA adapters + tokenizer, loadable without lexdr)
    <label>/generate/            generated.jsonl + stats.json + their mining (when generation is enabled)
    train-r1/                    the trained model (joint over all languages) + train_log.jsonl
    <label>/dense-r1/            index and runs of the trained model
    train-gen/, <label>/dense-gen/                   mined + generated (generation enabled)
    <label>/mine-r2/, train-r2/, <label>/dense-r2/   second round (rounds = 2)
    train-gold/, <label>/dense-gold/                 gold-supervised upper bound (gold_upper_bound = true)
    <label>/evaluate/            metrics.json (every system on the test queries) and the fused runs
    metrics.json                 all languages' metrics
    report/                      report.md + PNG plots
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from lexdr.dense import DenseIndexConfig, EncoderConfig, dense_stage
from lexdr.evaluation import evaluate_stage
from lexdr.generation.stage import GeneratorSource, generate_stage, train_generator_stage
from lexdr.mining.stage import mine_stage, write_no_queries
from lexdr.pipeline.config import RunConfig
from lexdr.settings import fingerprint_fields, to_plain
from lexdr.sparse import bm25_stage
from lexdr.tasks.prepare import PATH_FIELDS, LanguageInput, prepare_language
from lexdr.training import TrainSource, train_stage

__all__ = ["StageSpec", "FingerprintOf", "method_graph", "SYSTEMS", "TRAINED_SYSTEMS", "hybrid_name",
           "adaptive_hybrid_name"]


@dataclass(frozen=True)
class FingerprintOf:
    """An argument filled in at run time with the fingerprint of stage ``stage`` (e.g. to tie a dense index to
    the training that produced its model: the model's folder path stays the same when it is retrained)."""

    stage: str


@dataclass(frozen=True)
class StageSpec:
    name: str  # its folder under the run directory, e.g. "xquad-r-de/bm25"
    fn: Callable[..., Any]  # a package's stage function, called as fn(**args, out_dir=<folder>)
    args: Mapping[str, Any]  # paths and frozen configs (FingerprintOf values resolved at run time)
    config: Mapping[str, Any] = field(default_factory=dict)  # what changes results: fingerprinted
    inputs: tuple[str, ...] = ()  # user files it reads (content-hashed into the fingerprint)
    deps: tuple[str, ...] = ()  # stages whose outputs it reads


# System name in the metrics -> the stage whose test run it is; trained systems are added as they are declared.
SYSTEMS = {"bm25": "bm25", "dense-base": "dense-base"}


# Training stage -> the system its model is evaluated as.
TRAINED_SYSTEMS = {"train-r1": "lexdr-r1", "train-gen": "lexdr-gen", "train-r2": "lexdr-r2",
                   "train-gold": "gold-supervised"}


def hybrid_name(system: str) -> str:
    """The RRF hybrid of BM25 and ``system`` in the metrics: "hybrid" for the base encoder."""
    return "hybrid" if system == "dense-base" else f"hybrid-{system}"


def adaptive_hybrid_name(system: str) -> str:
    """The adaptive hybrid of BM25 and ``system`` (weights fitted on the unlabeled queries' runs, no labels):
    "adaptive-hybrid" for the base encoder, "adaptive-hybrid-<system>" for a trained one."""
    return f"adaptive-{hybrid_name(system)}"


def _fp(config: Any, cls: type | None = None) -> dict:
    """The fingerprinted part of a frozen config: its fields minus the execution options."""
    plain = to_plain(config)
    keep = fingerprint_fields(cls or type(config))
    return {k: v for k, v in plain.items() if k in keep}


def _index_fp(index: DenseIndexConfig) -> dict:
    """``[dense.index]`` in a dense stage's fingerprint: the settings that differ from their defaults (run folders
    made before the section existed keep their fingerprints). Changing one re-runs the stage, which rebuilds
    the index from the kept encoded shards (nprobe / ef_search only re-search), never re-encodes."""
    default = _fp(DenseIndexConfig())
    changed = {k: v for k, v in _fp(index).items() if v != default[k]}
    return {"index": changed} if changed else {}


class _Layout:
    """Where each language's files are in the run directory (known before anything runs)."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.root = Path(cfg.out_dir)

    def f(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def corpus(self, li: LanguageInput) -> Path:
        return Path(li.corpus) if li.corpus and not (li.dev_task or li.source) else self.f(li.label(), "data", "corpus.jsonl")

    def queries(self, li: LanguageInput, part: str) -> Path:
        return self.f(li.label(), "data", f"queries.{part}.tsv")

    def parts(self, li: LanguageInput) -> list[str]:
        return [p for p, has in (("unlabeled", li.has_unlabeled), ("test", li.has_test)) if has]

    def unlabeled_qrels(self, li: LanguageInput) -> Path | None:
        if li.dev_task:
            return self.f(li.label(), "data", "qrels.unlabeled.txt")
        return Path(li.unlabeled_qrels) if li.unlabeled_qrels else None


def _data(li: LanguageInput) -> StageSpec:
    config = {k: v for k, v in to_plain(li).items() if k not in PATH_FIELDS}  # paths: by content, in inputs
    inputs = tuple(p for p in (getattr(li, a) for a in PATH_FIELDS) if p)
    if li.dev_task:  # the shared data files the task is built from, hashed like any user file
        from lexdr.tasks.devtasks import dev_task_files

        inputs += tuple(str(p) for p in dev_task_files(li.dev_task))
    return StageSpec(f"{li.label()}/data", prepare_language, {"spec": li}, config=config, inputs=inputs)


def _encoder(cfg: RunConfig, model: str) -> EncoderConfig:
    if model == cfg.base_model:
        return dataclasses.replace(cfg.dense, model=model)
    # A trained folder carries its own prompts (saved by the trainer); do not override them.
    return dataclasses.replace(cfg.dense, model=model, query_prompt=None, passage_prompt=None)


def method_graph(cfg: RunConfig, quiet: bool = False) -> list[StageSpec]:
    """Every stage of the method for ``cfg``, in an order where each stage comes after what it reads."""
    L = _Layout(cfg)
    langs = cfg.languages
    depth = cfg.bm25.depth
    specs: list[StageSpec] = []
    systems = dict(SYSTEMS)
    dense_cfg = dataclasses.replace(cfg.dense, show_progress=not quiet)
    cfg_q = dataclasses.replace(cfg, dense=dense_cfg)

    def dense(li: LanguageInput, name: str, train: str | None, parts: tuple[str, ...]) -> StageSpec:
        model = cfg.base_model if train is None else str(L.f(train, "model"))
        enc = _encoder(cfg_q, model)
        label = li.label()
        queries = {p: L.queries(li, p) for p in parts if p in L.parts(li)}
        provenance = {"model_fingerprint": FingerprintOf(train) if train else None}
        return StageSpec(f"{label}/{name}", dense_stage,
                         {"corpus": L.corpus(li), "queries": queries, "encoder_config": enc, "depth": depth,
                          "provenance": provenance, "tag": name, "index_config": cfg.dense_index,
                          "executor": cfg.executor,  # where shards are encoded: not fingerprinted
                          # the corpus's token ids, tokenized once and read by every dense stage of the language
                          "token_dir": L.f(label, "tokens")},
                         # which runs it writes: a run first made with rounds = 1 must redo it for round 2's mining
                         config={"dense": _fp(enc), "model": train or cfg.base_model, "parts": sorted(queries),
                                 "depth": depth, **_index_fp(cfg.dense_index)},
                         deps=(f"{label}/data",) + ((train,) if train else ()))

    def mine_spec(li: LanguageInput, name: str, dense_stage_name: str) -> StageSpec:
        label = li.label()
        report = L.unlabeled_qrels(li)
        return StageSpec(f"{label}/{name}", mine_stage,
                         {"queries_path": L.queries(li, "unlabeled"), "bm25_run_path": L.f(label, "bm25", "run.unlabeled.trec"),
                          "dense_run_path": L.f(label, dense_stage_name, "run.unlabeled.trec"), "config": cfg.mining,
                          "report_qrels_path": report, "executor": cfg.executor},
                         config=_fp(cfg.mining), deps=(f"{label}/data", f"{label}/bm25", f"{label}/{dense_stage_name}"))

    def train(name: str, mined_stage: str, start: str | None = None, gold: bool = False,
              generated: bool = False) -> StageSpec:
        tcfg = dataclasses.replace(cfg.training, show_progress=not quiet)
        if gold:
            tcfg = dataclasses.replace(tcfg, loss=cfg.run.gold_loss)
        if start:
            tcfg = dataclasses.replace(tcfg, model=str(L.f(start, "model")))
        sources = tuple(TrainSource(li.label(), L.corpus(li),
                                    (L.f(li.label(), mined_stage, "mined.jsonl"),)
                                    + ((L.f(li.label(), "generate", "mined.jsonl"),) if generated else ()),
                                    gold_qrels=L.unlabeled_qrels(li) if gold else None) for li in langs)
        deps = tuple(f"{li.label()}/{mined_stage}" for li in langs)
        deps += tuple(f"{li.label()}/generate" for li in langs) if generated else ()
        deps += (start,) if start else ()
        # with [dense] window_stride, each example trains on the window of a long passage that the dense side
        # of its mining teacher favoured (the base encoder; round 2: the round-1 model)
        teacher = _encoder(cfg, cfg.base_model if mined_stage == "mine" else str(L.f("train-r1", "model"))) \
            if cfg.dense.window_stride is not None else None
        return StageSpec(name, train_stage, {"sources": sources, "config": tcfg, "gold": gold, "windows": teacher},
                         config={"training": tcfg.to_dict(), "gold": gold, "generated": generated,
                                 **({"windows": _fp(teacher)} if teacher else {})}, deps=deps)

    for li in langs:
        specs.append(_data(li))
    for li in langs:
        label = li.label()
        queries = {p: L.queries(li, p) for p in L.parts(li)}
        bm25 = dataclasses.replace(cfg.bm25, analyzer=li.analyzer or cfg.bm25.analyzer)
        specs.append(StageSpec(f"{label}/bm25", bm25_stage,
                               {"corpus": L.corpus(li), "lang": li.lang, "queries": queries, "config": bm25,
                                "executor": cfg.executor},
                               config=_fp(bm25), deps=(f"{label}/data",)))
        specs.append(dense(li, "dense-base", None, ("unlabeled", "test")))
        if li.has_unlabeled:
            specs.append(mine_spec(li, "mine", "dense-base"))
        else:
            specs.append(StageSpec(f"{label}/mine", write_no_queries, {}, deps=(f"{label}/data",)))
    has_mined = any(li.has_unlabeled for li in langs)
    if cfg.generation.enabled:
        gen = dataclasses.replace(cfg.generation.config, show_progress=not quiet)
        # backend = "trained" without a model folder: one generator for the mined pairs of every language
        # (the prompt names the language), its own stage, before any language generates.
        joint = gen.backend == "trained" and not gen.model and has_mined
        if joint:
            tgen = dataclasses.replace(gen.trained, seed=cfg.seed, show_progress=not quiet,
                                       device=gen.trained.device or gen.device)
            sources = tuple(GeneratorSource(li.label(), li.lang, L.f(li.label(), "mine", "mined.jsonl"), L.corpus(li))
                            for li in langs if li.has_unlabeled)
            specs.append(StageSpec("generator", train_generator_stage, {"sources": sources, "config": tgen},
                                   config={"trained": tgen.identity_fields()},
                                   deps=tuple(f"{s.label}/mine" for s in sources)))
        for li in langs:
            label = li.label()
            args = {"corpus": L.corpus(li), "mined": L.f(label, "mine", "mined.jsonl"),
                    "bm25_index": L.f(label, "bm25", "index"), "dense_index": L.f(label, "dense-base", "index"),
                    "lang": li.lang, "config": gen, "mining": cfg.mining, "depth": depth,
                    "unlabeled_queries": L.queries(li, "unlabeled") if li.has_unlabeled else None,
                    "executor": cfg.executor}
            config = {"generation": gen.to_dict(), "mining": _fp(cfg.mining), "base_model": cfg.base_model}
            if joint:
                args["trained_generator"] = L.f("generator", "model")
            if not li.has_unlabeled:  # corpus only: its queries come from the bootstrap generator, round trip on
                args["bootstrap"] = True
                if gen.top_k is None or gen.backend == "trained":
                    config["bootstrap"] = True
            specs.append(StageSpec(f"{label}/generate", generate_stage, args, config=config,
                                   deps=(f"{label}/data", f"{label}/bm25", f"{label}/dense-base", f"{label}/mine")
                                   + (("generator",) if joint else ())))
    if has_mined:
        # Round 1 on mined pairs only; with generation on, a second model trains on mined + generated, so the
        # report shows what generation adds.
        specs.append(train("train-r1", "mine"))
        for li in langs:
            # the unlabeled queries' run feeds round 2's mining and the adaptive hybrid's fit (no labels)
            specs.append(dense(li, "dense-r1", "train-r1", ("unlabeled", "test")))
        systems[TRAINED_SYSTEMS["train-r1"]] = "dense-r1"
    if cfg.generation.enabled:
        specs.append(train("train-gen", "mine", generated=True))
        for li in langs:
            specs.append(dense(li, "dense-gen", "train-gen", ("unlabeled", "test")))
        systems[TRAINED_SYSTEMS["train-gen"]] = "dense-gen"
    if cfg.rounds == 2 and has_mined:
        for li in langs:
            if li.has_unlabeled:
                specs.append(mine_spec(li, "mine-r2", "dense-r1"))
        specs.append(train("train-r2", "mine-r2"))
        for li in langs:
            specs.append(dense(li, "dense-r2", "train-r2", ("unlabeled", "test")))
        systems[TRAINED_SYSTEMS["train-r2"]] = "dense-r2"
    if cfg.run.gold_upper_bound:
        specs.append(train("train-gold", "mine", gold=True))
        for li in langs:
            specs.append(dense(li, "dense-gold", "train-gold", ("unlabeled", "test")))
        systems[TRAINED_SYSTEMS["train-gold"]] = "dense-gold"
    for li in langs:
        if not li.has_test:
            continue
        label = li.label()
        hybrids = {hybrid_name(s): ["bm25", s] for s in systems if s != "bm25"}
        adaptive = {adaptive_hybrid_name(s): ["bm25", s] for s in systems if s != "bm25"}
        unlabeled = {s: L.f(label, stage, "run.unlabeled.trec") for s, stage in systems.items()} \
            if li.has_unlabeled else {}  # what the adaptive hybrids are fitted on (runs only)
        specs.append(StageSpec(
            f"{label}/evaluate", evaluate_stage,
            {"qrels": L.f(label, "data", "qrels.test.txt"),
             "runs": {s: L.f(label, stage, "run.test.trec") for s, stage in systems.items()},
             "metrics": cfg.metrics, "hybrids": hybrids, "fusion": cfg.fusion, "depth": depth,
             "adaptive_hybrids": adaptive, "unlabeled_runs": unlabeled},
            config={"metrics": cfg.metrics, "systems": systems, "fusion": _fp(cfg.fusion),
                    "adaptive_hybrids": sorted(adaptive), "fit_on_unlabeled": bool(unlabeled)},
            deps=(f"{label}/data",) + tuple(f"{label}/{s}" for s in systems.values())))
    return specs


def resolve_args(spec: StageSpec, fingerprints: Mapping[str, str]) -> dict[str, Any]:
    """``spec.args`` with every :class:`FingerprintOf` (also inside dicts) replaced by that stage's fingerprint."""

    def fill(v: Any) -> Any:
        if isinstance(v, FingerprintOf):
            return fingerprints[v.stage]
        if isinstance(v, dict):
            return {k: fill(x) for k, x in v.items()}
        return v

    return {k: fill(v) for k, v in spec.args.items()}
