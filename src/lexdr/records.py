"""Typed records shared by every stage. Ids are always strings (never ints: '007' != '7')."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Doc", "Query", "Qrel", "Hit", "Run"]


@dataclass(frozen=True, slots=True)
class Doc:
    doc_id: str
    text: str
    title: str = ""

    def full_text(self, sep: str = " ") -> str:
        """Title and text joined, the way both BM25 and the encoder see a passage."""
        return f"{self.title}{sep}{self.text}" if self.title else self.text


@dataclass(frozen=True, slots=True)
class Query:
    query_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Qrel:
    query_id: str
    doc_id: str
    relevance: int


class Hit(NamedTuple):
    """One retrieved passage. A NamedTuple, not a dataclass: runs hold millions of them and construction
    cost shows in search time (0.5 µs vs 1.1 µs per hit)."""

    doc_id: str
    score: float


# A run maps query id -> hits sorted best first. Plain dicts keep it cheap to build and easy to serialise.
Run = dict[str, list[Hit]]
