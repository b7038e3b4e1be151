"""The generation stage: (corpus, mined pairs) files → generated queries for passages mining did not reach.

Inputs
    ``corpus_path``: any corpus :func:`lexdr.formats.iter_corpus` reads; a passage is ``Doc.full_text()``.
    Streamed twice (count, then pick), never held: only the texts of the passages generated for and of the
    mined positives (the demonstrations) are kept.
    ``pairs_path``: mined pairs (see :mod:`lexdr.generation.pairs`): which passages are already reached, and
    the in-language demonstrations / training pairs.
    ``unlabeled_queries_path`` (optional): more existing queries to deduplicate against.

Outputs in ``out_dir`` (every file written to a temp file and renamed, so none is ever partial)
    ``shards/NNNNN.jsonl``: raw generations, one line ``{"doc_id", "queries", "seconds"}`` per passage, for
    ``shard_size`` passages; ``shards/manifest.json`` holds the config fingerprint. A killed run resumes at
    the first missing shard; filters are re-applied to all shards on every run (cheap), so changing a filter
    setting never regenerates.
    ``generated.jsonl``: one line per generated query, kept or not: ``query_id``, ``query``, ``positive_ids``
    (the passage it was generated for), ``backend``, ``model``, ``round_trip_rank`` (1-based, null if not
    retrieved or not checked), ``kept``, ``drop_reason`` (null or one of ``filters.DROP_REASONS``),
    ``copy_ratio`` (longest run copied from the passage / query length) and ``question`` (reads as a
    question), both from :mod:`lexdr.generation.quality`.
    ``pairs.jsonl``: the kept queries only, in the mined-pairs format (``query_id``, ``query``,
    ``positive_ids`` + ``source: "generated"``), ready for training.
    ``stats.json``: counts (passages, generated, kept, drops per filter), round-trip rates @1/@10 over the
    queries that reached the round trip, seconds per passage, the share of questions and the mean copy ratio
    over all generated queries, and the config.

Backend ``trained`` without a ``model``: :func:`generate_queries` alone first trains a generator on this
language's mined pairs (``work/generator/``, resumable, reused on a re-run). The pipeline instead runs
:func:`train_generator_stage` once, on every language's mined pairs (its own stage, ``<run>/generator/``), and
hands that folder to each language's :func:`generate_stage` as ``trained_generator``. A language without
unlabeled queries (``bootstrap=True``: nothing was mined for it) is generated for by the generator
:func:`lexdr.generation.bootstrap.pick_bootstrap_source` picks (the joint trained generator, which learnt
from the other languages; else few-shot Gemma; else passage-cut), always round-trip filtered.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from lexdr.defaults import DEFAULT_DEPTH
from lexdr.errors import ConfigError, LexdrError
from lexdr.formats import iter_corpus, read_queries
from lexdr.formats.files import atomic_write, open_text, write_jsonl
from lexdr.generation.base import QueryGenerator, build_generator
from lexdr.generation.bootstrap import ROUND_TRIP_TOP_K, pick_bootstrap_source
from lexdr.generation.config import GenerationConfig, TrainedGeneratorConfig
from lexdr.generation.registry import TRAINED
from lexdr.generation.filters import (DROP_REASONS, NearDuplicateFilter, basic_check, round_trip_keep,
                                      round_trip_ranks, script_check)
from lexdr.generation.pairs import examples_from_pairs, read_pairs, write_pairs
from lexdr.generation.quality import copy_ratio, is_question
from lexdr.generation.script import dominant_script
from lexdr.records import Query
from lexdr.retrieval import Retriever

if TYPE_CHECKING:
    from lexdr.executors import Executor

__all__ = ["generate_queries", "GenerateInputs", "GenerateConfig", "generate_stage", "select_passages", "shard_path",
           "apply_filters", "GeneratorSource", "GeneratorInputs", "train_generator_stage", "stage_generation_config"]

logger = logging.getLogger(__name__)


def shard_path(out_dir: str | Path, shard_no: int) -> Path:
    return Path(out_dir) / "shards" / f"{shard_no:05d}.jsonl"


def select_passages(passage_ids: Sequence[str], reached: set[str], max_passages: int | None, seed: int) -> list[str]:
    """Passages no mined query reached, in corpus order; a seeded sample of ``max_passages`` when capped."""
    unreached = [pid for pid in passage_ids if pid not in reached]
    keep = _sample(len(unreached), max_passages, seed)
    return unreached if keep is None else [unreached[i] for i in keep]


def _sample(n_unreached: int, max_passages: int | None, seed: int) -> np.ndarray | None:
    """Which of ``n_unreached`` unreached passages (their places among them, sorted) are generated for; None: all."""
    if max_passages is not None and n_unreached > max_passages:
        return np.sort(np.random.default_rng([seed, 3]).choice(n_unreached, max_passages, replace=False))
    return None


def _read_passages(corpus_path: str | Path, reached: set[str], max_passages: int | None,
                   seed: int) -> tuple[list[str], dict[str, str], int, set[str]]:
    """:func:`select_passages` over the corpus file, streamed twice without holding the corpus: the selected
    passages' ids (corpus order), the texts of those and of the reached passages (the demonstrations), the
    corpus's passage count and the reached ids it holds. Held: the reached ids and the selected texts, never
    one object per corpus passage."""
    n, found = 0, set()
    for doc in iter_corpus(corpus_path):  # pass 1: how many passages, which reached ones are in the corpus
        n += 1
        if doc.doc_id in reached:
            found.add(doc.doc_id)
    keep = _sample(n - len(found), max_passages, seed)
    wanted = None if keep is None else iter(keep.tolist())
    nxt = -1 if wanted is None else next(wanted, n)
    selected: list[str] = []
    texts: dict[str, str] = {}
    u = 0  # place of the passage among the unreached ones
    for doc in iter_corpus(corpus_path):  # pass 2: the selected and the reached passages' texts
        if doc.doc_id in reached:
            texts[doc.doc_id] = doc.full_text()
            continue
        if wanted is None or u == nxt:
            selected.append(doc.doc_id)
            texts[doc.doc_id] = doc.full_text()
            if wanted is not None:
                nxt = next(wanted, n)
        u += 1
    return selected, texts, n, found


def _read_shard(path: Path, expected_ids: list[str]) -> list[dict] | None:
    """The shard's records if it is complete for exactly ``expected_ids``; None if it must be regenerated."""
    if not path.is_file():
        return None
    try:
        with open_text(path) as fh:
            records = [json.loads(line) for line in fh if line.strip()]
    except (json.JSONDecodeError, OSError):
        return None
    if [r.get("doc_id") for r in records] != expected_ids:
        return None
    return records


