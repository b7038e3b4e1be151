"""Every retriever of a finished run, opened once: BM25, the base encoder, each trained model, and the RRF and
adaptive hybrids with the weights the run fitted, for every language; searched through micro-batchers.

A dense system's queries are batched per *encoder*, not per language: a trained model is one model for every
language of the run, so a German and a Spanish query that arrive together are encoded in one forward and then
searched in their own language's FAISS index. BM25 queries are batched per language.

:func:`open_run` reads a run folder (layout in :mod:`lexdr.pipeline.graph`); :func:`open_indexes` serves index
folders written by ``lexdr index`` instead (one language, no hybrids, no inspection pages).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lexdr.defaults import DEFAULT_DEPTH
from lexdr.errors import LexdrError
from lexdr.fusion import FusionConfig, FusionMethod, fuse_runs
from lexdr.layout import BM25, RunLayout
from lexdr.pipeline.graph import SYSTEMS, TRAINED_MODELS
from lexdr.records import Hit, Query
from lexdr.serve.batcher import MicroBatcher
from lexdr.serve.config import ServeConfig

__all__ = ["Language", "System", "Systems", "open_run", "open_indexes", "run_language_inputs"]

logger = logging.getLogger(__name__)

# system name -> the stage folder (under <label>/) whose index it searches
STAGE_OF = {**SYSTEMS, **{m.system: m.dense for m in TRAINED_MODELS}}  # system -> the stage holding its index
TRAIN_OF = {m.system: m.stage for m in TRAINED_MODELS}


@dataclass
class System:
    name: str
    kind: str  # bm25 | dense | trained | hybrid | adaptive-hybrid
    batcher: MicroBatcher | None = None  # leaves: BM25 per language, dense per encoder
    index: Any = None  # leaves: the BM25 index or the dense index
    parts: tuple[str, str] | None = None  # hybrids: (sparse system, dense system)
    fusion: FusionConfig | None = None
    fusion_record: dict | None = None  # hybrids: the run's fusion.json entry (weights, fitted on what)

    def describe(self) -> dict:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.parts:
            out["fuses"] = list(self.parts)
            out["fusion"] = {k: v for k, v in (self.fusion_record or {}).items() if k != "systems"}
        return out


@dataclass
class Language:
    label: str  # the run's name for the language (a dev task's name, or [[languages]] name, or the code)
    lang: str
    systems: dict[str, System] = field(default_factory=dict)
    metrics: dict[str, dict] = field(default_factory=dict)
    passages: dict[str, tuple[str, str]] = field(default_factory=dict)  # doc id -> (title, text)
    analyzer: Any = None  # the BM25 analyzer (for highlighting query terms)


class Systems:
    """The languages and systems being served, and the one way to search them (:meth:`search`)."""

    def __init__(self, name: str, languages: dict[str, Language], batchers: list[MicroBatcher],
                 executor: concurrent.futures.Executor, config: ServeConfig, depth: int, run_dir: Path | None):
        self.name = name
        self.languages = languages
        self.batchers = batchers
        self.executor = executor
        self.config = config
        self.depth = depth  # how deep each side of a hybrid is searched (the run's [bm25] depth)
        self.run_dir = run_dir

    # --------------------------------------------------------------------------------------- lookup
    def language(self, lang: str) -> Language:
        """A language by the run's label, or by its code where exactly one language has it."""
        if lang in self.languages:
            return self.languages[lang]
        by_code = [l for l in self.languages.values() if l.lang == lang]
        if len(by_code) == 1:
            return by_code[0]
        raise KeyError(f"unknown language {lang!r}; valid: {', '.join(self.languages)}")

    def system(self, lang: str, system: str) -> tuple[Language, System]:
        language = self.language(lang)
        if system not in language.systems:
            raise KeyError(f"unknown system {system!r} for language {language.label!r}; valid: "
                           f"{', '.join(language.systems)}")
        return language, language.systems[system]

    # --------------------------------------------------------------------------------------- search
    async def search(self, lang: str, system: str, texts: Sequence[str], k: int) -> list[list[Hit]]:
        """Each text's top ``k`` hits from ``system`` of ``lang`` (raises KeyError naming the valid values)."""
        import asyncio

        language, sys_ = self.system(lang, system)
        if sys_.parts is None:
            return await sys_.batcher.submit_many([(sys_.index, t, k) for t in texts])
        depth = max(self.depth, k)
        sparse, dense = (language.systems[p] for p in sys_.parts)
        s_runs, d_runs = await asyncio.gather(sparse.batcher.submit_many([(sparse.index, t, depth) for t in texts]),
                                              dense.batcher.submit_many([(dense.index, t, depth) for t in texts]))
        out = []
        for s_hits, d_hits in zip(s_runs, d_runs):
            fused = fuse_runs([{"q": s_hits}, {"q": d_hits}], sys_.fusion, depth=depth, top_k=k)
            out.append(fused.get("q", []))
        return out

    def start(self) -> None:
        for b in self.batchers:
            b.start()

    async def stop(self) -> None:
        for b in self.batchers:
            await b.stop()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    def stats(self) -> dict:
        return {b.name: b.stats() for b in self.batchers}


