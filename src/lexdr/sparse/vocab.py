"""Terms -> integer ids: the vocabulary that lets bm25s index and search plain token-id lists.

Building ids ourselves (rather than handing strings to bm25s) keeps the analyzer the only place where text
becomes terms, and lets the index store the mapping as plain JSON (bm25s' ``vocab.index.json``).
"""

from __future__ import annotations

import itertools
from typing import Iterable, Mapping

__all__ = ["build_vocab", "terms_to_ids"]


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