def _check_manifest(shard_dir: Path, config: GenerationConfig, replace_stale: bool = False) -> None:
    """Shards of another configuration are never mixed in: refused (a user's folder), or, with
    ``replace_stale`` (the pipeline's own stage folder, run again because its config changed), removed."""
    manifest = shard_dir / "manifest.json"
    wanted = {"fingerprint": config.fingerprint(), "backend": config.backend, "model": config.model_name}
    if manifest.is_file():
        found = json.loads(manifest.read_text(encoding="utf-8"))
        if found.get("fingerprint") != wanted["fingerprint"] and replace_stale:
            logger.info("%s holds generations of another configuration (seed, model or decoding); generating again",
                        shard_dir)
            shutil.rmtree(shard_dir)
        elif found.get("fingerprint") != wanted["fingerprint"]:
            raise ConfigError(
                f"{shard_dir} holds generations from another configuration (backend {found.get('backend')!r}, "
                f"model {found.get('model')!r}); use another out_dir, or delete {shard_dir} to regenerate")
        else:
            return
    shard_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(manifest) as fh:
        json.dump(wanted, fh, indent=2)


def apply_filters(records: list[dict], passages: dict[str, str], config: GenerationConfig,
                  existing_queries: Sequence[str] = (), retriever: Retriever | None = None,
                  lang: str | None = None) -> list[dict]:
    """Run the filter chain over shard records; one output dict per generated query (see module docstring)."""
    dedup = NearDuplicateFilter(existing_queries, config.dedup_threshold, config.dedup_ngram)
    # The corpus's own script backs up the passage's: a one-word passage in another script ("Tiddeman." in a
    # Greek corpus) still gets queries in the corpus language. Estimated from the generated-for passages.
    corpus_script = dominant_script(passages[rec["doc_id"]] for rec in records) if config.script_check else None
    rows: list[dict] = []
    for rec in records:
        pid = rec["doc_id"]
        passage = passages[pid]
        for i, text in enumerate(rec["queries"]):
            query = " ".join(str(text).split())
            reason = basic_check(query, passage, min_chars=config.min_query_chars, max_chars=config.max_query_chars,
                                 copy_threshold=config.copy_threshold)
            if reason is None and config.script_check:
                reason = script_check(query, passage, config.min_script_share, corpus_script)
            if reason is None:
                reason = dedup.check(pid, query)
            rows.append({"query_id": f"gen-{pid}-{i}", "query": query, "positive_ids": [pid],
                         "backend": config.backend, "model": config.model_name, "round_trip_rank": None,
                         "kept": reason is None, "drop_reason": reason,
                         "copy_ratio": round(copy_ratio(query, passage), 3), "question": is_question(query, lang)})
    if retriever is not None:
        todo = [r for r in rows if r["kept"]]
        # At least 10 deep: the stats report the round trip @1 and @10 whatever top_k keeps.
        ranks = round_trip_ranks([Query(r["query_id"], r["query"]) for r in todo],
                                 [r["positive_ids"][0] for r in todo], retriever, k=max(config.top_k or 10, 10))
        for r, rank in zip(todo, ranks):
            r["round_trip_rank"] = rank
            if config.top_k is not None:
                reason = round_trip_keep(rank, config.top_k)
                r["kept"], r["drop_reason"] = reason is None, reason
    return rows


