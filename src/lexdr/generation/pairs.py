"""Mined (query → positive passage) pairs: the generation stage's labelled input.

File contract: JSONL, one JSON object per line, with at least

* ``query_id`` (string or number, read as a string),
* ``query`` (the query text),
* ``positive_ids`` (list of passage ids; may be empty: mining found no positive for that query).

Any other field (``rule``, ``candidate_ids``, ``teacher_scores``, ``lang`` ...) is allowed and ignored, except
an optional ``lang`` that, when present, restricts which pairs serve as demonstrations for which language.
``lexdr mine``'s ``mined.jsonl`` and this stage's own ``pairs.jsonl`` both satisfy it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from lexdr.errors import InputError
from lexdr.formats.files import iter_jsonl, write_jsonl

__all__ = ["MinedPair", "Example", "iter_pairs", "read_pairs", "write_pairs", "examples_from_pairs"]


@dataclass(frozen=True, slots=True)
class MinedPair:
    query_id: str
    query: str
    positive_ids: tuple[str, ...]
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Example:
    """A (passage text, query) demonstration / training pair."""

    passage: str
    query: str
    passage_id: str = ""


def iter_pairs(path: str | Path) -> Iterator[MinedPair]:
    """Stream pairs; raises :class:`InputError` (``path:line``) on bad JSON or a missing/mistyped field."""
    path = Path(path)
    for lineno, rec in iter_jsonl(path):
        missing = [f for f in ("query_id", "query", "positive_ids") if f not in rec]
        if missing:
            raise InputError(path, lineno, f"pair record lacks {missing}",
                             'each line needs "query_id", "query" and "positive_ids" (e.g. `lexdr mine` output)')
        query, positives = rec["query"], rec["positive_ids"]
        if not isinstance(query, str):
            raise InputError(path, lineno, "'query' must be a string")
        if not isinstance(positives, list) or not all(isinstance(p, (str, int)) for p in positives):
            raise InputError(path, lineno, "'positive_ids' must be a list of passage ids",
                             'write e.g. "positive_ids": ["doc-17"] (or [] for none)')
        lang = rec.get("lang")
        yield MinedPair(str(rec["query_id"]), query.strip(), tuple(str(p) for p in positives),
                        str(lang) if lang else None)


def read_pairs(path: str | Path) -> list[MinedPair]:
    return list(iter_pairs(path))


def write_pairs(records: Iterable[Mapping], path: str | Path) -> int:
    """Write dict records as JSONL atomically (temp file + rename); returns how many were written."""
    return write_jsonl(records, path)


def examples_from_pairs(pairs: Iterable[MinedPair], passages: Mapping[str, str],
                        lang: str | None = None) -> list[Example]:
    """(passage text, query) for each pair's first positive found in ``passages``.

    Pairs without a positive, with an empty query, or (when both sides know it) of another language are
    skipped.
    """
    out: list[Example] = []
    for p in pairs:
        if not p.query or not p.positive_ids:
            continue
        if lang and p.lang and p.lang != lang:
            continue
        pid = next((d for d in p.positive_ids if d in passages), None)
        if pid is not None:
            out.append(Example(passages[pid], p.query, pid))
    return out
