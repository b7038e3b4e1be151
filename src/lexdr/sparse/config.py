"""BM25 settings, declared once (the pipeline's ``[bm25]`` section and ``lexdr index sparse``'s options)."""

from __future__ import annotations

from dataclasses import dataclass

from lexdr.defaults import DEFAULT_DEPTH
from lexdr.settings import at_least, at_most, setting, to_plain

__all__ = ["BM25Config", "DEFAULT_MAX_DOCS_IN_MEMORY"]

# 200k documents of ~80 words: ~100 MB of text and ~16M postings (~200 MB of arrays) at a time.
DEFAULT_MAX_DOCS_IN_MEMORY = 200_000


@dataclass(frozen=True)
class BM25Config:
    analyzer: str | None = setting(None, "Analyzer name (lexdr.analysis.list_analyzers); None: the language's "
                                         "measured default.")
    k1: float | None = setting(None, "BM25 k1 (None: the language's choice).")
    b: float | None = setting(None, "BM25 b (None: the language's choice).")
    depth: int = setting(DEFAULT_DEPTH, "Hits per query written to every run of the pipeline.")
    max_docs_in_memory: int | None = setting(
        DEFAULT_MAX_DOCS_IN_MEMORY, "Passages held at a time while building the index: the corpus is streamed and "
        "analyzed in shards of a third of it, two at a time in worker processes (memory bounded by it, scores "
        "identical to an in-memory build; timed beside plain bm25s in benchmarks/results/bm25_build.md). None "
        "(Python only): analyze everything in this process, in memory.", fingerprint=False)

    def __post_init__(self) -> None:
        at_least(self, ("depth",), 1)
        at_least(self, ("k1", "b"), 0, optional=True)
        at_least(self, ("max_docs_in_memory",), 1, optional=True, note=" (None builds in memory)")
        if self.b is not None:
            at_most(self, ("b",), 1)

    def index_options(self) -> dict:
        """The keyword arguments of :meth:`BM25Index.build` that are set (None = the language's default)."""
        return {k: v for k, v in {"analyzer": self.analyzer, "k1": self.k1, "b": self.b}.items() if v is not None}

    def to_dict(self) -> dict:
        return to_plain(self)
