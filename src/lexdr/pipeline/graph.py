"""The method as a stage graph: a list of :class:`StageSpec`, each naming a package's stage function, its
inputs (paths in the run directory) and frozen config, what it depends on, and what is fingerprinted.

Every stage function has one shape, ``fn(inputs, config, out_dir, executor) -> result``: ``inputs`` a frozen
dataclass of the files it reads, ``config`` its frozen settings, ``out_dir`` its folder, ``executor`` where its
shards run (resolved once per run). The CLI's per-stage commands call the same functions.

Nothing here runs anything: :func:`method_graph` only declares. :mod:`lexdr.pipeline.run` hands the specs to
the stage engine (fingerprints, skip, resume, manifest). The run directory's layout is
:class:`lexdr.layout.RunLayout` (its docstring draws it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from lexdr.dense import DenseConfig, DenseIndexConfig, DenseInputs, EncoderConfig, dense_stage
from lexdr.evaluation import EvaluateConfig, EvaluateInputs, evaluate_stage
from lexdr.generation.config import GenerationConfig
from lexdr.generation.stage import (GenerateConfig, GenerateInputs, GeneratorInputs, GeneratorSource, generate_stage,
                                    train_generator_stage)
from lexdr.layout import (BM25, DENSE_BASE, GENERATED_BM25, GENERATED_DENSE, GENERATOR, MINE, MINE_GENERATED, TOKENS,
                          RunLayout)
from lexdr.mining.stage import MineInputs, mine_stage
from lexdr.pipeline.config import RunConfig
from lexdr.retrieval import SearchConfig, SearchInputs, search_stage
from lexdr.settings import fingerprint_fields, to_plain
from lexdr.sparse import BM25Inputs, bm25_stage
from lexdr.tasks.prepare import PATH_FIELDS, LanguageInput, data_stage
from lexdr.training import TrainInputs, TrainSource, train_stage
from lexdr.training.card import ModelCardConfig, ModelCardInputs, model_card_stage

__all__ = ["StageSpec", "FingerprintOf", "method_graph", "SYSTEMS", "TrainedModel", "TRAINED_MODELS", "TRAINED_SYSTEMS",
           "hybrid_name",
           "adaptive_hybrid_name"]


@dataclass(frozen=True)
class FingerprintOf:
    """An argument filled in at run time with the fingerprint of stage ``stage`` (e.g. to tie a dense index to
    the training that produced its model: the model's folder path stays the same when it is retrained)."""

    stage: str


@dataclass(frozen=True)
class StageSpec:
    name: str  # its folder under the run directory, e.g. "xquad-r-de/bm25"
    fn: Callable[..., Any]  # a package's stage function, called as fn(inputs, config, <folder>, executor)
    inputs: Any  # the stage's inputs: a frozen dataclass of paths (FingerprintOf values resolved at run time)
    config: Any  # the stage's frozen settings
    fingerprint: Mapping[str, Any] = field(default_factory=dict)  # what changes results
    files: tuple[str, ...] = ()  # user files it reads (content-hashed into the fingerprint)
    deps: tuple[str, ...] = ()  # stages whose outputs it reads
    not_outputs: tuple[str, ...] = ()  # files in its folder that are not its result (lexdr.pipeline.engine.Stage)


# System name in the metrics -> the stage whose test run it is; trained systems are added as they are declared.
SYSTEMS = {"bm25": "bm25", "dense-base": "dense-base"}


@dataclass(frozen=True)
class TrainedModel:
    """One trained model of the method: its training stage, the system it is evaluated as, its dense stage, the
    mined examples it learns from, and when a run has it."""

    stage: str  # the training stage's folder, e.g. "train-r1"
    system: str  # its name in the metrics, e.g. "lexdr-r1"
    dense: str  # the per-language stage that indexes and searches with it, e.g. "dense-r1"
    mined: str = "mine"  # the per-language mining stage it reads
    mined_with: str = "dense-base"  # that mining's dense side (a later round: the previous model's)
    generated: bool = False  # also the generated queries' mined examples
    gold: bool = False  # the unlabeled queries' true labels (the supervised upper bound, reported apart)

    def wanted(self, cfg: RunConfig, has_mined: bool) -> bool:
        if self.gold:
            return cfg.run.gold_upper_bound
        if self.generated:
            return cfg.generation.enabled
        return has_mined and (self.mined == "mine" or cfg.rounds == 2)


# The trained models, in the order they are declared: round 1 on mined pairs only; with generation on, a second
# model on mined + generated (so the report shows what generation adds); round 2; the gold upper bound.
TRAINED_MODELS = (
    TrainedModel("train-r1", "lexdr-r1", "dense-r1"),
    TrainedModel("train-gen", "lexdr-gen", "dense-gen", generated=True),
    TrainedModel("train-r2", "lexdr-r2", "dense-r2", mined="mine-r2", mined_with="dense-r1"),
    TrainedModel("train-gold", "gold-supervised", "dense-gold", gold=True),
)
# Training stage -> the system its model is evaluated as.
TRAINED_SYSTEMS = {m.stage: m.system for m in TRAINED_MODELS}


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


def _gen_fp(gen: GenerationConfig) -> dict:
    """``[generation]`` in the generate stage's fingerprint: without the progress bar and the batch size, which
    change how it runs, not what it writes (nor its shards' fingerprint, ``GenerationConfig.fingerprint``)."""
    out = {k: v for k, v in gen.to_dict().items() if k not in ("show_progress", "batch_size")}
    out["trained"] = {k: v for k, v in out["trained"].items() if k not in gen.trained.BOOKKEEPING}
    return out


def _index_fp(index: DenseIndexConfig) -> dict:
    """``[dense.index]`` in a dense stage's fingerprint: the settings that differ from their defaults (run folders
    made before the section existed keep their fingerprints). Changing one re-runs the stage, which rebuilds
    the index from the kept encoded shards (nprobe / ef_search only re-search), never re-encodes."""
    default = _fp(DenseIndexConfig())
    changed = {k: v for k, v in _fp(index).items() if v != default[k]}
    return {"index": changed} if changed else {}


class _Layout(RunLayout):
    """The run folder's layout (:class:`lexdr.layout.RunLayout`), with each language's inputs where its
    :class:`LanguageInput` says (known before anything runs)."""

    def __init__(self, cfg: RunConfig):
        super().__init__(cfg.out_dir)
        self.cfg = cfg

    def corpus(self, li: LanguageInput) -> Path:  # type: ignore[override]
        return Path(li.corpus) if li.corpus and not (li.dev_task or li.source) else super().corpus(li.label())

    def queries(self, li: LanguageInput, part: str) -> Path:  # type: ignore[override]
        return super().queries(li.label(), part)

    def parts(self, li: LanguageInput) -> list[str]:
        return [p for p, has in (("unlabeled", li.has_unlabeled), ("test", li.has_test)) if has]

    def unlabeled_qrels(self, li: LanguageInput) -> Path | None:
        if li.dev_task:
            return self.qrels(li.label(), "unlabeled")
        return Path(li.unlabeled_qrels) if li.unlabeled_qrels else None


def _data(li: LanguageInput) -> StageSpec:
    config = {k: v for k, v in to_plain(li).items() if k not in PATH_FIELDS}  # paths: by content, in inputs
    inputs = tuple(p for p in (getattr(li, a) for a in PATH_FIELDS) if p)
    if li.dev_task:  # the shared data files the task is built from, hashed like any user file
        from lexdr.tasks.devtasks import dev_task_files

        inputs += tuple(str(p) for p in dev_task_files(li.dev_task))
    return StageSpec(f"{li.label()}/data", data_stage, li, None, fingerprint=config, files=inputs)


def _encoder(cfg: RunConfig, model: str) -> EncoderConfig:
    if model == cfg.base_model:
        return dataclasses.replace(cfg.dense, model=model)
    # A trained folder carries its own prompts (saved by the trainer); do not override them.
    return dataclasses.replace(cfg.dense, model=model, query_prompt=None, passage_prompt=None)


def _generation_specs(cfg: RunConfig, L: _Layout, has_mined: bool, quiet: bool) -> list[StageSpec]:
    """The generation stages: the joint query generator (``backend = "trained"`` without a model folder), then
    per language the generate stage and the search and mining of the queries it kept (:func:`_generated_specs`)."""
    specs: list[StageSpec] = []
    langs, depth = cfg.languages, cfg.bm25.depth
    gen = dataclasses.replace(cfg.generation.config, show_progress=not quiet)
    # backend = "trained" without a model folder: one generator for the mined pairs of every language
    # (the prompt names the language), its own stage, before any language generates.
    joint = gen.backend == "trained" and not gen.model and has_mined
    if joint:
        tgen = dataclasses.replace(gen.trained, seed=cfg.seed, show_progress=not quiet,
                                   device=gen.trained.device or gen.device)
        sources = tuple(GeneratorSource(li.label(), li.lang, L.mined(li.label()), L.corpus(li))
                        for li in langs if li.has_unlabeled)
        specs.append(StageSpec("generator", train_generator_stage, GeneratorInputs(sources), tgen,
                               fingerprint={"trained": tgen.identity_fields()},
                               deps=tuple(f"{s.label}/mine" for s in sources)))
    for li in langs:
        label = li.label()
        inputs = GenerateInputs(L.corpus(li), L.mined(label), li.lang,
                                unlabeled_queries=L.queries(li, "unlabeled") if li.has_unlabeled else None,
                                bm25_index=L.f(label, BM25, "index"), dense_index=L.f(label, DENSE_BASE, "index"),
                                trained_generator=L.model(GENERATOR) if joint else None,
                                bootstrap=not li.has_unlabeled)  # corpus only: the bootstrap generator
        fingerprint = {"generation": _gen_fp(gen), "base_model": cfg.base_model}
        if not li.has_unlabeled and (gen.top_k is None or gen.backend == "trained"):
            fingerprint["bootstrap"] = True
        specs.append(StageSpec(f"{label}/generate", generate_stage, inputs,
                               GenerateConfig(gen, depth=depth, replace_stale=True), fingerprint=fingerprint,
                               deps=(f"{label}/data", f"{label}/bm25", f"{label}/dense-base", f"{label}/mine")
                               + (("generator",) if joint else ())))
        specs += _generated_specs(cfg, L, label)
    return specs


def _generated_specs(cfg: RunConfig, L: _Layout, label: str) -> list[StageSpec]:
    """The kept generated queries searched with BM25 and the base encoder (the search stage, once per index)
    and mined like any unlabeled query (the mining stage): one training signal for every query, the BM25+dense
    teacher over its candidates. The round trip has already put each query's source passage in the hybrid
    top-k, so it is normally among the candidates. Generation may keep no query: then nothing is searched
    and ``mined.jsonl`` is empty (``optional``)."""
    depth, queries = cfg.bm25.depth, L.generated_queries(label)
    gen = f"{label}/generate"
    specs = [StageSpec(f"{label}/{name}", search_stage,
                       SearchInputs(L.f(label, index, "index"), {"run.generated.trec": queries}, options,
                                    optional=True),
                       SearchConfig(depth=depth, tag=tag), fingerprint={"depth": depth},
                       deps=(gen, f"{label}/{index}"))
             for name, index, tag, options in ((GENERATED_BM25, BM25, "bm25", {}),
                                              (GENERATED_DENSE, DENSE_BASE, "dense", {"show_progress": False}))]
    mine = MineInputs(queries, L.run(label, GENERATED_BM25, "generated"), L.run(label, GENERATED_DENSE, "generated"),
                      optional=True)
    specs.append(StageSpec(f"{label}/{MINE_GENERATED}", mine_stage, mine, cfg.mining, fingerprint=_fp(cfg.mining),
                           deps=(gen, f"{label}/{GENERATED_BM25}", f"{label}/{GENERATED_DENSE}")))
    return specs


def _evaluate_spec(cfg: RunConfig, L: _Layout, li: LanguageInput, systems: Mapping[str, str]) -> StageSpec:
    """One language's evaluation: every system, its RRF and adaptive hybrid with BM25 (the adaptive weights
    fitted on the unlabeled queries' runs, no labels)."""
    depth = cfg.bm25.depth
    label = li.label()
    hybrids = {hybrid_name(s): ["bm25", s] for s in systems if s != "bm25"}
    adaptive = {adaptive_hybrid_name(s): ["bm25", s] for s in systems if s != "bm25"}
    unlabeled = {s: L.run(label, stage, "unlabeled") for s, stage in systems.items()} \
        if li.has_unlabeled else {}  # what the adaptive hybrids are fitted on (runs only)
    return StageSpec(
        f"{label}/evaluate", evaluate_stage,
        EvaluateInputs(L.qrels(label, "test"), {s: L.run(label, stage, "test") for s, stage in systems.items()},
                       unlabeled),
        EvaluateConfig(tuple(cfg.metrics), hybrids, adaptive, cfg.fusion, depth),
        fingerprint={"metrics": cfg.metrics, "systems": systems, "fusion": _fp(cfg.fusion),
                     "adaptive_hybrids": sorted(adaptive), "fit_on_unlabeled": bool(unlabeled)},
        deps=(f"{label}/data",) + tuple(f"{label}/{s}" for s in systems.values()))


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
        model = cfg.base_model if train is None else str(L.model(train))
        enc = _encoder(cfg_q, model)
        label = li.label()
        queries = {p: L.queries(li, p) for p in parts if p in L.parts(li)}
        return StageSpec(f"{label}/{name}", dense_stage,
                         # the corpus's token ids, tokenized once and read by every dense stage of the language;
                         # a trained model's index is tied to its training's fingerprint, not its folder's path
                         DenseInputs(L.corpus(li), queries, token_dir=L.stage(label, TOKENS),
                                     model_fingerprint=FingerprintOf(train) if train else None),
                         DenseConfig(enc, cfg.dense_index, depth=depth, tag=name),
                         # which runs it writes: a run first made with rounds = 1 must redo it for round 2's mining
                         fingerprint={"dense": _fp(enc), "model": train or cfg.base_model, "parts": sorted(queries),
                                      "depth": depth, **_index_fp(cfg.dense_index)},
                         deps=(f"{label}/data",) + ((train,) if train else ()))

    def mine_spec(li: LanguageInput, name: str, dense_stage_name: str) -> StageSpec:
        label = li.label()
        report = L.unlabeled_qrels(li)
        return StageSpec(f"{label}/{name}", mine_stage,
                         MineInputs(L.queries(li, "unlabeled"), L.run(label, BM25, "unlabeled"),
                                    L.run(label, dense_stage_name, "unlabeled"), report_qrels=report),
                         cfg.mining, fingerprint=_fp(cfg.mining), deps=(f"{label}/data", f"{label}/bm25", f"{label}/{dense_stage_name}"))

    def train(name: str, mined_stage: str, start: str | None = None, gold: bool = False,
              generated: bool = False) -> StageSpec:
        tcfg = dataclasses.replace(cfg.training, show_progress=not quiet)
        if gold:
            tcfg = dataclasses.replace(tcfg, loss=cfg.run.gold_loss)
        if start:
            tcfg = dataclasses.replace(tcfg, model=str(L.model(start)))
        sources = tuple(TrainSource(li.label(), L.corpus(li),
                                    (L.mined(li.label(), mined_stage),)
                                    + ((L.mined(li.label(), MINE_GENERATED),) if generated else ()),
                                    gold_qrels=L.unlabeled_qrels(li) if gold else None) for li in langs)
        deps = tuple(f"{li.label()}/{mined_stage}" for li in langs)
        deps += tuple(f"{li.label()}/{MINE_GENERATED}" for li in langs) if generated else ()
        deps += (start,) if start else ()
        # with [dense] window_stride, each example trains on the window of a long passage that the dense side
        # of its mining teacher favoured (the base encoder; round 2: the round-1 model)
        teacher = _encoder(cfg, cfg.base_model if mined_stage == MINE else str(L.model("train-r1"))) \
            if cfg.dense.window_stride is not None else None
        return StageSpec(name, train_stage, TrainInputs(sources, gold=gold, windows=teacher), tcfg,
                         fingerprint={"training": tcfg.to_dict(), "gold": gold, "generated": generated,
                                      **({"windows": _fp(teacher)} if teacher else {})}, deps=deps,
                         # the card is written into the model folder by its own stage, after the evaluation
                         not_outputs=("model/README.md",))

    for li in langs:
        specs.append(_data(li))
    for li in langs:
        label = li.label()
        queries = {p: L.queries(li, p) for p in L.parts(li)}
        bm25 = dataclasses.replace(cfg.bm25, analyzer=li.analyzer or cfg.bm25.analyzer)
        specs.append(StageSpec(f"{label}/bm25", bm25_stage, BM25Inputs(L.corpus(li), li.lang, queries), bm25,
                               fingerprint=_fp(bm25), deps=(f"{label}/data",)))
        specs.append(dense(li, "dense-base", None, ("unlabeled", "test")))
        if li.has_unlabeled:
            specs.append(mine_spec(li, "mine", "dense-base"))
        else:
            specs.append(StageSpec(f"{label}/mine", mine_stage, MineInputs(None), cfg.mining, deps=(f"{label}/data",)))
    has_mined = any(li.has_unlabeled for li in langs)
    if cfg.generation.enabled:
        specs += _generation_specs(cfg, L, has_mined, quiet)
    for m in TRAINED_MODELS:
        if not m.wanted(cfg, has_mined):
            continue
        if m.mined != "mine":  # a later round mines again, with the previous model's runs as the dense side
            specs += [mine_spec(li, m.mined, m.mined_with) for li in langs if li.has_unlabeled]
        specs.append(train(m.stage, m.mined, gold=m.gold, generated=m.generated))
        # each model's unlabeled queries' run feeds the next round's mining and the adaptive hybrid's fit
        specs += [dense(li, m.dense, m.stage, ("unlabeled", "test")) for li in langs]
        systems[m.system] = m.dense
    specs += [_evaluate_spec(cfg, L, li, systems) for li in langs if li.has_test]
    # the cards name the run by a hash of what decides its results: every stage's fingerprint (an execution
    # option such as a batch size or a progress bar changes no fingerprint, so no card either)
    config_hash = hashlib.sha256(json.dumps({s.name: to_plain(s.fingerprint) for s in specs}, sort_keys=True,
                                            default=str).encode()).hexdigest()[:16]
    specs += [_card_spec(cfg, L, m, config_hash) for m in TRAINED_MODELS if m.system in systems]
    return specs


def _card_spec(cfg: RunConfig, L: _Layout, m: TrainedModel, config_hash: str) -> StageSpec:
    """A trained model's card (``README.md`` in its folder), with every language's metrics: after evaluation."""
    tested = [li for li in cfg.languages if li.has_test]
    inputs = ModelCardInputs(L.model(m.stage), {li.label(): L.evaluation(li.label(), "metrics.json") for li in tested},
                             {li.label(): L.mined(li.label(), m.mined) for li in cfg.languages if li.has_unlabeled},
                             {li.label(): L.generated_mining(li.label()) / "mined.jsonl" for li in cfg.languages}
                             if m.generated else {})
    config = ModelCardConfig(cfg.base_model, m.system, config_hash, tuple(cfg.metrics),
                             {li.label(): li.lang for li in cfg.languages})
    return StageSpec(f"{m.stage}-card", model_card_stage, inputs, config,
                     fingerprint={"system": m.system, "config_hash": config_hash, "metrics": list(cfg.metrics)},
                     deps=(m.stage,) + tuple(f"{li.label()}/evaluate" for li in tested))


def resolve_inputs(spec: StageSpec, fingerprints: Mapping[str, str]) -> Any:
    """``spec.inputs`` with every :class:`FingerprintOf` field replaced by that stage's fingerprint."""
    if not dataclasses.is_dataclass(spec.inputs):
        return spec.inputs
    filled = {f.name: fingerprints[v.stage] for f in dataclasses.fields(spec.inputs)
              if isinstance(v := getattr(spec.inputs, f.name), FingerprintOf)}
    return dataclasses.replace(spec.inputs, **filled) if filled else spec.inputs
