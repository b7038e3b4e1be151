"""Terms -> integer ids: the vocabulary that lets bm25s index and search plain token-id lists.

Building ids ourselves (rather than handing strings to bm25s) keeps the analyzer the only place where text
becomes terms, and lets the index store the mapping as plain JSON (bm25s' ``vocab.index.json``).
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from typing import Iterable, Iterator, Mapping

import numpy as np

__all__ = ["build_vocab", "terms_to_ids", "CompactVocab"]


def build_vocab(docs_terms: Iterable[list[str]]) -> tuple[list[list[int]], dict[str, int]]:
    """Assign ids 0..V-1 to terms in order of first appearance; return every document as an id list."""
    docs_terms = docs_terms if isinstance(docs_terms, list) else list(docs_terms)
    # dict.fromkeys dedupes in C, keeping first-appearance order; the lookups then run through map().
    vocab = {t: i for i, t in enumerate(dict.fromkeys(itertools.chain.from_iterable(docs_terms)))}
    lookup = vocab.__getitem__
    return [list(map(lookup, terms)) for terms in docs_terms], vocab


def terms_to_ids(terms: list[str], vocab: Mapping[str, int]) -> list[int]:
    """The ids of ``terms`` that the index knows; unknown terms cannot match and are dropped."""
    get = vocab.get
    return [i for i in map(get, terms) if i is not None]


class CompactVocab(Mapping[str, int]):
    """A loaded index's vocabulary (term -> id) held compactly: the terms sorted, as one UTF-8 blob + offsets
    (:class:`lexdr.doc_ids.DocIds`), and their ids in an int64 array; a term is found by binary search.

    About 26 bytes a term (for terms of about 10 characters) where a ``dict`` costs about 140 (the ``str``, its
    ``int`` and the table entry): the vocabulary grows with the corpus (a new term every few passages on a
    web-scale corpus), and a search only looks up its queries' terms."""

    __slots__ = ("_terms", "_ids")

    def __init__(self, vocab: Mapping[str, int]):
        from lexdr.doc_ids import DocIds

        terms = sorted(vocab)
        self._ids = np.fromiter(map(vocab.__getitem__, terms), dtype=np.int64, count=len(terms))
        self._terms = DocIds(terms)

    def _find(self, term: object) -> int:
        if not isinstance(term, str):
            return -1
        i = bisect_left(self._terms, term)
        return i if i < len(self._terms) and self._terms[i] == term else -1

    def __getitem__(self, term: str) -> int:
        i = self._find(term)
        if i < 0:
            raise KeyError(term)
        return int(self._ids[i])

    def get(self, term: str, default: int | None = None) -> int | None:  # type: ignore[override]
        i = self._find(term)
        return default if i < 0 else int(self._ids[i])

    def __contains__(self, term: object) -> bool:
        return self._find(term) >= 0

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._terms)

    def ids(self) -> np.ndarray:
        """Every term's id (in the terms' sorted order)."""
        return self._ids