def _stats(rows: list[dict], records: list[dict], config: GenerationConfig, counts: dict[str, Any],
           checked: list[dict] | None) -> dict:
    drops = Counter(r["drop_reason"] for r in rows if not r["kept"])
    seconds = [r.get("seconds", 0.0) for r in records]
    round_trip: dict[str, Any] = {"top_k": config.top_k, "checked": 0, "rate@1": None, "rate@10": None}
    if checked is not None:
        ranks = [r["round_trip_rank"] for r in checked]
        n = len(ranks)
        round_trip.update(checked=n,
                          **{f"rate@{k}": (sum(1 for x in ranks if x is not None and x <= k) / n if n else None)
                             for k in (1, 10)})
    return {
        **counts,
        "generated": len(rows),
        "kept": sum(1 for r in rows if r["kept"]),
        "dropped": {reason: drops.get(reason, 0) for reason in DROP_REASONS},
        "round_trip": round_trip,
        "seconds_per_passage": float(np.mean(seconds)) if seconds else None,
        "question_share": sum(1 for r in rows if r["question"]) / len(rows) if rows else None,
        "mean_copy_ratio": float(np.mean([r["copy_ratio"] for r in rows])) if rows else None,
        "backend": config.backend,
        "model": config.model_name,
        "config": config.to_dict(),
    }


