"""Terms -> integer ids: the vocabulary that lets bm25s index and search plain token-id lists.

Building ids ourselves (rather than handing strings to bm25s) keeps the analyzer the only place where text
becomes terms, and lets the index store the mapping as plain JSON (bm25s' ``vocab.index.json``).
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from pathlib import Path
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

        if isinstance(vocab, CompactVocab):
            self._terms, self._ids = vocab._terms, vocab._ids
            return
        terms = sorted(vocab)
        self._ids = np.fromiter(map(vocab.__getitem__, terms), dtype=np.int64, count=len(terms))
        self._terms = DocIds(terms)

    def save(self, folder: Path) -> None:
        """``vocab.terms.utf8``, ``vocab.terms.offsets.npy`` and ``vocab.ids.npy``: :meth:`load` reads them without
        the dict that parsing ``vocab.index.json`` builds (about 140 bytes a term at once)."""
        self._terms.save(folder, "vocab.terms")
        np.save(folder / "vocab.ids.npy", self._ids, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> "CompactVocab | None":
        """What :meth:`save` wrote (None: not there, e.g. an index written before it). ValueError: the files do not
        agree with each other."""
        from lexdr.doc_ids import DocIds

        terms = DocIds.load(folder, "vocab.terms")
        if terms is None or not (folder / "vocab.ids.npy").is_file():
            return None
        ids = np.load(folder / "vocab.ids.npy", allow_pickle=False)
        if ids.shape != (len(terms),) or ids.dtype != np.int64:
            raise ValueError(f"vocab.ids.npy holds {ids.shape} ids for {len(terms)} terms")
        out = cls.__new__(cls)
        out._terms, out._ids = terms, ids
        return out

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
