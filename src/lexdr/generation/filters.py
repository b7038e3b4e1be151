"""Filters over generated queries. Each is a pure function, unit-tested alone; the stage chains them.

Order (cheap first, the retrieval round trip last, on survivors only):

1. :func:`basic_check` — empty, too short/long, or a copy of the passage;
2. :func:`script_check` — the query's letters are in neither the passage's nor the corpus's script;
3. :class:`NearDuplicateFilter` — a near-copy (char n-gram Jaccard) of an earlier query of the same
   passage, or of an existing (mined / unlabeled) query;
4. :func:`round_trip_ranks` + :func:`round_trip_keep` — the query must retrieve its own passage in the
   retriever's top-k (Alberti et al. 2019's round-trip consistency).

Each returns a drop reason (one of :data:`DROP_REASONS`) or None for "keep".
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import defaultdict
from typing import Iterable, Sequence

from lexdr.generation.script import script_matches
from lexdr.records import Query
from lexdr.retrieval import Retriever

__all__ = [
    "DROP_REASONS",
    "normalize_text",
    "char_ngrams",
    "jaccard",
    "basic_check",
    "script_check",
    "NearDuplicateFilter",
    "round_trip_ranks",
    "round_trip_keep",
]

DROP_REASONS = ("empty", "too_short", "too_long", "copy", "script", "duplicate", "duplicate_existing", "round_trip")


_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalize_text(text: str) -> str:
    """NFKC, casefolded, punctuation and whitespace removed: what two near-identical queries share.

    Whitespace is dropped too, so the same comparison works for scripts written without spaces.
    """
    return _NON_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def char_ngrams(text: str, n: int = 3) -> frozenset[str]:
    """Character n-grams of the normalized text (the whole text when shorter than n; empty for empty text)."""
    norm = normalize_text(text)
    if len(norm) <= n:
        return frozenset({norm}) if norm else frozenset()
    return frozenset(norm[i:i + n] for i in range(len(norm) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def basic_check(query: str, passage: str, *, min_chars: int = 2, max_chars: int = 200,
                copy_threshold: float = 0.5) -> str | None:
    """Drop reason for a malformed output, else None.

    * ``empty``: nothing left after stripping;
    * ``too_short`` / ``too_long``: fewer than ``min_chars`` / more than ``max_chars`` characters (a runaway
      generation that never closed its line is the usual ``too_long``);
    * ``copy``: the longest stretch the query shares with the passage covers ``copy_threshold`` or more of the
      *passage* (normalized): the model echoed the passage instead of asking about it. A short extractive span
      (a few words copied, as a real user might) is fine.
    """
    text = query.strip()
    if not text or not normalize_text(text):
        return "empty"
    if len(text) < min_chars:
        return "too_short"
    if len(text) > max_chars:
        return "too_long"
    q, p = normalize_text(text), normalize_text(passage)
    if p:
        if len(q) >= copy_threshold * len(p):  # only then can a copied run be long enough
            match = difflib.SequenceMatcher(None, q, p, autojunk=False).find_longest_match(0, len(q), 0, len(p))
            if match.size >= copy_threshold * len(p):
                return "copy"
    return None


def script_check(query: str, passage: str, min_share: float = 0.5, corpus_script: str | None = None) -> str | None:
    """``script`` when under ``min_share`` of the query's letters are in the passage's script (or in
    ``corpus_script``, the corpus's dominant script, when given), else None."""
    return None if script_matches(query, passage, min_share, corpus_script) else "script"


class NearDuplicateFilter:
    """Near-duplicate detection by char n-gram Jaccard, per passage and against existing queries.

    ``existing`` are queries the pipeline already has (mined and unlabeled queries): a generated query that
    nearly repeats one of them adds no new training signal and, worse, may point at another positive. They are
    indexed by n-gram so each check touches only queries sharing an n-gram.

    Usage: ``reason = f.check(passage_id, query)``; a kept query is remembered for later queries of its
    passage.
    """

    def __init__(self, existing: Iterable[str] = (), threshold: float = 0.8, n: int = 3):
        self.threshold = threshold
        self.n = n
        self._existing: list[frozenset[str]] = []
        self._postings: dict[str, list[int]] = defaultdict(list)
        for text in existing:
            grams = char_ngrams(text, n)
            if not grams:
                continue
            idx = len(self._existing)
            self._existing.append(grams)
            for g in grams:
                self._postings[g].append(idx)
        self._per_passage: dict[str, list[frozenset[str]]] = defaultdict(list)

    def _best_existing(self, grams: frozenset[str]) -> float:
        shared: dict[int, int] = defaultdict(int)
        for g in grams:
            for idx in self._postings.get(g, ()):
                shared[idx] += 1
        best = 0.0
        for idx, inter in shared.items():
            other = self._existing[idx]
            best = max(best, inter / (len(grams) + len(other) - inter))
        return best

    def check(self, passage_id: str, query: str) -> str | None:
        """``duplicate`` (same passage), ``duplicate_existing`` (an existing query) or None (then remembered)."""
        grams = char_ngrams(query, self.n)
        if any(jaccard(grams, other) >= self.threshold for other in self._per_passage[passage_id]):
            return "duplicate"
        if self._existing and self._best_existing(grams) >= self.threshold:
            return "duplicate_existing"
        self._per_passage[passage_id].append(grams)
        return None


def round_trip_ranks(queries: Sequence[Query], passage_ids: Sequence[str], retriever: Retriever, k: int = 10,
                     batch_size: int = 256) -> list[int | None]:
    """The 1-based rank of each query's own passage in ``retriever``'s top ``k``; None when not in it."""
    if len(queries) != len(passage_ids):
        raise ValueError(f"{len(queries)} queries but {len(passage_ids)} passage ids")
    ranks: list[int | None] = []
    for start in range(0, len(queries), batch_size):
        batch = list(queries[start:start + batch_size])
        run = retriever.search(batch, k=k)
        for q, pid in zip(batch, passage_ids[start:start + batch_size]):
            hits = run.get(q.query_id, [])
            ranks.append(next((r for r, h in enumerate(hits, start=1) if h.doc_id == pid), None))
    return ranks


def round_trip_keep(rank: int | None, top_k: int) -> str | None:
    """``round_trip`` unless the passage ranked within ``top_k``."""
    return None if rank is not None and rank <= top_k else "round_trip"
