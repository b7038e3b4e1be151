"""Where a language's data comes from: a dev task, local files, or a public dataset by name.

Mr. TyDi and MIRACL by name use the Hugging Face ``datasets`` loader (``castorini/mr-tydi`` topics/qrels and
``castorini/mr-tydi-corpus``; ``miracl/miracl`` and ``miracl/miracl-corpus``), which needs the network; where
the hub is unreachable it fails with one clear message instead of a stack of connection errors.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lexdr.errors import LexdrError
from lexdr.formats import write_corpus_jsonl, write_qrels_trec, write_queries_tsv
from lexdr.records import Doc, Query

__all__ = ["HF_SOURCES", "load_hf_source"]

logger = logging.getLogger(__name__)

_MRTYDI_NAMES = {"ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian",
                 "ja": "japanese", "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu", "th": "thai"}
HF_SOURCES = {
    "mrtydi": ("castorini/mr-tydi", "castorini/mr-tydi-corpus"),
    "miracl": ("miracl/miracl", "miracl/miracl-corpus"),
}


def load_hf_source(source: str, lang: str, out_dir: Path, unlabeled_split: str = "train",
                   test_split: str = "dev") -> dict[str, Path]:
    """Download ``source`` for ``lang`` and write it as local files (corpus.jsonl, queries/qrels TSV/TREC).

    The unlabeled queries are the ``unlabeled_split`` topics (their labels are never written); evaluation uses
    ``test_split`` (Mr. TyDi's test topics are for final reporting only: never tune on them).
    """
    if source not in HF_SOURCES:
        raise LexdrError(f"unknown source {source!r}; known: {', '.join(HF_SOURCES)}")
    topics_id, corpus_id = HF_SOURCES[source]
    hint = (f"no network: cannot download {topics_id} / {corpus_id} from the Hugging Face hub. Point corpus= "
            "(and unlabeled_queries=, test_queries=, test_qrels=) at local files instead, e.g. the Mr. TyDi "
            "corpus .jsonl.gz and the Anserini topics/qrels")
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise LexdrError(f"{hint} (the `datasets` package is not installed either: pip install datasets)") from None
    config = _MRTYDI_NAMES.get(lang, lang) if source == "mrtydi" else lang
    try:
        from datasets import load_dataset

        topics = load_dataset(topics_id, config)
        corpus = load_dataset(corpus_id, config, split="train")
    except Exception as e:  # the datasets library raises many connection error types
        raise LexdrError(f"{hint} ({type(e).__name__})") from None
    out = Path(out_dir)
    paths = {"corpus": out / "corpus.jsonl", "unlabeled_queries": out / "queries.unlabeled.tsv",
             "test_queries": out / "queries.test.tsv", "test_qrels": out / "qrels.test.txt"}
    write_corpus_jsonl((Doc(str(r["docid"]), r["text"], r.get("title", "")) for r in corpus), paths["corpus"])
    write_queries_tsv((Query(str(r["query_id"]), r["query"]) for r in topics[unlabeled_split]),
                      paths["unlabeled_queries"])
    test = topics[test_split]
    write_queries_tsv((Query(str(r["query_id"]), r["query"]) for r in test), paths["test_queries"])
    write_qrels_trec({str(r["query_id"]): {str(p["docid"]): 1 for p in r["positive_passages"]} for r in test},
                     paths["test_qrels"])
    return paths