# ------------------------------------------------------------------------------------------- batch functions
def _bm25_batch(items: list[tuple[Any, str, int]]) -> list[list[Hit]]:
    """One language's BM25 queries (same index): one search call, each cut to its own k."""
    index = items[0][0]
    kmax = max(k for _, _, k in items)
    run = index.search([Query(f"q{i}", t) for i, (_, t, _) in enumerate(items)], k=kmax, n_jobs=1)
    return [run.get(f"q{i}", [])[:k] for i, (_, _, k) in enumerate(items)]


class _DenseBatch:
    """One encoder's queries, any language: one forward for the whole batch, then each index searched once."""

    def __init__(self, encoder):
        self.encoder = encoder
        self.forwards = 0

    def __call__(self, items: list[tuple[Any, str, int]]) -> list[list[Hit]]:
        from lexdr.dense.retriever import search_shared

        self.forwards += 1
        return search_shared(self.encoder, items)


# ------------------------------------------------------------------------------------------- opening
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise LexdrError(f"{path}: unreadable ({e}); re-run the stage that writes it") from None


def run_language_inputs(run_dir: Path, manifest: dict) -> list[dict]:
    """Per language of a run: label, lang code, corpus path and the qrels files (None where absent)."""
    out = []
    for spec in manifest["config"]["languages"]:
        label = spec.get("name") or spec.get("dev_task") or spec["lang"]
        L = RunLayout(run_dir)
        corpus = L.corpus(label) if L.corpus(label).is_file() else (
            Path(spec["corpus"]) if spec.get("corpus") else None)
        unl_qrels = L.qrels(label, "unlabeled") if L.qrels(label, "unlabeled").is_file() else (
            Path(spec["unlabeled_qrels"]) if spec.get("unlabeled_qrels") else None)
        out.append({"label": label, "lang": spec["lang"], "corpus": corpus,
                    "test_qrels": L.qrels(label, "test") if L.qrels(label, "test").is_file() else None,
                    "test_queries": L.queries(label, "test") if L.queries(label, "test").is_file() else None,
                    "unlabeled_queries": L.queries(label, "unlabeled")
                    if L.queries(label, "unlabeled").is_file() else None,
                    "unlabeled_qrels": unl_qrels if unl_qrels is not None and unl_qrels.is_file() else None})
    return out


def _passages(corpus: Path | None) -> dict[str, tuple[str, str]]:
    if corpus is None or not corpus.is_file():
        return {}
    from lexdr.formats import iter_corpus

    return {d.doc_id: (d.title, d.text) for d in iter_corpus(corpus)}