def _generate_shard(generator: QueryGenerator, ids: Sequence[str], texts: Sequence[str], cfg: GenerationConfig,
                    lang: str | None, progress: Any = None) -> list[dict]:
    """One shard's records: ``{"doc_id", "queries", "seconds"}`` per passage, ``cfg.batch_size`` at a time."""
    shard: list[dict] = []
    for start in range(0, len(ids), cfg.batch_size):
        t0 = time.perf_counter()
        outputs = generator.generate(list(texts[start:start + cfg.batch_size]), lang)
        per = (time.perf_counter() - t0) / len(outputs) if outputs else 0.0
        if len(outputs) != len(texts[start:start + cfg.batch_size]):
            raise LexdrError(f"backend {generator.name!r} returned {len(outputs)} outputs for "
                             f"{len(texts[start:start + cfg.batch_size])} passages")
        shard.extend({"doc_id": pid, "queries": [str(q) for q in qs], "seconds": round(per, 4)}
                     for pid, qs in zip(ids[start:start + cfg.batch_size], outputs))
        if progress is not None:
            progress(len(outputs))
    return shard


class ShardGenerator:
    """The stateful per-shard worker an executor runs (a Ray Data actor, ``[cluster] generate_*``): builds the
    generator once and writes each shard row it is given (``shard``, ``doc_ids``, ``texts``) to
    ``shards/NNNNN.jsonl``, exactly as :func:`generate_queries` does."""

    def __init__(self, config: GenerationConfig, examples: list, out_dir: str, lang: str | None):
        self.config, self.lang, self.out = config, lang, Path(out_dir)
        self.generator = build_generator(config, examples, self.out / "work")

    def __call__(self, batch: dict) -> dict:
        for no, ids, texts in zip(batch["shard"], batch["doc_ids"], batch["texts"]):
            ids = [str(x) for x in ids]
            write_jsonl(_generate_shard(self.generator, ids, [str(t) for t in texts], self.config, self.lang),
                        shard_path(self.out, int(no)))
        return {"shard": np.asarray([int(no) for no in batch["shard"]], dtype=np.int64)}


def _generate_on(executor: "Executor", cfg: GenerationConfig, examples: list, out: Path, lang: str | None,
                 todo: list[tuple[int, list[str], list[str]]]) -> None:
    c = executor.cluster
    rows = ({"shard": no, "doc_ids": ids, "texts": texts} for no, ids, texts in todo)
    done = [int(r["shard"]) for r in executor.map_actors(
        ShardGenerator, rows, ctor_args=(cfg, examples, str(out), lang), actors=c.generate_actors,
        num_cpus=c.generate_num_cpus, num_gpus=c.generate_num_gpus)]
    logger.info("generation: %d shard(s) generated on the executor", len(done))


