"""BM25 settings, declared once (the pipeline's ``[bm25]`` section and ``lexdr index sparse``'s options)."""

from __future__ import annotations

from dataclasses import dataclass

from lexdr.defaults import DEFAULT_DEPTH
from lexdr.errors import ConfigError
from lexdr.settings import setting, to_plain

__all__ = ["BM25Config"]


@dataclass(frozen=True)
class BM25Config:
    analyzer: str | None = setting(None, "Analyzer name (lexdr.analysis.list_analyzers); None: the language's "
                                         "measured default.")
    k1: float | None = setting(None, "BM25 k1 (None: the language's choice).")
    b: float | None = setting(None, "BM25 b (None: the language's choice).")
    depth: int = setting(DEFAULT_DEPTH, "Hits per query written to every run of the pipeline.")
    max_docs_in_memory: int | None = setting(None, "Build out of core, this many passages analyzed at a time "
                                                   "(memory bounded by it; scores identical). None: in memory.")

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ConfigError(f"depth must be >= 1, got {self.depth}")
        if self.k1 is not None and self.k1 < 0:
            raise ConfigError(f"k1 must be >= 0, got {self.k1}")
        if self.max_docs_in_memory is not None and self.max_docs_in_memory < 1:
            raise ConfigError(f"max_docs_in_memory must be >= 1 (leave it out to build in memory), got "
                              f"{self.max_docs_in_memory}")
        if self.b is not None and not 0.0 <= self.b <= 1.0:
            raise ConfigError(f"b must be in [0, 1], got {self.b}")

    def index_options(self) -> dict:
        """The keyword arguments of :meth:`BM25Index.build` that are set (None = the language's default)."""
        return {k: v for k, v in {"analyzer": self.analyzer, "k1": self.k1, "b": self.b}.items() if v is not None}

    def to_dict(self) -> dict:
        return to_plain(self)