class _Opener:
    """Opens indexes and encoders once each (an encoder shared by every language's index of the same model)."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lexdr-search")
        self.batchers: list[MicroBatcher] = []
        self._encoders: dict[str, MicroBatcher] = {}

    def _batcher(self, name: str, fn) -> MicroBatcher:
        b = MicroBatcher(name, fn, self.executor, max_batch=self.config.max_batch,
                         max_wait=self.config.max_wait_ms / 1000.0)
        self.batchers.append(b)
        return b

    def bm25(self, name: str, label: str, folder: Path) -> System:
        from lexdr.sparse import BM25Index

        index = BM25Index.load(folder, mmap=True)
        return System(name, "bm25", self._batcher(f"{label}/{name}", _bm25_batch), index)

    def dense(self, name: str, kind: str, folder: Path, model: Path | None = None) -> System:
        from lexdr.dense.index import open_dense_index
        from lexdr.dense.retriever import encoder_for_index

        index = open_dense_index(folder)
        described = dict(index.meta.get("encoder") or {})
        if not described:
            raise LexdrError(f"{folder}: the dense index does not record its encoder; rebuild it with lexdr")
        if model is not None:  # the run folder may have moved since: its own copy of the trained model
            described["model"] = str(model)
        key = json.dumps(described, sort_keys=True)
        if key not in self._encoders:
            encoder = encoder_for_index(index, **({"model": str(model)} if model is not None else {}),
                                        batch_size=self.config.encode_batch, show_progress=False)
            _page_in(encoder)  # once per encoder, however many languages' indexes share it
            self._encoders[key] = self._batcher(f"encoder:{name}", _DenseBatch(encoder))  # shared by every language
        return System(name, kind, self._encoders[key], index)


def open_run(run_dir: str | Path, config: ServeConfig | None = None) -> Systems:
    """Open every system of a finished ``lexdr run`` folder for every language (raises LexdrError, naming
    the folder and what to do, when it is not one)."""
    config = config or ServeConfig()
    run_dir = Path(run_dir)
    L = RunLayout(run_dir)
    if not L.manifest.is_file():
        raise LexdrError(f"{run_dir} is not a lexdr run folder (no manifest.json); pass a folder written by "
                         "`lexdr run CONFIG`, or index folders written by `lexdr index`")
    manifest = _read_json(L.manifest)
    cfg = manifest["config"]
    metrics = _read_json(L.metrics) if L.metrics.is_file() else {}
    run_fusion = {k: v for k, v in (cfg.get("fusion") or {}).items() if k in {f.name for f in dataclasses.fields(FusionConfig)}}
    opener = _Opener(config)
    languages: dict[str, Language] = {}
    for spec in run_language_inputs(run_dir, manifest):
        label = spec["label"]
        lang = Language(label, spec["lang"], metrics=metrics.get(label, {}))
        bm25_dir = L.stage(label, BM25) / "index"
        if not (bm25_dir / "config.json").is_file():
            raise LexdrError(f"{run_dir}: {label} has no BM25 index ({bm25_dir}); finish the run first "
                             f"(`lexdr run CONFIG` resumes it)")
        lang.systems["bm25"] = opener.bm25("bm25", label, bm25_dir)
        lang.analyzer = lang.systems["bm25"].index.analyzer
        for system, stage in STAGE_OF.items():
            folder = L.stage(label, stage) / "index"
            if system == "bm25" or not folder.is_dir():
                continue
            train = TRAIN_OF.get(system)
            model = L.model(train) if train else None
            if model is not None and not model.is_dir():
                raise LexdrError(f"{run_dir}: {system}'s index is there but its model ({model}) is not; finish "
                                 f"the run first (`lexdr run CONFIG` resumes it)")
            lang.systems[system] = opener.dense(system, "trained" if train else "dense", folder, model)
        fusion = L.evaluation(label, "fusion.json")
        for name, record in (_read_json(fusion) if fusion.is_file() else {}).items():
            parts = tuple(record.get("systems") or ())
            if len(parts) != 2 or not all(p in lang.systems for p in parts):
                continue
            method = FusionMethod(record.get("method", "rrf"))
            fc = dict(run_fusion, method=method, weights=record.get("weights"))
            if method is FusionMethod.adaptive:
                fc["adaptive"] = record.get("adaptive", fc.get("adaptive"))
            lang.systems[name] = System(name, "adaptive-hybrid" if method is FusionMethod.adaptive else "hybrid",
                                        parts=parts, fusion=FusionConfig(**fc), fusion_record=record)
        lang.passages = _passages(spec["corpus"])
        languages[label] = lang
    depth = int((cfg.get("bm25") or {}).get("depth") or DEFAULT_DEPTH)
    _warm_up(languages, opener.executor, config, depth)
    logger.info("opened %s: %d languages, %d systems, %d encoders", run_dir, len(languages),
                sum(len(l.systems) for l in languages.values()), len(opener._encoders))
    return Systems(run_dir.name, languages, opener.batchers, opener.executor, config, depth, run_dir)


# A warm-up query: long enough that its batch meets the activations of real queries (most are well under this).
WARM_UP_TEXT = "warm up the encoder and the index with a query about as long as the longest questions people ask " * 2


def _warm_up(languages: dict[str, Language], executor: concurrent.futures.Executor, config: ServeConfig,
             depth: int) -> None:
    """A full micro-batch through every leaf, at the deepest k any request can ask for, before the first request,
    on the compute thread that will serve them: torch and FAISS pay their first-call costs (hundreds of
    milliseconds) here, and the thread's allocator and kernel caches reach their working size, so memory stays
    flat under load (benchmarks/results/serve_load.md)."""
    k = max(config.max_k, config.compare_depth, depth)
    batch = [WARM_UP_TEXT[: config.query_char_limit]] * config.max_batch
    for language in languages.values():
        for system in language.systems.values():
            if system.batcher is not None:
                executor.submit(system.batcher.fn, [(system.index, text, k) for text in batch]).result()


def _page_in(encoder) -> None:
    """Read every weight once. The model's safetensors file is memory-mapped, so without this the rows of the
    token embedding (most of a multilingual model: 250k tokens) are read from the page cache one by one as
    queries first use their tokens, and the service's RSS creeps up for hours (+300 MB for e5-small)."""
    import torch

    model = getattr(encoder, "model", None)
    if isinstance(model, torch.nn.Module):
        with torch.inference_mode():
            for p in model.parameters():
                p.sum()