def generate_queries(corpus_path: str | Path, pairs_path: str | Path, out_dir: str | Path, lang: str | None = None,
                     config: GenerationConfig | None = None, retriever: Retriever | None = None, *,
                     generator: QueryGenerator | None = None,
                     unlabeled_queries_path: str | Path | None = None,
                     executor: "Executor | None" = None, replace_stale: bool = False) -> Path:
    """Generate queries for the passages no mined query reached, filter them, write the files above.

    ``retriever``: the round-trip :class:`lexdr.retrieval.Retriever` (the BM25 + dense hybrid in the pipeline); None
    skips the round trip (logged: the output is then unverified). ``generator``: a ready backend (tests,
    custom models); by default :func:`build_generator` builds ``config.backend``, and only when some shard
    still has to be generated (a finished run re-filters without loading a model). ``executor``
    (:mod:`lexdr.executors`): a distributed one generates the missing shards on its actors (:class:`ShardGenerator`).
    ``replace_stale``: shards of another configuration in ``out_dir`` are removed and generated again (the
    pipeline's stage); otherwise they are refused.
    """
    cfg = config or GenerationConfig()
    out = Path(out_dir)
    shard_dir = out / "shards"

    pairs = read_pairs(pairs_path)
    reached = {pid for p in pairs for pid in p.positive_ids}
    # the passages: those selected and the reached ones, not the whole corpus (streamed: _read_passages)
    selected, passages, n_passages, found = _read_passages(corpus_path, reached, cfg.max_passages, cfg.seed)
    unknown = reached - found
    if unknown and len(unknown) == len(reached):
        raise LexdrError(f"none of the {len(reached)} positive ids in {pairs_path} is in {corpus_path}: are the pairs "
                         f"from another corpus? (e.g. {sorted(unknown)[:3]})")
    counts = {"lang": lang, "passages": n_passages, "passages_reached": len(found),
              "passages_unreached": n_passages - len(found), "passages_selected": len(selected)}
    logger.info("generation: %d of %d passages unreached by mining, generating for %d (%s)",
                counts["passages_unreached"], n_passages, len(selected), cfg.backend)

    _check_manifest(shard_dir, cfg, replace_stale)
    records: list[dict] = []
    shards = [selected[i:i + cfg.shard_size] for i in range(0, len(selected), cfg.shard_size)]
    cached = [_read_shard(shard_path(out, i), ids) for i, ids in enumerate(shards)]
    if any(c is None for c in cached) and generator is None:
        if cfg.backend == TRAINED and not cfg.model:  # train on this language's mined pairs first
            from lexdr.generation.trained import train_query_generator

            code = lang or "und"
            folder = train_query_generator({code: pairs_path}, {code: corpus_path}, out / "work" / "generator",
                                           cfg.trained)
            cfg = dataclasses.replace(cfg, model=str(folder))
        examples = examples_from_pairs(pairs, passages, lang)
        if executor is not None and executor.distributed:  # the missing shards on the executor's actors
            _generate_on(executor, cfg, examples, out, lang,
                         [(i, ids, [passages[pid] for pid in ids]) for i, (ids, c) in enumerate(zip(shards, cached))
                          if c is None])
            cached = [_read_shard(shard_path(out, i), ids) for i, ids in enumerate(shards)]
            missing = [i for i, c in enumerate(cached) if c is None]
            if missing:
                raise LexdrError(f"the executor did not write generation shards {missing[:5]} under {shard_dir}; "
                                 "is the run folder shared with every Ray worker at the same path?")
        else:
            generator = build_generator(cfg, examples, out / "work")

    from tqdm.auto import tqdm

    done = sum(len(ids) for ids, c in zip(shards, cached) if c is not None)
    with tqdm(total=len(selected), initial=done, unit="passage", desc=f"generate {lang or ''}".strip(),
              disable=not cfg.show_progress) as bar:
        for i, (ids, shard) in enumerate(zip(shards, cached)):
            if shard is None:
                assert generator is not None
                shard = _generate_shard(generator, ids, [passages[pid] for pid in ids], cfg, lang, bar.update)
                write_jsonl(shard, shard_path(out, i))
            records.extend(shard)

    existing = [p.query for p in pairs]
    if unlabeled_queries_path is not None:
        existing.extend(q.text for q in read_queries(unlabeled_queries_path))
    if retriever is None and cfg.top_k is not None:
        logger.warning("generation: no retriever given, the round-trip filter is skipped (queries are unverified)")
    rows = apply_filters(records, passages, cfg, existing, retriever, lang)
    # The round trip saw exactly the queries that passed every earlier filter.
    checked = [r for r in rows if r["drop_reason"] in (None, "round_trip")] if retriever is not None else None
    stats = _stats(rows, records, cfg, counts, checked)

    write_pairs(rows, out / "generated.jsonl")
    write_pairs(({"query_id": r["query_id"], "query": r["query"], "positive_ids": r["positive_ids"], "lang": lang,
                  "source": "generated", "backend": r["backend"]} for r in rows if r["kept"]), out / "pairs.jsonl")
    with atomic_write(out / "stats.json") as fh:
        json.dump(stats, fh, indent=2, ensure_ascii=False)
    rt = stats["round_trip"]
    logger.info("generation: %d generated, %d kept; round trip @1 %s @10 %s; drops %s", stats["generated"],
                stats["kept"], rt["rate@1"], rt["rate@10"], {k: v for k, v in stats["dropped"].items() if v})
    return out


@dataclass(frozen=True)
class GeneratorSource:
    """One language's contribution to the joint generator: its mined pairs and the corpus they point into."""

    label: str
    lang: str
    pairs: Path
    corpus: Path


