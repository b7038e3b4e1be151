"""The pipeline's generation stage: generate for unreached passages, round-trip filter against the base
hybrid retriever, then mine the kept queries like any unlabeled query.

Mining the generated queries (rather than trusting "the passage it was generated for" as a hard label)
keeps one training signal for every query: the BM25+dense teacher over its candidates. The round trip has
already ensured the source passage is among the hybrid top-k, so it is normally among the candidates too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from lexdr.formats import read_queries, write_queries_tsv, write_run
from lexdr.records import Query

if TYPE_CHECKING:
    from lexdr.pipeline.config import LanguageInput
    from lexdr.pipeline.run import _Pipeline

__all__ = ["generate_and_mine"]


def generate_and_mine(pipe: "_Pipeline", li: "LanguageInput", folder: Path) -> dict:
    from lexdr.dense import DenseRetriever
    from lexdr.generation import GenerationConfig, generate_queries
    from lexdr.retrieval import HybridRetriever
    from lexdr.mining import mine
    from lexdr.sparse import BM25Index

    label = li.label()
    gen = pipe.cfg.generation
    gcfg = GenerationConfig(backend=gen.backend, model=gen.model, max_passages=gen.max_passages,
                            seed=pipe.cfg.seed, show_progress=not pipe.quiet, **gen.options)
    bm25 = BM25Index.load(pipe.f(label, "bm25", "index"))
    dense = DenseRetriever.load(pipe.f(label, "dense-base", "index"), show_progress=False)
    retriever = HybridRetriever([bm25, dense], depth=pipe.cfg.bm25.depth)
    corpus = pipe.data[label]["corpus"]
    unlabeled = pipe.queries_path(li, "unlabeled")
    generate_queries(corpus, pipe.f(label, "mine", "mined.jsonl"), folder, lang=li.lang, config=gcfg,
                     retriever=retriever, unlabeled_queries_path=unlabeled)
    stats = json.loads((folder / "stats.json").read_text(encoding="utf-8"))
    kept = [json.loads(x) for x in (folder / "pairs.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    queries = [Query(r["query_id"], r["query"]) for r in kept]  # ids already read "gen-<doc>-<i>"
    if not queries:
        (folder / "mined.jsonl").write_text("", encoding="utf-8")
        return {"generation": stats, "mined": 0}
    write_queries_tsv(queries, folder / "queries.generated.tsv")
    qs = read_queries(folder / "queries.generated.tsv")
    depth = pipe.cfg.bm25.depth
    write_run(bm25.search(qs, k=depth), folder / "run.bm25.trec", tag="bm25")
    write_run(dense.search(qs, k=depth), folder / "run.dense.trec", tag="dense")
    mine(folder / "queries.generated.tsv", folder / "run.bm25.trec", folder / "run.dense.trec", folder / "mining",
         pipe.cfg.mining)
    (folder / "mining" / "mined.jsonl").replace(folder / "mined.jsonl")
    return {"generation": {k: v for k, v in stats.items() if k != "config"}, "mined": len(qs)}