def open_indexes(folders: Sequence[str | Path], config: ServeConfig | None = None, label: str = "index") -> Systems:
    """Serve index folders written by ``lexdr index sparse|dense``: one language, one system per folder
    (named after the folder), no hybrids."""
    config = config or ServeConfig()
    opener = _Opener(config)
    lang = Language(label, "")
    corpus: Path | None = None
    for folder in map(Path, folders):
        meta_path = folder / "config.json"
        if not meta_path.is_file():
            raise LexdrError(f"{folder} is neither a lexdr run folder (manifest.json) nor an index folder "
                             "(config.json); pass a folder written by `lexdr run` or `lexdr index`")
        meta = _read_json(meta_path)
        name = folder.name
        if name in lang.systems:
            raise LexdrError(f"two index folders are named {name!r}; serve folders with distinct names")
        if "bm25" in meta:
            lang.systems[name] = opener.bm25(name, label, folder)
            lang.analyzer = lang.analyzer or lang.systems[name].index.analyzer
            lang.lang = lang.lang or lang.analyzer.lang or ""
        elif "encoder" in meta:
            lang.systems[name] = opener.dense(name, "dense", folder)
        else:
            raise LexdrError(f"{meta_path}: describes neither a BM25 nor a dense index; rebuild the index")
        if corpus is None and meta.get("corpus") and Path(meta["corpus"]).is_file():
            corpus = Path(meta["corpus"])
    lang.passages = _passages(corpus)
    _warm_up({label: lang}, opener.executor, config, DEFAULT_DEPTH)
    return Systems(label, {label: lang}, opener.batchers, opener.executor, config, DEFAULT_DEPTH, None)