@dataclass(frozen=True)
class GeneratorInputs:
    """What :func:`train_generator_stage` reads: each language's mined pairs and corpus."""

    sources: tuple[GeneratorSource, ...]


def train_generator_stage(inputs: GeneratorInputs, config: TrainedGeneratorConfig, out_dir: str | Path,
                          executor: "Executor") -> dict:
    """ONE ``trained`` query generator (LoRA on the base causal LM) for the mined (passage -> query) pairs of
    every language in ``inputs.sources``, the language named in the prompt: the stage of ``lexdr generator
    train`` and of the pipeline's ``generator``.

    ==========================  ======  ===========================================================
    file                        r / w   format
    ==========================  ======  ===========================================================
    each source's ``pairs``     read    mined pairs (``mined.jsonl``: ``query``, ``positive_ids``)
    each source's ``corpus``    read    corpus JSONL (the passages the pairs point to)
    ``out_dir/model/``          write   peft adapters + tokenizer + ``lexdr_generator.json`` (loadable
                                        without lexdr)
    ``out_dir/train_log.jsonl`` write   one line per step
    ``out_dir/checkpoint/``     r / w   while training: resumed after a kill
    ==========================  ======  ===========================================================

    A finished model of the same training (config + pairs) is reused. Returns what the manifest records.
    Training is not sharded: ``executor`` is unused."""
    from lexdr.generation.trained import examples_of_sources, train_on_examples

    sources = inputs.sources
    if not sources:
        raise ConfigError("the generator stage needs at least one language with mined pairs (unlabeled queries)")
    examples = examples_of_sources([(s.lang, s.pairs, s.corpus) for s in sources], config)
    folder = train_on_examples(examples, out_dir, config)
    info = json.loads((folder / "lexdr_generator.json").read_text(encoding="utf-8"))
    return {"model": str(folder), "languages": info.get("languages", {}), "pairs": info.get("pairs"),
            "steps": info.get("steps"), "sources": [s.label for s in sources]}


def stage_generation_config(config: GenerationConfig, lang: str, trained_generator: str | Path | None = None,
                            bootstrap: bool = False) -> tuple[GenerationConfig, str | None]:
    """The config a language's generation stage runs with, and (for a corpus-only language) which bootstrap
    source was chosen and why.

    ``trained_generator``: the run's joint generator folder (backend ``trained`` without its own ``model``).
    ``bootstrap``: the language has no unlabeled queries. With backend ``trained`` it is generated for by
    :func:`pick_bootstrap_source` (the joint generator when it learnt from enough pairs of other languages,
    else few-shot Gemma, else passage-cut); another backend is used as configured. The round trip is always on.
    """
    if bootstrap:
        if config.backend == TRAINED and not config.model:
            plan = pick_bootstrap_source(lang, config, trained_generator)
            logger.info("generation (%s, no unlabeled queries): %s - %s", lang, plan.source.value, plan.reason)
            return plan.config, f"{plan.source.value}: {plan.reason}"
        if config.top_k is None:
            config = dataclasses.replace(config, top_k=ROUND_TRIP_TOP_K)
        return config, f"{config.backend}: configured backend (no unlabeled queries)"
    if config.backend == TRAINED and not config.model and trained_generator is not None:
        return dataclasses.replace(config, model=str(trained_generator)), None
    return config, None


@dataclass(frozen=True)
class GenerateInputs:
    """What :func:`generate_stage` reads: the corpus and its language, the mined pairs (which passages are
    reached; the demonstrations and training pairs), the unlabeled queries (to drop near-duplicates of them),
    the round trip's index folders (both: their RRF hybrid; one: it alone; none: no round trip, unverified
    queries), the run's joint generator folder (backend ``trained`` without its own ``model``), and
    ``bootstrap`` (the language has no unlabeled queries: :func:`stage_generation_config`)."""

    corpus: Path
    mined: Path
    lang: str | None = None
    unlabeled_queries: Path | None = None
    bm25_index: Path | None = None
    dense_index: Path | None = None
    trained_generator: Path | None = None
    bootstrap: bool = False


@dataclass(frozen=True)
class GenerateConfig:
    """How :func:`generate_stage` generates: ``[generation]``; ``depth``, how deep each index is searched before
    the round trip's fusion; ``replace_stale``: shards of another configuration in the folder are removed and
    generated again (the pipeline's own stage folder) instead of refused (a user's folder)."""

    generation: GenerationConfig = field(default_factory=GenerationConfig)
    depth: int = DEFAULT_DEPTH
    replace_stale: bool = False


def _round_trip(inputs: GenerateInputs, depth: int) -> Retriever | None:
    """The round trip's retriever: the RRF hybrid of both indexes, ``depth`` deep; one index alone; or None."""
    from lexdr.retrieval import HybridRetriever, load_retriever

    sides = [load_retriever(inputs.bm25_index)] if inputs.bm25_index is not None else []
    if inputs.dense_index is not None:
        sides.append(load_retriever(inputs.dense_index, show_progress=False))
    if len(sides) < 2:
        return sides[0] if sides else None
    return HybridRetriever(sides, depth=depth)


def generate_stage(inputs: GenerateInputs, config: GenerateConfig, out_dir: str | Path, executor: "Executor") -> dict:
    """Generate queries for the passages ``inputs.mined`` did not reach and keep those that pass the filters
    and the round trip: the stage of ``lexdr generate`` and of the pipeline's ``generate``. It writes queries
    only: the pipeline searches the kept ones with both indexes and mines them with the search and mining
    stages (``generated-bm25``, ``generated-dense``, ``mine-generated``), like any unlabeled query, so every
    query has one training signal: the BM25+dense teacher over its candidates.

    ===================================  ======  ================================================
    file                                 r / w   format
    ===================================  ======  ================================================
    ``inputs.corpus``                    read    corpus JSONL
    ``inputs.mined``                     read    mined pairs (``mined.jsonl``)
    ``inputs.unlabeled_queries``         read    topics TSV or BEIR ``queries.jsonl`` (optional)
    ``inputs.bm25_index`` / ``dense_``   read    index folders (the round trip; optional)
    ``out_dir/shards/NNNNN.jsonl``       write   raw generations (resumed; see the module doc)
    ``out_dir/generated.jsonl``          write   every generated query, kept or not, with why
    ``out_dir/pairs.jsonl``              write   the kept queries in the mined-pairs format
    ``out_dir/queries.generated.tsv``    write   the kept queries as topics TSV (none kept: absent)
    ``out_dir/stats.json``               write   counts, drops per filter, round-trip rates, config
    ===================================  ======  ================================================

    On a distributed ``executor`` the missing shards are generated on its actors (:class:`ShardGenerator`)."""
    from lexdr.formats import write_queries_tsv

    out = Path(out_dir)
    gen, source = stage_generation_config(config.generation, inputs.lang, inputs.trained_generator, inputs.bootstrap)
    generate_queries(inputs.corpus, inputs.mined, out, lang=inputs.lang, config=gen,
                     retriever=_round_trip(inputs, config.depth), unlabeled_queries_path=inputs.unlabeled_queries,
                     executor=executor, replace_stale=config.replace_stale)
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    if source is not None:  # the corpus-only bootstrap: say which generator and why, next to the numbers
        stats["bootstrap"] = source
        with atomic_write(out / "stats.json") as fh:
            json.dump(stats, fh, indent=2, ensure_ascii=False)
    queries = [Query(p.query_id, p.query) for p in read_pairs(out / "pairs.jsonl")]  # ids read "gen-<doc>-<i>"
    (out / "queries.generated.tsv").unlink(missing_ok=True)
    if queries:
        write_queries_tsv(queries, out / "queries.generated.tsv")
    return {"generation": {k: v for k, v in stats.items() if k != "config"}, "kept": len(queries)}
